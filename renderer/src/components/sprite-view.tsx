/**
 * The selected sprite: its header (state, facts, actions), its terminal tabs, and the panels the
 * daemon's capabilities allow. Terminal panes themselves live in `TerminalArea`, which keeps
 * every tab's pane mounted.
 */
import { useState } from 'react';
import { useShallow } from 'zustand/react/shallow';
import { formatMemory, shortImage } from '../format.ts';
import { availablePanels } from '../sprite-panels.ts';
import { availableActions, type SpriteAction } from '../sprite-actions.ts';
import { parseSpriteKey } from '../sprite-key.ts';
import { activeTabOf, displayState, tabsOf, unreachableHost } from '../store.ts';
import { paneRegistry } from '../terminal/pane-registry.ts';
import { DestroyDialog } from './destroy-dialog.tsx';
import { StateBadge } from './sprite-list.tsx';
import { useActions, useApp } from './store-context.tsx';

export function closeTerminalTab(id: string, close: (id: string) => void): void {
  paneRegistry.get(id)?.hangUp();
  close(id);
}

export function SpriteHeader({ name }: { name: string }) {
  const sprite = useApp((s) => s.sprites[name]);
  const pending = useApp((s) => s.pending[name]);
  const away = useApp((s) => unreachableHost(s, name)?.reason ?? (unreachableHost(s, name) ? 'not connected' : null));
  const { host, name: shown } = parseSpriteKey(name);
  const transport = useApp((s) => s.transport);
  const actions = useActions();
  const [confirming, setConfirming] = useState(false);
  const panelsOpen = useApp((s) => s.panelsOpen);
  const hasPanels = availablePanels((m) => transport.has(m)).length > 0;
  if (!sprite) return null;
  const ds = away !== null ? { state: 'unreachable', detail: null } : displayState(sprite, pending);
  const run = (a: SpriteAction) => {
    if (a.confirm === 'type-name') return setConfirming(true);
    void actions.runSpriteMethod(name, a.method, a.op);
  };
  const offered = pending || away !== null ? [] : availableActions((m) => transport.has(m), sprite);
  return (
    <header className="sprite-header">
      <div className="sprite-title">
        <h1>{shown}</h1>
        {host && (
          <span className="host-chip" title={`On host ${host} (remote, over SSH)`}>
            on {host}
          </span>
        )}
        <StateBadge state={ds.state} detail={ds.detail} />
      </div>
      <div className="sprite-facts">
        <span title={sprite.image}>{shortImage(sprite.image)}</span>
        <span>{formatMemory(sprite.memoryMiB)}</span>
        <span>
          {sprite.cpus} {sprite.cpus === 1 ? 'CPU' : 'CPUs'}
        </span>
        <span>{sprite.diskGiB} GiB disk</span>
        {sprite.accel && <span title="Accelerator">{sprite.accel.toUpperCase()}</span>}
        {sprite.network && (
          <span className="sprite-network" title="What the sprite may reach (enforced on the host; change with: spritely net set NAME POLICY)">
            network: {sprite.network}
          </span>
        )}
      </div>
      <div className="sprite-actions">
        {hasPanels && (
          <button className={`ghost${panelsOpen ? ' pressed' : ''}`} aria-pressed={panelsOpen} onClick={actions.togglePanels} title="Show or hide the timeline">
            Timeline
          </button>
        )}
        {offered.map((a) => (
          <button key={a.id} className={a.tone ?? 'ghost'} onClick={() => run(a)} data-action={a.id}>
            {a.label}
          </button>
        ))}
      </div>
      {sprite.state === 'crashed' && sprite.lastError && <div className="sprite-error" role="alert">{sprite.lastError}</div>}
      {away !== null && (
        <div className="sprite-error host-away" role="alert">
          Host {host} is not connected: {away} It reconnects on its own; this is what {shown} last looked like.
        </div>
      )}
      {confirming && (
        <DestroyDialog
          name={shown}
          onCancel={() => setConfirming(false)}
          onConfirm={() => {
            setConfirming(false);
            void actions.destroySprite(name);
          }}
        />
      )}
    </header>
  );
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
  const panels = availablePanels((m) => transport.has(m));
  if (!sprite || !panels.length || !open) return null;
  // Panels address the sprite by its key (NAME@HOST for a remote one): the transport routes by it.
  const keyed = sprite.name === name ? sprite : { ...sprite, name };
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
