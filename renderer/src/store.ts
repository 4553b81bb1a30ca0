/**
 * The UI's state. Every change is a pure function `(state, …) → state` exported here and tested
 * without React; the zustand store is a thin wrapper that applies them, plus a few actions that
 * call the daemon and turn its answers (and its errors, in its own words) into transitions.
 * The daemon owns the truth about sprites: the list only ever comes from its events.
 */
import { createStore, type StoreApi } from 'zustand/vanilla';
import type { Checkpoint, DiffEntry, DiffReport, ImageProgress, RelayStatus } from '../../vm/api/contract.ts';
import { createSettingsActions, initialSettings, type SettingsActions, type SettingsState } from './settings-state.ts';
import { comparePair } from './diff-view.ts';
import { hostOfKey, parseSpriteKey, spriteKey } from './sprite-key.ts';
import type { ConnectionState, DaemonEvent, EventMessage, HostStatus, MethodInput, MethodOutput, Sprite, Transport } from './transport.ts';

export type { ImageProgress, RelayStatus };

export interface Tab {
  id: string;
  sprite: string;
  /** The daemon's terminal session id once known; used to re-attach after a reload. */
  session: string | null;
  title: string;
}

export interface Toast {
  id: number;
  message: string;
  kind: 'error' | 'info';
}

export type ThemeChoice = 'system' | 'light' | 'dark';

/** Comparing two nodes of a sprite's timeline (checkpoint ids, or "now"). */
export interface CompareState {
  /** The picked nodes, at most two, in the order picked. */
  picked: string[];
  status: 'picking' | 'loading' | 'ready' | 'error';
  from: string | null;
  to: string | null;
  report: DiffReport | null;
  error: string | null;
  /** The file whose lines are shown. */
  file: { path: string; status: 'loading' | 'ready' | 'error'; entry: DiffEntry | null; error: string | null } | null;
}

export interface UiState extends SettingsState {
  connection: ConnectionState;
  connectionDetail: string | null;
  /** False until the first `hello`: the list is unknown, not empty. */
  loaded: boolean;
  sprites: Record<string, Sprite>;
  selected: string | null;
  tabs: Tab[];
  /** Active tab per sprite. */
  activeTab: Record<string, string>;
  /** Actions this window has in flight per sprite (the daemon's `operation` covers other clients). */
  pending: Record<string, string>;
  imageProgress: ImageProgress | null;
  toasts: Toast[];
  nextToastId: number;
  theme: ThemeChoice;
  /** Checkpoint trees, per sprite, once asked for (then kept current by events). */
  checkpoints: Record<string, Checkpoint[]>;
  /** Bumped when this window restored a sprite: its terminals reopen on the restored machine. */
  restored: Record<string, number>;
  panelsOpen: boolean;
  /**
   * In a narrow window: the drawer that is open over the terminal — the sprite list, or one of the
   * sprite's panels (by its id in sprite-panels.ts) — or none.
   */
  drawer: string | null;
  /** The relay tunnel as the daemon last announced it (null until a window asks or it changes). */
  relay: RelayStatus | null;
  /**
   * Remote hosts and their states (docs/hosts.md). Their sprites are in `sprites` under keys
   * `NAME@HOST` (sprite-key.ts); a host that is not connected keeps its last known list, shown
   * as unreachable.
   */
  hosts: HostStatus[];
  /** Per sprite: two timeline nodes being compared (checkpoint diff). */
  compare: Record<string, CompareState>;
}

export const initialState: UiState = {
  connection: 'connecting',
  connectionDetail: null,
  loaded: false,
  sprites: {},
  selected: null,
  tabs: [],
  activeTab: {},
  pending: {},
  imageProgress: null,
  toasts: [],
  nextToastId: 1,
  theme: 'system',
  checkpoints: {},
  restored: {},
  panelsOpen: true,
  drawer: null,
  relay: null,
  hosts: [],
  ...initialSettings,
  compare: {},
};

// ------------------------------------------------------------------ pure transitions

export function spriteNames(s: UiState): string[] {
  return Object.keys(s.sprites).sort();
}

function withoutSpriteTabs(s: UiState, name: string): Pick<UiState, 'tabs' | 'activeTab'> {
  const activeTab = { ...s.activeTab };
  delete activeTab[name];
  return { tabs: s.tabs.filter((t) => t.sprite !== name), activeTab };
}

function omit<T>(rec: Record<string, T>, key: string): Record<string, T> {
  if (!(key in rec)) return rec;
  const out = { ...rec };
  delete out[key];
  return out;
}

/** Puts a sprite under `key` (its name here, `NAME@HOST` for a remote host's). */
export function putSprite(s: UiState, key: string, sprite: Sprite): UiState {
  const next = { ...s, sprites: { ...s.sprites, [key]: sprite } };
  return next.selected ? next : { ...next, selected: key };
}

function removeSprite(s: UiState, key: string): UiState {
  if (!s.sprites[key]) return s;
  const sprites = omit(s.sprites, key);
  const next: UiState = { ...s, sprites, ...withoutSpriteTabs(s, key), pending: omit(s.pending, key), checkpoints: omit(s.checkpoints, key), compare: omit(s.compare, key) };
  return next.selected === key ? { ...next, selected: spriteNames(next)[0] ?? null } : next;
}

/** One machine's whole list (a `hello`): its sprites replace what was known of that machine. */
function replaceSprites(s: UiState, host: string | null, list: Sprite[]): UiState {
  const sprites: Record<string, Sprite> = {};
  for (const [k, sp] of Object.entries(s.sprites)) if (hostOfKey(k) !== host) sprites[k] = sp;
  for (const sp of list) sprites[spriteKey(host, sp.name)] = sp;
  let next: UiState = { ...s, sprites };
  // Sprites that went away while we were not listening take their tabs with them.
  for (const t of s.tabs) if (!sprites[t.sprite]) next = { ...next, ...withoutSpriteTabs(next, t.sprite) };
  for (const name of Object.keys(next.pending)) if (!sprites[name] && next.pending[name] !== 'create' && hostOfKey(name) === host) next = { ...next, pending: omit(next.pending, name) };
  if (next.selected && !sprites[next.selected] && !next.pending[next.selected]) next = { ...next, selected: spriteNames(next)[0] ?? null };
  if (!next.selected) next = { ...next, selected: spriteNames(next)[0] ?? null };
  return next;
}

/** An event of one machine's daemon (`host` null: this computer's). */
function applyMachineEvent(s: UiState, host: string | null, e: DaemonEvent): UiState {
  switch (e.type) {
    case 'hello':
      return host === null ? { ...replaceSprites(s, null, e.sprites), loaded: true } : replaceSprites(s, host, e.sprites);
    case 'sprite.changed':
      return putSprite(s, spriteKey(host, e.sprite.name), e.sprite);
    case 'sprite.removed':
      return removeSprite(s, spriteKey(host, e.name));
    case 'checkpoints.changed':
      return { ...s, checkpoints: { ...s.checkpoints, [spriteKey(host, e.name)]: e.checkpoints } };
    case 'image.progress':
      return { ...s, imageProgress: { image: e.image, phase: e.phase, message: e.message, fraction: e.fraction } };
    case 'relay.changed':
      // A host's relay is its own (the URL panel asks it); this window shows this computer's.
      return host === null ? { ...s, relay: e.relay } : s;
    case 'hosts.changed':
      return host === null ? setHosts(s, e.hosts) : s;
    default:
      return s;
  }
}

/** The hosts as the daemon announced them; a host that is gone takes its sprites and tabs along. */
export function setHosts(s: UiState, hosts: HostStatus[]): UiState {
  const names = new Set(hosts.map((h) => h.name));
  let next: UiState = { ...s, hosts };
  for (const key of Object.keys(s.sprites)) {
    const h = hostOfKey(key);
    if (h !== null && !names.has(h)) next = removeSprite(next, key);
  }
  return next;
}

export function applyEvent(s: UiState, e: EventMessage): UiState {
  if (e.type === 'host.event') return applyMachineEvent(s, e.host, e.event);
  return applyMachineEvent(s, null, e);
}

/** The host a sprite is on, when that host is not connected (its actions wait; its list is the last known). */
export function unreachableHost(s: Pick<UiState, 'hosts'>, key: string | null): HostStatus | null {
  const host = key ? hostOfKey(key) : null;
  if (!host) return null;
  const h = s.hosts.find((x) => x.name === host);
  return !h || h.state !== 'connected' ? (h ?? { name: host, url: '', state: 'unreachable', reason: 'this host is no longer configured', retryAt: null, since: '', version: null, accel: null, accelReason: null, qemuVersion: null, sshPid: null }) : null;
}

/** The list grouped by machine: this computer first, then each host in the daemon's order. */
export function spriteGroups(s: Pick<UiState, 'sprites' | 'hosts'>): { host: HostStatus | null; keys: string[] }[] {
  const keys = Object.keys(s.sprites).sort((a, b) => parseSpriteKey(a).name.localeCompare(parseSpriteKey(b).name));
  return [{ host: null, keys: keys.filter((k) => hostOfKey(k) === null) }, ...s.hosts.map((h) => ({ host: h, keys: keys.filter((k) => hostOfKey(k) === h.name) }))];
}

export function setConnection(s: UiState, connection: ConnectionState, detail: string | null = null): UiState {
  return { ...s, connection, connectionDetail: detail };
}

/** Picking a sprite shows it: the settings page and the sprite-list drawer give way. */
export function selectSprite(s: UiState, name: string | null): UiState {
  const drawer = s.drawer === SPRITES_DRAWER ? null : s.drawer;
  if (s.selected === name && s.view === 'sprite' && drawer === s.drawer) return s;
  return { ...s, selected: name, view: 'sprite', drawer };
}

export function tabsOf(s: UiState, sprite: string | null): Tab[] {
  return sprite ? s.tabs.filter((t) => t.sprite === sprite) : [];
}

export function activeTabOf(s: UiState, sprite: string | null): Tab | null {
  if (!sprite) return null;
  const tabs = tabsOf(s, sprite);
  return tabs.find((t) => t.id === s.activeTab[sprite]) ?? tabs[tabs.length - 1] ?? null;
}

/** Opens a new terminal tab on `sprite`, makes it active and selects the sprite. */
export function openTab(s: UiState, sprite: string, id: string, session: string | null = null): UiState {
  const used = new Set(tabsOf(s, sprite).map((t) => t.title));
  let n = 1;
  while (used.has(`shell ${n}`)) n++;
  const tab: Tab = { id, sprite, session, title: `shell ${n}` };
  return { ...s, tabs: [...s.tabs, tab], activeTab: { ...s.activeTab, [sprite]: id }, selected: sprite };
}

export function closeTab(s: UiState, id: string): UiState {
  const i = s.tabs.findIndex((t) => t.id === id);
  if (i < 0) return s;
  const tab = s.tabs[i];
  const tabs = s.tabs.filter((t) => t.id !== id);
  let activeTab = s.activeTab;
  if (s.activeTab[tab.sprite] === id) {
    const siblings = s.tabs.filter((t) => t.sprite === tab.sprite);
    const at = siblings.findIndex((t) => t.id === id);
    const neighbour = siblings[at + 1] ?? siblings[at - 1];
    activeTab = neighbour ? { ...s.activeTab, [tab.sprite]: neighbour.id } : omit(s.activeTab, tab.sprite);
  }
  return { ...s, tabs, activeTab };
}

export function activateTab(s: UiState, id: string): UiState {
  const tab = s.tabs.find((t) => t.id === id);
  if (!tab) return s;
  return { ...s, activeTab: { ...s.activeTab, [tab.sprite]: id }, selected: tab.sprite };
}

/** Moves to the next (+1) or previous (−1) tab of the selected sprite, wrapping around. */
export function cycleTab(s: UiState, delta: number): UiState {
  const tabs = tabsOf(s, s.selected);
  if (tabs.length < 2) return s;
  const cur = tabs.findIndex((t) => t.id === activeTabOf(s, s.selected)?.id);
  const next = tabs[(((cur + delta) % tabs.length) + tabs.length) % tabs.length];
  return activateTab(s, next.id);
}

/** Activates the n-th (0-based) tab of the selected sprite, if it exists. */
export function activateTabIndex(s: UiState, index: number): UiState {
  const tab = tabsOf(s, s.selected)[index];
  return tab ? activateTab(s, tab.id) : s;
}

export function setTabSession(s: UiState, id: string, session: string | null): UiState {
  if (!s.tabs.some((t) => t.id === id && t.session !== session)) return s;
  return { ...s, tabs: s.tabs.map((t) => (t.id === id ? { ...t, session } : t)) };
}

export function setPending(s: UiState, sprite: string, op: string | null): UiState {
  if (op === null) return { ...s, pending: omit(s.pending, sprite) };
  return { ...s, pending: { ...s.pending, [sprite]: op } };
}

export function pushToast(s: UiState, message: string, kind: Toast['kind'] = 'error'): UiState {
  // The same sentence twice in a row is one toast.
  if (s.toasts.some((t) => t.message === message)) return s;
  const toasts = [...s.toasts, { id: s.nextToastId, message, kind }].slice(-4);
  return { ...s, toasts, nextToastId: s.nextToastId + 1 };
}

export function dismissToast(s: UiState, id: number): UiState {
  return { ...s, toasts: s.toasts.filter((t) => t.id !== id) };
}

export function clearImageProgress(s: UiState): UiState {
  return s.imageProgress ? { ...s, imageProgress: null } : s;
}

export function markRestored(s: UiState, sprite: string): UiState {
  return { ...s, restored: { ...s.restored, [sprite]: (s.restored[sprite] ?? 0) + 1 } };
}

export function setTheme(s: UiState, theme: ThemeChoice): UiState {
  return { ...s, theme };
}

/** The drawer that holds the sprite list in a narrow window. */
export const SPRITES_DRAWER = 'sprites';

/** Opens a drawer, or closes it when it is the one open. */
export function toggleDrawer(s: UiState, drawer: string): UiState {
  return { ...s, drawer: s.drawer === drawer ? null : drawer };
}

export function closeDrawer(s: UiState): UiState {
  return s.drawer === null ? s : { ...s, drawer: null };
}

// ------------------------------------------------------------------ comparing checkpoints

const EMPTY_COMPARE: CompareState = { picked: [], status: 'picking', from: null, to: null, report: null, error: null, file: null };

/**
 * Picks (or un-picks) a timeline node to compare: a third pick starts over from it. With two picked
 * the comparison is `loading` between the older (`from`) and the newer (`to`).
 */
export function pickForCompare(s: UiState, sprite: string, key: string): UiState {
  const cur = s.compare[sprite] ?? EMPTY_COMPARE;
  let picked = cur.picked.includes(key) ? cur.picked.filter((k) => k !== key) : [...cur.picked, key];
  if (picked.length > 2) picked = [key];
  if (!picked.length) return { ...s, compare: omit(s.compare, sprite) };
  const pair = comparePair(s.checkpoints[sprite] ?? [], picked);
  const next: CompareState = pair ? { ...EMPTY_COMPARE, picked, status: 'loading', ...pair } : { ...EMPTY_COMPARE, picked };
  return { ...s, compare: { ...s.compare, [sprite]: next } };
}

/** The daemon answered the comparison `from` → `to` (ignored if the picks changed meanwhile). */
export function setCompareResult(s: UiState, sprite: string, from: string, to: string, result: { report: DiffReport } | { error: string }): UiState {
  const cur = s.compare[sprite];
  if (!cur || cur.from !== from || cur.to !== to) return s;
  const next: CompareState = 'report' in result ? { ...cur, status: 'ready', report: result.report, error: null } : { ...cur, status: 'error', error: result.error };
  return { ...s, compare: { ...s.compare, [sprite]: next } };
}

export function setCompareFile(s: UiState, sprite: string, file: CompareState['file']): UiState {
  const cur = s.compare[sprite];
  if (!cur) return s;
  if (file && cur.file && file.status !== 'loading' && cur.file.path !== file.path) return s; // an answer for a file no longer shown
  return { ...s, compare: { ...s.compare, [sprite]: { ...cur, file } } };
}

export function closeCompare(s: UiState, sprite: string): UiState {
  return { ...s, compare: omit(s.compare, sprite) };
}

export type DisplayState = Sprite['state'] | 'busy';

/** What the list shows: the daemon's state, or "busy" while anyone has an operation running. */
export function displayState(sprite: Sprite, pending?: string): { state: DisplayState; detail: string | null } {
  const op = sprite.operation ?? pending ?? null;
  if (op) return { state: 'busy', detail: op };
  return { state: sprite.state, detail: null };
}

// ------------------------------------------------------------------ persistence (per window)

export interface SavedLayout {
  tabs: Tab[];
  activeTab: Record<string, string>;
  selected: string | null;
}

export function saveLayout(s: UiState): SavedLayout {
  return { tabs: s.tabs, activeTab: s.activeTab, selected: s.selected };
}

/** Restores tabs remembered by this window (after a reload); unknown shapes are ignored. */
export function restoreLayout(s: UiState, saved: unknown): UiState {
  if (!saved || typeof saved !== 'object') return s;
  const v = saved as Partial<SavedLayout>;
  const tabs = Array.isArray(v.tabs)
    ? v.tabs.filter((t): t is Tab => !!t && typeof t.id === 'string' && typeof t.sprite === 'string' && typeof t.title === 'string' && (t.session === null || typeof t.session === 'string'))
    : [];
  const activeTab: Record<string, string> = {};
  if (v.activeTab && typeof v.activeTab === 'object') for (const [k, id] of Object.entries(v.activeTab)) if (typeof id === 'string' && tabs.some((t) => t.id === id)) activeTab[k] = id;
  return { ...s, tabs, activeTab, selected: typeof v.selected === 'string' ? v.selected : s.selected };
}

// ------------------------------------------------------------------ names

const ADJECTIVES = ['amber', 'brisk', 'calm', 'clever', 'cosy', 'eager', 'gentle', 'happy', 'keen', 'lucky', 'mellow', 'nimble', 'plucky', 'quiet', 'rapid', 'sunny', 'swift', 'tidy', 'vivid', 'witty'];
const NOUNS = ['badger', 'comet', 'falcon', 'fern', 'finch', 'heron', 'lynx', 'maple', 'meadow', 'otter', 'pebble', 'pine', 'puffin', 'quokka', 'raven', 'river', 'robin', 'sparrow', 'tiger', 'willow'];

/** A friendly unused name such as `calm-otter` (a DNS label, like every sprite name). */
export function suggestName(taken: Iterable<string>, random = Math.random): string {
  const used = new Set(taken);
  for (let i = 0; i < 50; i++) {
    const name = `${ADJECTIVES[Math.floor(random() * ADJECTIVES.length)]}-${NOUNS[Math.floor(random() * NOUNS.length)]}`;
    if (!used.has(name)) return name;
  }
  let n = 2;
  while (used.has(`sprite-${n}`)) n++;
  return `sprite-${n}`;
}

/** Mirrors the daemon's rule so the create form can say what is wrong before asking. */
export function nameProblem(name: string): string | null {
  if (!name) return 'Give the sprite a name.';
  if (name.length > 63) return 'At most 63 characters.';
  if (/[A-Z]/.test(name)) return 'Use lowercase letters.';
  if (!/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/.test(name)) return 'Use a–z, 0–9 and “-” (not at the start or end).';
  return null;
}

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
