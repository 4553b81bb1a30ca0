/**
 * The window: the sidebar (or, narrow, its rail and drawer), the selected sprite with its
 * terminals and panels, and the settings page over them. Keyboard shortcuts and native menu
 * commands (Electron) land here. The arrangement follows the window's width (window-layout.ts).
 */
import { useEffect, useRef, useState, type RefObject } from 'react';
import type { DesktopBridge, DesktopCommand } from '../platform.ts';
import { commandFor, type Command } from '../shortcuts.ts';
import { activeTabOf, SPRITES_DRAWER } from '../store.ts';
import { paneRegistry } from '../terminal/pane-registry.ts';
import { ConnectionBanner } from './connection-banner.tsx';
import type { CreateSpriteHandle } from './create-sprite.tsx';
import { SettingsView } from './settings/settings-view.tsx';
import { Sidebar } from './sidebar.tsx';
import { SidebarRail } from './sidebar-rail.tsx';
import { SpriteHeader } from './sprite-header.tsx';
import { closeTerminalTab, NoTerminal, SpritePanels, TabStrip } from './sprite-view.tsx';
import { useActions, useApp, useStoreApi } from './store-context.tsx';
import { TerminalPane } from './terminal-pane.tsx';
import { useResolvedTheme } from './theme.ts';
import { Toasts } from './toasts.tsx';
import { useDrawer } from './use-drawer.ts';
import { useWindowLayout } from './use-window-layout.ts';

/** The sidebar as a drawer over a narrow window. */
function SpritesDrawer({ createRef }: { createRef: RefObject<CreateSpriteHandle | null> }) {
  const actions = useActions();
  const box = useRef<HTMLDivElement>(null);
  useDrawer(box, actions.closeDrawer, { first: '.sprite-item[aria-current]', modal: true });
  return (
    <div ref={box} className="drawer-backdrop" onMouseDown={(e) => e.target === e.currentTarget && actions.closeDrawer()}>
      <Sidebar ref={createRef} drawer />
    </div>
  );
}

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
  const view = useApp((s) => s.view);
  const drawer = useApp((s) => s.drawer);
  const theme = useResolvedTheme(themeChoice);
  const layout = useWindowLayout();
  const createRef = useRef<CreateSpriteHandle>(null);
  /** Set when "new sprite" has to open the sprite-list drawer before its name field exists. */
  const [wantCreate, setWantCreate] = useState(false);

  useEffect(() => actions.start(), [actions]);

  useEffect(() => {
    document.documentElement.dataset.theme = theme;
    document.documentElement.style.colorScheme = theme;
  }, [theme]);

  // A drawer left open when the window grows wide has nothing to hang on: close it.
  useEffect(() => {
    if (layout.sidebar === 'docked' && drawer !== null) actions.closeDrawer();
  }, [layout.sidebar, drawer, actions]);

  useEffect(() => {
    if (!wantCreate || !createRef.current) return;
    createRef.current.focus();
    setWantCreate(false);
  });

  const newSprite = () => {
    if (layout.sidebar === 'rail' && store.getState().drawer !== SPRITES_DRAWER) actions.toggleDrawer(SPRITES_DRAWER);
    setWantCreate(true);
  };
  const newSpriteRef = useRef(newSprite);
  newSpriteRef.current = newSprite;

  useEffect(() => {
    const run = (c: Command) => {
      const s = store.getState();
      const active = activeTabOf(s, s.selected);
      switch (c.type) {
        case 'new-sprite':
          return newSpriteRef.current();
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
    <div className={`app sidebar-${layout.sidebar}`}>
      {layout.sidebar === 'docked' ? (
        <Sidebar ref={createRef} />
      ) : (
        <>
          <SidebarRail onNewSprite={newSprite} />
          {drawer === SPRITES_DRAWER && (
            <SpritesDrawer createRef={createRef} />
          )}
        </>
      )}
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
              <p>{layout.sidebar === 'docked' ? 'Press Create' : 'Press + on the left'} to get a root shell in a second or two.</p>
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
        {view === 'settings' && <SettingsView />}
      </main>
      <Toasts />
    </div>
  );
}
