import { describe, expect, it } from 'vitest';
import { FakeTransport, MemoryStorage, sprite } from './testing/fake-transport.ts';
import {
  activateTab, activateTabIndex, activeTabOf, applyEvent, closeTab, createAppStore, cycleTab, displayState, initialState,
  LAYOUT_KEY, nameProblem, openTab, pushToast, restoreLayout, saveLayout, setTabSession, suggestName, tabsOf, THEME_KEY,
  type UiState,
} from './store.ts';

const hello = (...names: string[]) => applyEvent(initialState, { type: 'hello', sprites: names.map((n) => sprite(n)) });

describe('applyEvent', () => {
  it('hello replaces the list, marks it loaded and selects the first sprite', () => {
    const s = hello('b', 'a');
    expect(s.loaded).toBe(true);
    expect(Object.keys(s.sprites).sort()).toEqual(['a', 'b']);
    expect(s.selected).toBe('a');
  });

  it('hello after a reconnect drops tabs of sprites that went away and keeps the rest', () => {
    let s = openTab(openTab(hello('a', 'b'), 'a', 't1'), 'b', 't2');
    s = applyEvent(s, { type: 'hello', sprites: [sprite('b')] });
    expect(s.tabs.map((t) => t.id)).toEqual(['t2']);
    expect(s.selected).toBe('b');
  });

  it('sprite.changed upserts and selects when nothing is selected', () => {
    let s = hello();
    expect(s.selected).toBeNull();
    s = applyEvent(s, { type: 'sprite.changed', sprite: sprite('x', { state: 'stopped' }) });
    expect(s.sprites.x.state).toBe('stopped');
    expect(s.selected).toBe('x');
    s = applyEvent(s, { type: 'sprite.changed', sprite: sprite('x', { state: 'running' }) });
    expect(s.sprites.x.state).toBe('running');
  });

  it('sprite.removed drops the sprite, its tabs and moves the selection', () => {
    let s = openTab(hello('a', 'b'), 'a', 't1');
    s = applyEvent(s, { type: 'sprite.removed', name: 'a' });
    expect(s.sprites.a).toBeUndefined();
    expect(s.tabs).toEqual([]);
    expect(s.activeTab).toEqual({});
    expect(s.selected).toBe('b');
    expect(applyEvent(s, { type: 'sprite.removed', name: 'zzz' })).toBe(s);
  });

  it('image.progress is kept for the create panel', () => {
    const s = applyEvent(initialState, { type: 'image.progress', image: 'debian-12', phase: 'build', message: 'unpacking', fraction: 0.4 });
    expect(s.imageProgress).toEqual({ image: 'debian-12', phase: 'build', message: 'unpacking', fraction: 0.4 });
  });
});

describe('tabs', () => {
  it('opens numbered tabs per sprite, reusing freed numbers', () => {
    let s = openTab(openTab(hello('a'), 'a', 't1'), 'a', 't2');
    expect(tabsOf(s, 'a').map((t) => t.title)).toEqual(['shell 1', 'shell 2']);
    s = openTab(closeTab(s, 't1'), 'a', 't3');
    expect(tabsOf(s, 'a').map((t) => t.title)).toEqual(['shell 2', 'shell 1']);
    expect(activeTabOf(s, 'a')?.id).toBe('t3');
  });

  it('closing the active tab activates a neighbour', () => {
    let s = openTab(openTab(openTab(hello('a'), 'a', 't1'), 'a', 't2'), 'a', 't3');
    s = activateTab(s, 't2');
    s = closeTab(s, 't2');
    expect(activeTabOf(s, 'a')?.id).toBe('t3');
    s = closeTab(s, 't3');
    expect(activeTabOf(s, 'a')?.id).toBe('t1');
    s = closeTab(s, 't1');
    expect(activeTabOf(s, 'a')).toBeNull();
    expect(closeTab(s, 'nope')).toBe(s);
  });

  it('cycles and jumps within the selected sprite only', () => {
    let s = openTab(openTab(openTab(hello('a', 'b'), 'a', 'a1'), 'a', 'a2'), 'b', 'b1');
    s = activateTab(s, 'a1');
    expect(activeTabOf(cycleTab(s, 1), 'a')?.id).toBe('a2');
    expect(activeTabOf(cycleTab(s, -1), 'a')?.id).toBe('a2');
    expect(activeTabOf(cycleTab(cycleTab(s, 1), 1), 'a')?.id).toBe('a1');
    expect(activeTabOf(activateTabIndex(s, 1), 'a')?.id).toBe('a2');
    expect(activateTabIndex(s, 5)).toBe(s);
  });

  it('remembers session ids and survives a save/restore round trip', () => {
    let s = openTab(hello('a'), 'a', 't1');
    s = setTabSession(s, 't1', 'sess-1');
    expect(setTabSession(s, 't1', 'sess-1')).toBe(s);
    const restored = restoreLayout(initialState, JSON.parse(JSON.stringify(saveLayout(s))));
    expect(restored.tabs).toEqual([{ id: 't1', sprite: 'a', session: 'sess-1', title: 'shell 1' }]);
    expect(restored.activeTab).toEqual({ a: 't1' });
    expect(restored.selected).toBe('a');
  });

  it('ignores garbage in saved layouts', () => {
    expect(restoreLayout(initialState, 'nope')).toBe(initialState);
    const r = restoreLayout(initialState, { tabs: [{ id: 1 }, null, { id: 'x', sprite: 'a', title: 't', session: 5 }], activeTab: { a: 'missing' } });
    expect(r.tabs).toEqual([]);
    expect(r.activeTab).toEqual({});
  });
});

describe('display and names', () => {
  it('shows busy while the daemon or this window runs an operation', () => {
    expect(displayState(sprite('a'))).toEqual({ state: 'running', detail: null });
    expect(displayState(sprite('a', { operation: 'stop' }))).toEqual({ state: 'busy', detail: 'stop' });
    expect(displayState(sprite('a', { state: 'stopped' }), 'start')).toEqual({ state: 'busy', detail: 'start' });
    expect(displayState(sprite('a', { state: 'crashed' }))).toEqual({ state: 'crashed', detail: null });
  });

  it('suggests unused DNS-label names', () => {
    const n = suggestName([]);
    expect(nameProblem(n)).toBeNull();
    let i = 0;
    const seq = [0, 0, 0, 0, 0.99, 0.99];
    expect(suggestName(['amber-badger'], () => seq[i++ % seq.length])).toBe('witty-willow');
    expect(suggestName(['amber-badger'], () => 0)).toBe('sprite-2');
  });

  it('checks names like the daemon does', () => {
    expect(nameProblem('ok-name-1')).toBeNull();
    expect(nameProblem('')).toMatch(/name/);
    expect(nameProblem('Bad')).toMatch(/lowercase/);
    expect(nameProblem('-x')).toMatch(/a–z/);
    expect(nameProblem('a_b')).toMatch(/a–z/);
    expect(nameProblem('a'.repeat(64))).toMatch(/63/);
  });

  it('collapses repeated toasts and keeps at most four', () => {
    let s: UiState = initialState;
    s = pushToast(pushToast(s, 'x'), 'x');
    expect(s.toasts).toHaveLength(1);
    for (const m of ['a', 'b', 'c', 'd', 'e']) s = pushToast(s, m);
    expect(s.toasts.map((t) => t.message)).toEqual(['b', 'c', 'd', 'e']);
  });
});

describe('createAppStore', () => {
  it('streams events into state and creates a sprite, then opens a terminal on it', async () => {
    const t = new FakeTransport();
    const store = createAppStore({ transport: t, newId: () => 'tab-1' });
    const stop = store.getState().actions.start();
    t.emit({ type: 'hello', sprites: [] });
    expect(store.getState().connection).toBe('online');
    t.handlers['sprites.create'] = async ({ name }) => {
      expect(store.getState().pending[name]).toBe('create');
      t.emit({ type: 'image.progress', image: 'debian-12', phase: 'golden', message: 'booting', fraction: 0.5 });
      t.emit({ type: 'sprite.changed', sprite: sprite(name) });
      return { sprite: sprite(name), timings: { totalMs: 900 } };
    };
    expect(await store.getState().actions.createSprite('calm-otter', { memoryMiB: 2048 })).toBe(true);
    expect(t.writes).toEqual([{ method: 'sprites.create', input: { name: 'calm-otter', memoryMiB: 2048 } }]);
    const s = store.getState();
    expect(s.pending).toEqual({});
    expect(s.imageProgress).toBeNull();
    expect(s.selected).toBe('calm-otter');
    expect(s.tabs).toEqual([{ id: 'tab-1', sprite: 'calm-otter', session: null, title: 'shell 1' }]);
    stop();
    expect(t.subscribers).toBe(0);
  });

  it('re-reads the sprite after its own action, so a stale "busy" event does not stick', async () => {
    const t = new FakeTransport();
    const store = createAppStore({ transport: t });
    store.getState().actions.start();
    t.emit({ type: 'hello', sprites: [sprite('a')] });
    t.handlers['sprites.stop'] = async () => {
      t.emit({ type: 'sprite.changed', sprite: sprite('a', { state: 'stopped', operation: 'stopping' }) });
      t.known.set('a', sprite('a', { state: 'stopped', operation: null }));
      return sprite('a', { state: 'stopped', operation: 'stopping' });
    };
    await store.getState().actions.stopSprite('a');
    expect(displayState(store.getState().sprites.a)).toEqual({ state: 'stopped', detail: null });
  });

  it("shows the daemon's error message when an action fails", async () => {
    const t = new FakeTransport();
    const store = createAppStore({ transport: t });
    t.handlers['sprites.stop'] = async () => {
      throw new Error('Sprite "a" is busy (create); try again when it is done.');
    };
    await store.getState().actions.stopSprite('a');
    expect(store.getState().toasts.map((x) => x.message)).toEqual(['Sprite "a" is busy (create); try again when it is done.']);
    expect(store.getState().pending).toEqual({});
  });

  it('persists tabs per window and the theme across windows', () => {
    const session = new MemoryStorage();
    const prefs = new MemoryStorage();
    const t = new FakeTransport();
    const a = createAppStore({ transport: t, session, prefs, newId: () => 'tab-9' });
    a.getState().actions.newTerminal('box');
    a.getState().actions.setTabSession('tab-9', 'S1');
    a.getState().actions.setTheme('dark');
    expect(JSON.parse(session.getItem(LAYOUT_KEY)!).tabs[0].session).toBe('S1');
    expect(prefs.getItem(THEME_KEY)).toBe('dark');
    const b = createAppStore({ transport: t, session, prefs });
    expect(b.getState().tabs.map((x) => [x.id, x.session])).toEqual([['tab-9', 'S1']]);
    expect(b.getState().theme).toBe('dark');
  });
});
