/**
 * The window: sidebar (create, sprite list, theme and shortcuts) and the selected sprite with its
 * terminals. Keyboard shortcuts and native menu commands (Electron) land here.
 */
import { useEffect, useRef, useState } from 'react';
import type { DesktopBridge, DesktopCommand } from '../platform.ts';
import { commandFor, SHORTCUT_HELP, type Command } from '../shortcuts.ts';
import { activeTabOf } from '../store.ts';
import { paneRegistry } from '../terminal/pane-registry.ts';
import { AddHost } from './add-host.tsx';
import { ConnectionBanner } from './connection-banner.tsx';
import { CreateSprite, type CreateSpriteHandle } from './create-sprite.tsx';
import { SpriteList } from './sprite-list.tsx';
import { closeTerminalTab, NoTerminal, SpriteHeader, SpritePanels, TabStrip } from './sprite-view.tsx';
import { useActions, useApp, useStoreApi } from './store-context.tsx';
import { TerminalPane } from './terminal-pane.tsx';
import { nextThemeChoice, useResolvedTheme } from './theme.ts';
import { Toasts } from './toasts.tsx';

const THEME_LABEL = { system: 'Theme: system', light: 'Theme: light', dark: 'Theme: dark' } as const;

function fromDesktop(c: DesktopCommand): Command {
  switch (c) {
    case 'next-tab':
      return { type: 'cycle-tab', delta: 1 };
    case 'previous-tab':
      return { type: 'cycle-tab', delta: -1 };
    default:
      return { type: c };
  }
}

export function App({ desktop = null }: { desktop?: DesktopBridge | null }) {
  const store = useStoreApi();
  const actions = useActions();
  const selected = useApp((s) => s.selected);
  const tabs = useApp((s) => s.tabs);
  const loaded = useApp((s) => s.loaded);
  const sprites = useApp((s) => s.sprites);
  const activeId = useApp((s) => activeTabOf(s, s.selected)?.id ?? null);
  const connection = useApp((s) => s.connection);
  const connectionDetail = useApp((s) => s.connectionDetail);
  const themeChoice = useApp((s) => s.theme);
  const transport = useApp((s) => s.transport);
  const theme = useResolvedTheme(themeChoice);
  const createRef = useRef<CreateSpriteHandle>(null);
  const [help, setHelp] = useState(false);

  useEffect(() => actions.start(), [actions]);

  useEffect(() => {
    document.documentElement.dataset.theme = theme;
    document.documentElement.style.colorScheme = theme;
  }, [theme]);

  useEffect(() => {
    const run = (c: Command) => {
      const s = store.getState();
      const active = activeTabOf(s, s.selected);
      switch (c.type) {
        case 'new-sprite':
          return createRef.current?.focus();
        case 'new-terminal':
          if (s.selected && s.sprites[s.selected]?.state === 'running') actions.newTerminal(s.selected);
          return;
        case 'close-terminal':
          if (active) closeTerminalTab(active.id, actions.closeTerminal);
          return;
        case 'cycle-tab':
          return actions.cycleTab(c.delta);
        case 'tab-index':
          return actions.activateTabIndex(c.index);
        case 'find':
          return paneRegistry.get(active?.id)?.openSearch();
      }
    };
    const onKey = (e: KeyboardEvent) => {
      const c = commandFor(e);
      if (!c) return;
      e.preventDefault();
      run(c);
    };
    window.addEventListener('keydown', onKey);
    const off = desktop?.onCommand((c) => run(fromDesktop(c)));
    return () => {
      window.removeEventListener('keydown', onKey);
      off?.();
    };
  }, [actions, store, desktop]);

  // Focus follows the active terminal.
  useEffect(() => {
    paneRegistry.get(activeId)?.focus();
  }, [activeId]);

  return (
    <div className="app">
      <aside className="sidebar">
        <div className="brand">
          <span className="logo" aria-hidden>
            ◆
          </span>
          <span>Spritely</span>
          <span className={`conn conn-${connection}`} title={connectionDetail ?? (connection === 'online' ? 'Connected to the daemon' : 'Connecting…')} aria-label={`Daemon ${connection}`} />
        </div>
        <CreateSprite ref={createRef} />
        <div className="list-scroll">
          <SpriteList />
          {transport.has('hosts.add') && <AddHost />}
        </div>
        <div className="sidebar-foot">
          <button className="ghost small" onClick={() => actions.setTheme(nextThemeChoice(themeChoice))} title="Switch theme">
            {THEME_LABEL[themeChoice]}
          </button>
          <button className="ghost small" onClick={() => setHelp((h) => !h)} aria-expanded={help}>
            Shortcuts
          </button>
          {help && (
            <dl className="shortcuts">
              {SHORTCUT_HELP.map(([k, what]) => (
                <div key={k}>
                  <dt>
                    <kbd>{k}</kbd>
                  </dt>
                  <dd>{what}</dd>
                </div>
              ))}
            </dl>
          )}
        </div>
      </aside>
      <main className="main">
        <ConnectionBanner connection={connection} detail={connectionDetail} desktop={desktop} />
        {selected ? (
          <>
            <SpriteHeader name={selected} />
            <TabStrip name={selected} />
          </>
        ) : (
          loaded && (
            <div className="placeholder welcome">
              <p className="placeholder-title">A sprite is a Linux machine of your own.</p>
              <p>Press Create to get a root shell in a second or two.</p>
            </div>
          )
        )}
        <div className="work">
          <div className="panes">
            {loaded &&
              tabs
                .filter((t) => sprites[t.sprite])
                .map((t) => <TerminalPane key={t.id} tab={t} visible={t.id === activeId} theme={theme} />)}
            {selected && !activeId && <NoTerminal name={selected} />}
          </div>
          {selected && <SpritePanels name={selected} />}
        </div>
      </main>
      <Toasts />
    </div>
  );
}
