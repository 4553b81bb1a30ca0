/**
 * The UI's state and every change to it, as pure functions `(state, …) → state` tested without
 * React: the sprite list (from the daemon's events, per host), tabs, pending actions, toasts,
 * drawers, the checkpoint comparison, the saved layout and name suggestions. The zustand store
 * that applies them and calls the daemon is store.ts.
 */
import type { Checkpoint, DiffEntry, DiffReport, ImageProgress, RelayStatus } from '../../vm/api/contract.ts';
import { initialSettings, type SettingsState } from './settings-state.ts';
import { comparePair } from './diff-view.ts';
import { hostOfKey, parseSpriteKey, spriteKey } from './sprite-key.ts';
import type { ConnectionState, DaemonEvent, EventMessage, HostStatus, Sprite } from './transport.ts';

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
