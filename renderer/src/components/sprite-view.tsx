/**
 * The selected sprite below its header (sprite-header.tsx): its terminal tabs, and the panels the
 * daemon's capabilities allow — docked beside the terminals in a wide window, one at a time as a
 * drawer over them in a narrow one. Terminal panes themselves are kept mounted by the app.
 */
import { useRef } from 'react';
import { useShallow } from 'zustand/react/shallow';
import { availablePanels, type SpritePanel } from '../sprite-panels.ts';
import { parseSpriteKey } from '../sprite-key.ts';
import { activeTabOf, tabsOf, unreachableHost } from '../store.ts';
import { paneRegistry } from '../terminal/pane-registry.ts';
import type { Sprite } from '../transport.ts';
import { useActions, useApp } from './store-context.tsx';
import { useDrawer } from './use-drawer.ts';
import { useWindowLayout } from './use-window-layout.ts';

export function closeTerminalTab(id: string, close: (id: string) => void): void {
  paneRegistry.get(id)?.hangUp();
  close(id);
}

export function TabStrip({ name }: { name: string }) {
  const tabs = useApp(useShallow((s) => tabsOf(s, name)));
  const active = useApp((s) => activeTabOf(s, name)?.id);
  const running = useApp((s) => s.sprites[name]?.state === 'running' && !unreachableHost(s, name));
  const actions = useActions();
  return (
    <div className="tab-strip" role="tablist" aria-label={`Terminals of ${name}`}>
      {tabs.map((t, i) => (
        <div key={t.id} className={`tab${t.id === active ? ' active' : ''}`} role="tab" aria-selected={t.id === active} onClick={() => actions.activateTab(t.id)} title={i < 9 ? `Alt+${i + 1}` : undefined}>
          <span className="tab-title">{t.title}</span>
          <button
            className="tab-close"
            aria-label={`Close ${t.title}`}
            onClick={(e) => {
              e.stopPropagation();
              closeTerminalTab(t.id, actions.closeTerminal);
            }}
          >
            ×
          </button>
        </div>
      ))}
      {running && (
        <button className="tab-new" onClick={() => actions.newTerminal(name)} aria-label="New terminal" title="New terminal (Alt+Shift+T)">
          +
        </button>
      )}
    </div>
  );
}

export function SpritePanels({ name }: { name: string }) {
  const sprite = useApp((s) => s.sprites[name]);
  const transport = useApp((s) => s.transport);
  const open = useApp((s) => s.panelsOpen);
  const drawer = useApp((s) => s.drawer);
  const layout = useWindowLayout();
  const panels = availablePanels((m) => transport.has(m));
  if (!sprite || !panels.length) return null;
  // Panels address the sprite by its key (NAME@HOST for a remote one): the transport routes by it.
  const keyed = sprite.name === name ? sprite : { ...sprite, name };
  if (layout.panels === 'drawer') {
    const panel = panels.find((p) => p.id === drawer);
    return panel ? <PanelDrawer key={panel.id} panel={panel} sprite={keyed} /> : null;
  }
  if (!open) return null;
  return (
    <aside className="panels">
      {panels.map(({ id, title, Component }) => (
        <section key={id} className="panel" aria-label={title}>
          <h2>{title}</h2>
          <Component sprite={keyed} />
        </section>
      ))}
    </aside>
  );
}

/** One panel as a drawer over the terminal (a narrow window). */
function PanelDrawer({ panel, sprite }: { panel: SpritePanel; sprite: Sprite }) {
  const actions = useActions();
  const box = useRef<HTMLElement>(null);
  useDrawer(box, actions.closeDrawer);
  const { title, Component } = panel;
  return (
    <aside ref={box} className="panels drawer" aria-label={title}>
      <section className="panel" aria-label={title}>
        <div className="drawer-head">
          <h2>{title}</h2>
          <button className="ghost small" aria-label={`Close ${title}`} onClick={actions.closeDrawer}>
            ✕
          </button>
        </div>
        <Component sprite={sprite} />
      </section>
    </aside>
  );
}

/** What the terminal area shows when the selected sprite has no tab open. */
export function NoTerminal({ name }: { name: string }) {
  const sprite = useApp((s) => s.sprites[name]);
  const pending = useApp((s) => s.pending[name]);
  const progress = useApp((s) => s.imageProgress);
  const away = useApp((s) => !!unreachableHost(s, name));
  const actions = useActions();
  if (away && sprite)
    return (
      <div className="placeholder">
        <p className="placeholder-title">{parseSpriteKey(name).name} is on a host that is not connected.</p>
        <p>Its terminals come back when the host does.</p>
      </div>
    );
  if (pending === 'create' && (!sprite || sprite.state !== 'running'))
    return (
      <div className="placeholder" role="status">
        <p className="placeholder-title">Creating {name}…</p>
        <p>{progress ? `${progress.phase}: ${progress.message}` : 'Restoring a fresh machine; a terminal opens as soon as it is ready.'}</p>
      </div>
    );
  if (!sprite) return null;
  if (sprite.state === 'running')
    return (
      <div className="placeholder">
        <button className="primary" onClick={() => actions.newTerminal(name)}>
          Open a terminal
        </button>
        <p className="hint">Alt+Shift+T</p>
      </div>
    );
  if (sprite.operation || pending)
    return (
      <div className="placeholder">
        <p>{name} is busy ({sprite.operation ?? pending})…</p>
      </div>
    );
  return (
    <div className="placeholder">
      <p className="placeholder-title">{name} is {sprite.state}.</p>
      {(sprite.state === 'stopped' || sprite.state === 'crashed') && (
        <button className="primary" onClick={() => void actions.startSprite(name)}>
          Start
        </button>
      )}
    </div>
  );
}
