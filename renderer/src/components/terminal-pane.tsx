/**
 * One terminal tab's pane: an xterm joined to its daemon session. It stays mounted while hidden
 * (so output keeps flowing and nothing is lost), fits itself to the pane with a debounced
 * ResizeObserver, and offers find-in-terminal.
 */
import { useEffect, useRef, useState } from 'react';
import { commandFor } from '../shortcuts.ts';
import { unreachableHost, type Tab } from '../store.ts';
import { TerminalLink, type LinkStatus } from '../terminal/terminal-link.ts';
import { paneRegistry } from '../terminal/pane-registry.ts';
import type { TerminalView } from '../terminal/xterm-view.ts';
import { useActions, useApp, useTerminalFactory } from './store-context.tsx';

/** Resizes are debounced: a window drag sends one resize, not sixty. */
export const RESIZE_DEBOUNCE_MS = 60;

export function TerminalPane({ tab, visible, theme }: { tab: Tab; visible: boolean; theme: 'light' | 'dark' }) {
  const el = useRef<HTMLDivElement>(null);
  const viewRef = useRef<TerminalView | null>(null);
  const linkRef = useRef<TerminalLink | null>(null);
  const { createView, env } = useTerminalFactory();
  const transport = useApp((s) => s.transport);
  const spriteState = useApp((s) => s.sprites[tab.sprite]?.state);
  const restored = useApp((s) => s.restored[tab.sprite] ?? 0);
  const hostUp = useApp((s) => !unreachableHost(s, tab.sprite));
  const actions = useActions();
  const [status, setStatus] = useState<{ s: LinkStatus; message?: string }>({ s: 'connecting' });
  const [searching, setSearching] = useState(false);
  const [query, setQuery] = useState('');
  const searchInput = useRef<HTMLInputElement>(null);

  useEffect(() => {
    const host = el.current!;
    const view = createView(env, theme);
    viewRef.current = view;
    view.open(host);
    view.fit();
    view.setKeyFilter((e) => commandFor(e) !== null);
    const link = new TerminalLink(transport, tab.sprite, view, tab.session, {
      onSession: (id) => actions.setTabSession(tab.id, id),
      onStatus: (s, message) => setStatus({ s, message }),
    });
    linkRef.current = link;
    const subs = [view.onData((d) => link.input(d)), view.onBinary((d) => link.inputBinary(d))];
    link.connect();

    let timer: ReturnType<typeof setTimeout> | null = null;
    const refit = () => {
      timer = null;
      const d = view.fit();
      if (d) link.resize(d.cols, d.rows);
    };
    const ro = typeof ResizeObserver === 'function' ? new ResizeObserver(() => {
      if (timer) clearTimeout(timer);
      timer = setTimeout(refit, RESIZE_DEBOUNCE_MS);
    }) : null;
    ro?.observe(host);
    const unregister = paneRegistry.register(tab.id, {
      hangUp: () => link.hangUp(),
      openSearch: () => {
        setSearching(true);
        setTimeout(() => searchInput.current?.select(), 0);
      },
      focus: () => view.focus(),
      text: () => view.text(),
      receivedBytes: () => link.receivedBytes,
    });
    return () => {
      unregister();
      ro?.disconnect();
      if (timer) clearTimeout(timer);
      for (const s of subs) s.dispose();
      link.dispose();
      view.dispose();
      viewRef.current = null;
      linkRef.current = null;
    };
    // The pane lives as long as its tab: one xterm and one link per tab id.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [tab.id]);

  useEffect(() => viewRef.current?.setTheme(theme), [theme]);

  useEffect(() => {
    if (!visible) return;
    const d = viewRef.current?.fit();
    if (d) linkRef.current?.resize(d.cols, d.rows);
    viewRef.current?.focus();
  }, [visible]);

  // A sprite that comes back (started, woken, its host reconnected) gets its stuck terminal back without a keypress.
  useEffect(() => {
    if (spriteState === 'running' && hostUp && linkRef.current?.isStuck) linkRef.current.retry();
  }, [spriteState, hostUp]);

  // After a restore the old shell is gone: open one on the restored machine.
  useEffect(() => {
    if (restored && linkRef.current?.needsReopen) linkRef.current.retry('Opening a shell on the restored machine.');
  }, [restored]);

  const closeSearch = () => {
    setSearching(false);
    viewRef.current?.clearSearch();
    viewRef.current?.focus();
  };

  return (
    <div className="pane" hidden={!visible} data-tab={tab.id} data-status={status.s}>
      {status.s === 'reconnecting' && <div className="pane-note">Reconnecting…</div>}
      {searching && (
        <form
          className="search-bar"
          role="search"
          onSubmit={(e) => {
            e.preventDefault();
            viewRef.current?.findNext(query);
          }}
        >
          <input
            ref={searchInput}
            aria-label="Find in terminal"
            placeholder="Find"
            value={query}
            autoFocus
            onChange={(e) => {
              setQuery(e.target.value);
              if (e.target.value) viewRef.current?.findNext(e.target.value);
            }}
            onKeyDown={(e) => {
              if (e.key === 'Escape') closeSearch();
              if (e.key === 'Enter' && e.shiftKey) {
                e.preventDefault();
                viewRef.current?.findPrevious(query);
              }
            }}
          />
          <button type="button" className="ghost small" onClick={() => viewRef.current?.findPrevious(query)} aria-label="Previous match">
            ↑
          </button>
          <button type="submit" className="ghost small" aria-label="Next match">
            ↓
          </button>
          <button type="button" className="ghost small" onClick={closeSearch} aria-label="Close find">
            ✕
          </button>
        </form>
      )}
      <div className="xterm-host" ref={el} />
    </div>
  );
}
