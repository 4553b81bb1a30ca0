/**
 * The app's zustand store: a thin wrapper that applies the pure transitions of ui-state.ts (all
 * re-exported here), plus the actions that call the daemon and turn its answers (and its errors,
 * in its own words) into transitions. The daemon owns the truth about sprites: the list only ever
 * comes from its events.
 */
import { createStore, type StoreApi } from 'zustand/vanilla';
import { createSettingsActions, type SettingsActions } from './settings-state.ts';
import { hostOfKey, parseSpriteKey, spriteKey } from './sprite-key.ts';
import type { MethodInput, MethodOutput, Transport } from './transport.ts';

import { ThemeChoice, Toast, UiState, activateTab, activateTabIndex, applyEvent, clearImageProgress, closeCompare, closeDrawer, closeTab, cycleTab, dismissToast, initialState, markRestored, openTab, pickForCompare, pushToast, putSprite, restoreLayout, saveLayout, selectSprite, setCompareFile, setCompareResult, setConnection, setPending, setTabSession, setTheme, spriteNames, toggleDrawer } from './ui-state.ts';

export * from './ui-state.ts';
// ------------------------------------------------------------------ the store

export interface Storage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
}

export interface AppDeps {
  transport: Transport;
  /** Per-window storage for tabs/sessions (sessionStorage in the app). */
  session?: Storage;
  /** Long-lived preferences (localStorage in the app). */
  prefs?: Storage;
  newId?: () => string;
}

export type CreateOptions = Omit<MethodInput<'sprites.create'>, 'name'>;

export interface Actions extends SettingsActions {
  start(): () => void;
  createSprite(name: string, opts?: CreateOptions): Promise<boolean>;
  startSprite(name: string): Promise<void>;
  /** Calls a `{name}`-only sprite method the daemon has (sleep, wake, …) as a guarded action. */
  runSpriteMethod(name: string, method: string, op: string): Promise<boolean>;
  stopSprite(name: string): Promise<void>;
  destroySprite(name: string): Promise<boolean>;
  newTerminal(sprite?: string | null): string | null;
  closeTerminal(id: string): void;
  setTabSession(id: string, session: string | null): void;
  select(name: string | null): void;
  activateTab(id: string): void;
  cycleTab(delta: number): void;
  activateTabIndex(i: number): void;
  toast(message: string, kind?: Toast['kind']): void;
  dismissToast(id: number): void;
  setTheme(t: ThemeChoice): void;
  togglePanels(): void;
  toggleDrawer(drawer: string): void;
  closeDrawer(): void;
  loadCheckpoints(sprite: string): Promise<void>;
  createCheckpoint(sprite: string, comment: string): Promise<boolean>;
  restoreCheckpoint(sprite: string, id: string): Promise<boolean>;
  deleteCheckpoint(sprite: string, id: string): Promise<boolean>;
  forkSprite(sprite: string, checkpoint: string, newName: string): Promise<boolean>;
  /** Adds a remote host (the daemon connects and checks it first); a refusal comes back as its message, not a toast. */
  addHost(input: MethodInput<'hosts.add'>): Promise<{ ok: true; result: MethodOutput<'hosts.add'> } | { ok: false; message: string }>;
  removeHost(host: string): Promise<boolean>;
  /** Picks a timeline node to compare; with two picked, asks the daemon what changed between them. */
  pickCompare(sprite: string, key: string): Promise<void>;
  /** Shows the lines of one changed file of the comparison. */
  openCompareFile(sprite: string, path: string): Promise<void>;
  closeCompare(sprite: string): void;
}

export type AppStore = StoreApi<UiState & { actions: Actions; transport: Transport }>;

export const LAYOUT_KEY = 'spritely.layout';
export const THEME_KEY = 'spritely.theme';

let idCounter = 0;
const defaultId = () => globalThis.crypto?.randomUUID?.() ?? `tab-${Date.now()}-${++idCounter}`;

export function createAppStore(deps: AppDeps): AppStore {
  const { transport } = deps;
  const newId = deps.newId ?? defaultId;
  let restored = initialState;
  try {
    const raw = deps.session?.getItem(LAYOUT_KEY);
    if (raw) restored = restoreLayout(restored, JSON.parse(raw));
    const theme = deps.prefs?.getItem(THEME_KEY);
    if (theme === 'light' || theme === 'dark' || theme === 'system') restored = setTheme(restored, theme);
  } catch {
    /* storage unavailable or garbled: start fresh */
  }

  const store: AppStore = createStore<UiState & { actions: Actions; transport: Transport }>()((set, get) => {
    const apply = (fn: (s: UiState) => UiState) => set((st) => fn(st) as UiState & { actions: Actions; transport: Transport });
    const fail = (err: unknown) => apply((s) => pushToast(s, (err as Error)?.message ?? String(err)));
    /**
     * Re-reads one sprite after this window's action finished: the daemon announces changes from
     * inside the operation, so its last event can still say "busy" (one GET, not a polling loop).
     */
    const refresh = async (name: string) => {
      try {
        const sprite = await transport.call('sprites.get', { name });
        apply((s) => (s.sprites[name] ? putSprite(s, name, sprite) : s));
      } catch {
        /* gone meanwhile: its removal event says so */
      }
    };
    const guarded = async (name: string, op: string, fn: () => Promise<unknown>, after = true) => {
      apply((s) => setPending(s, name, op));
      try {
        await fn();
        if (after) await refresh(name);
        return true;
      } catch (err) {
        fail(err);
        return false;
      } finally {
        apply((s) => setPending(s, name, null));
      }
    };
    const actions: Actions = {
      ...createSettingsActions<UiState>({
        transport,
        apply,
        get,
        toast: (m, kind) => apply((s) => pushToast(s, m, kind)),
        refreshSprite: (name) => refresh(name),
        clearImageProgress: () => apply(clearImageProgress),
      }),
      start: () =>
        transport.subscribe({
          onEvent: (e) => apply((s) => applyEvent(s, e)),
          onState: (c, detail) => apply((s) => setConnection(s, c, detail ?? null)),
        }),
      createSprite: async (name, opts = {}) => {
        apply((s) => selectSprite(setPending(clearImageProgress(s), name, 'create'), name));
        try {
          const { sprite } = await transport.call('sprites.create', { name, ...opts });
          apply((s) => clearImageProgress(setPending(putSprite(s, name, sprite), name, null)));
          await refresh(name);
          actions.newTerminal(name);
          return true;
        } catch (err) {
          apply((s) => {
            let next = clearImageProgress(setPending(s, name, null));
            if (next.selected === name && !next.sprites[name]) next = selectSprite(next, spriteNames(next)[0] ?? null);
            return next;
          });
          fail(err);
          return false;
        }
      },
      startSprite: async (name) => {
        await guarded(name, 'start', () => transport.call('sprites.start', { name }));
      },
      runSpriteMethod: (name, method, op) => {
        if (!transport.has(method)) return Promise.resolve(false);
        // Methods come from the action table by name; each takes exactly `{name}`.
        return guarded(name, op, () => transport.call(method as 'sprites.start', { name }));
      },
      stopSprite: async (name) => {
        await guarded(name, 'stop', () => transport.call('sprites.stop', { name }));
      },
      destroySprite: (name) => guarded(name, 'destroy', () => transport.call('sprites.destroy', { name }), false),
      newTerminal: (sprite) => {
        const name = sprite ?? get().selected;
        if (!name) return null;
        const id = newId();
        apply((s) => openTab(s, name, id));
        return id;
      },
      closeTerminal: (id) => apply((s) => closeTab(s, id)),
      setTabSession: (id, session) => apply((s) => setTabSession(s, id, session)),
      select: (name) => apply((s) => selectSprite(s, name)),
      activateTab: (id) => apply((s) => activateTab(s, id)),
      cycleTab: (d) => apply((s) => cycleTab(s, d)),
      activateTabIndex: (i) => apply((s) => activateTabIndex(s, i)),
      toast: (m, kind) => apply((s) => pushToast(s, m, kind)),
      dismissToast: (id) => apply((s) => dismissToast(s, id)),
      setTheme: (t) => apply((s) => setTheme(s, t)),
      togglePanels: () => apply((s) => ({ ...s, panelsOpen: !s.panelsOpen })),
      toggleDrawer: (d) => apply((s) => toggleDrawer(s, d)),
      closeDrawer: () => apply(closeDrawer),
      loadCheckpoints: async (name) => {
        try {
          const checkpoints = await transport.call('checkpoints.list', { name });
          apply((s) => applyEvent(s, { type: 'checkpoints.changed', name, checkpoints }));
        } catch (err) {
          fail(err);
        }
      },
      createCheckpoint: (name, comment) =>
        guarded(name, 'checkpoint', async () => {
          await transport.call('checkpoints.create', { name, ...(comment.trim() ? { comment: comment.trim() } : {}) });
          await actions.loadCheckpoints(name);
        }),
      restoreCheckpoint: async (name, id) => {
        const ok = await guarded(name, 'restore', async () => {
          await transport.call('checkpoints.restore', { name, id });
          await actions.loadCheckpoints(name);
        });
        if (ok) apply((s) => markRestored(s, name));
        return ok;
      },
      deleteCheckpoint: (name, id) =>
        guarded(name, 'delete checkpoint', async () => {
          await transport.call('checkpoints.delete', { name, id });
          await actions.loadCheckpoints(name);
        }),
      pickCompare: async (name, key) => {
        apply((s) => pickForCompare(s, name, key));
        const c = get().compare[name];
        if (!c || c.status !== 'loading' || !c.from || !c.to) return;
        const { from, to } = c;
        try {
          const report = await transport.call('checkpoints.diff', { name, from, to });
          apply((s) => setCompareResult(s, name, from, to, { report }));
        } catch (err) {
          apply((s) => setCompareResult(s, name, from, to, { error: (err as Error)?.message ?? String(err) }));
        }
      },
      openCompareFile: async (name, path) => {
        const c = get().compare[name];
        if (!c?.from || !c.to) return;
        const { from, to } = c;
        apply((s) => setCompareFile(s, name, { path, status: 'loading', entry: null, error: null }));
        try {
          const r = await transport.call('checkpoints.diff', { name, from, to, paths: [path], patch: true });
          const entry = r.entries.find((e) => e.path === path) ?? null;
          apply((s) => (s.compare[name]?.from === from && s.compare[name]?.to === to ? setCompareFile(s, name, { path, status: 'ready', entry, error: null }) : s));
        } catch (err) {
          apply((s) => setCompareFile(s, name, { path, status: 'error', entry: null, error: (err as Error)?.message ?? String(err) }));
        }
      },
      closeCompare: (name) => apply((s) => closeCompare(s, name)),
      forkSprite: async (name, checkpoint, newName) => {
        // A fork stays on its source's machine.
        const key = spriteKey(hostOfKey(name), parseSpriteKey(newName).name);
        const ok = await guarded(key, 'create', () => transport.call('sprites.fork', { name, checkpoint, newName: key }));
        if (ok) actions.newTerminal(key);
        return ok;
      },
      addHost: async (input) => {
        try {
          const r = await transport.call('hosts.add', input);
          apply((s) => pushToast(s, `Added host ${r.host.name}: ${r.checks.map((c) => `${c.name} ${c.ok ? 'ok' : 'FAIL'} (${c.detail})`).join('; ')}`, 'info'));
          return { ok: true as const, result: r };
        } catch (err) {
          return { ok: false as const, message: (err as Error)?.message ?? String(err) };
        }
      },
      removeHost: async (host) => {
        try {
          await transport.call('hosts.remove', { host });
          return true;
        } catch (err) {
          fail(err);
          return false;
        }
      },
    };
    return { ...restored, actions, transport };
  });

  // Remember tabs (and their session ids) per window, and the theme across windows.
  let lastLayout = '';
  let lastTheme = store.getState().theme;
  store.subscribe((s) => {
    const layout = JSON.stringify(saveLayout(s));
    if (layout !== lastLayout) {
      lastLayout = layout;
      try {
        deps.session?.setItem(LAYOUT_KEY, layout);
      } catch {
        /* full or unavailable */
      }
    }
    if (s.theme !== lastTheme) {
      lastTheme = s.theme;
      try {
        deps.prefs?.setItem(THEME_KEY, s.theme);
      } catch {
        /* ignore */
      }
    }
  });
  return store;
}
