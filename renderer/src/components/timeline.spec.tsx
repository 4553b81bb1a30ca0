// @vitest-environment jsdom
import { act, cleanup, fireEvent, render, screen, within } from '@testing-library/react';
import { afterEach, describe, expect, it } from 'vitest';
import { createAppStore } from '../store.ts';
import { FakeTransport, sprite } from '../testing/fake-transport.ts';
import { fakeEnv } from '../testing/fake-env.ts';
import { fakeViews } from '../testing/fake-view.ts';
import { setWindowWidth } from '../testing/window-width.ts';
import type { Checkpoint } from '../timeline-layout.ts';
import { App } from './app.tsx';
import { AppContext } from './store-context.tsx';

afterEach(cleanup);

const cp = (id: string, parent: string | null, minutes: number, over: Partial<Checkpoint> = {}): Checkpoint => ({
  id,
  parent,
  comment: '',
  createdAt: new Date(Date.now() - minutes * 60_000).toISOString(),
  auto: false,
  memory: true,
  bytes: 300 * 2 ** 20,
  ramBytes: 290 * 2 ** 20,
  diskBytes: 10 * 2 ** 20,
  pauseMs: 420,
  current: false,
  ...over,
});

const TREE = [cp('v1', null, 30, { comment: 'fresh' }), cp('v2', 'v1', 20, { comment: 'before upgrade' }), cp('v3', 'v2', 10, { auto: true, comment: 'before restoring v1' }), cp('v4', 'v1', 5, { comment: 'other idea', current: true, memory: false })];

function mount(methods: string[] = ['checkpoints.list', 'checkpoints.create', 'checkpoints.restore', 'checkpoints.delete', 'sprites.fork']) {
  const t = new FakeTransport();
  for (const m of methods) t.methods.add(m);
  let tree = TREE;
  t.handlers['checkpoints.list'] = async () => tree;
  const store = createAppStore({ transport: t, newId: () => `tab-${Math.random()}` });
  const { factory, views } = fakeViews();
  setWindowWidth(1280);
  render(
    <AppContext.Provider value={{ store, createView: factory, env: fakeEnv().env }}>
      <App />
    </AppContext.Provider>,
  );
  return { t, store, views, setTree: (x: Checkpoint[]) => (tree = x) };
}

describe('checkpoint timeline', () => {
  it('is absent while the daemon has no checkpoints API', () => {
    const { t } = mount([]);
    act(() => t.emit({ type: 'hello', sprites: [sprite('a')] }));
    expect(screen.queryByLabelText(/Checkpoints of/)).toBeNull();
    expect(screen.queryByRole('button', { name: 'Timeline' })).toBeNull();
  });

  it('draws the tree with branches, auto checkpoints, the current one and "now"', async () => {
    const { t } = mount();
    await act(async () => t.emit({ type: 'hello', sprites: [sprite('a')] }));
    const list = await screen.findByLabelText('Checkpoints of a');
    const rows = within(list).getAllByRole('listitem');
    expect(rows.map((r) => r.getAttribute('data-checkpoint') ?? 'now')).toEqual(['v1', 'v2', 'v3', 'v4', 'now']);
    expect(rows[2].className).toMatch(/auto/);
    expect(rows[2].textContent).toMatch(/auto/);
    expect(rows[3].className).toMatch(/current/);
    expect(rows[3].textContent).toMatch(/disk only, 10 MiB/);
    expect(rows[1].textContent).toMatch(/RAM 290 MiB \+ disk 10 MiB.*20 min ago/);
    // a branch: v4 sits in a second lane
    expect(list.querySelectorAll('circle')).toHaveLength(5);
    expect(new Set([...list.querySelectorAll('circle')].map((c) => c.getAttribute('cx')))).toEqual(new Set(['8', '24']));
    // live updates from events
    act(() => t.emit({ type: 'checkpoints.changed', name: 'a', checkpoints: TREE.slice(0, 2) }));
    expect(within(list).getAllByRole('listitem')).toHaveLength(3);
  });

  it('one click on a node → a confirm that mentions the undo checkpoint → restore, and terminals reopen', async () => {
    const { t, store } = mount();
    await act(async () => t.emit({ type: 'hello', sprites: [sprite('a')] }));
    act(() => void store.getState().actions.newTerminal('a'));
    act(() => t.terminals[0].server({ type: 'session', session: 'S1', replayed: 0 }));
    t.handlers['checkpoints.restore'] = async () => {
      t.terminals[0].server({ type: 'exit', code: null, signal: null });
      return { sprite: sprite('a'), backup: 'v5', timings: { totalMs: 900 } };
    };
    fireEvent.click(await screen.findByTitle('Restore v2'));
    const dialog = screen.getByRole('dialog');
    expect(dialog.textContent).toMatch(/saved first as an automatic checkpoint/);
    await act(async () => fireEvent.click(within(dialog).getByRole('button', { name: 'Restore' })));
    expect(t.writes).toContainEqual({ method: 'checkpoints.restore', input: { name: 'a', id: 'v2' } });
    expect(t.terminals).toHaveLength(2);
    expect(t.terminals[1].opts.session).toBeNull();
  });

  it('creates a checkpoint with a comment, deletes and forks from a node', async () => {
    const { t } = mount();
    await act(async () => t.emit({ type: 'hello', sprites: [sprite('a')] }));
    t.handlers['checkpoints.create'] = async () => ({ checkpoint: cp('v5', 'v4', 0), timings: { totalMs: 1 } });
    t.handlers['checkpoints.delete'] = async () => ({ ok: true });
    t.handlers['sprites.fork'] = async ({ newName }) => ({ sprite: sprite(newName), timings: { totalMs: 1 } });
    fireEvent.change(await screen.findByLabelText('Checkpoint comment'), { target: { value: 'before rm -rf' } });
    await act(async () => fireEvent.click(screen.getByRole('button', { name: 'Checkpoint' })));
    expect(t.writes).toContainEqual({ method: 'checkpoints.create', input: { name: 'a', comment: 'before rm -rf' } });
    expect((screen.getByLabelText('Checkpoint comment') as HTMLInputElement).value).toBe('');

    fireEvent.click(screen.getByRole('button', { name: 'Delete v3' }));
    await act(async () => fireEvent.click(within(screen.getByRole('dialog')).getByRole('button', { name: 'Delete' })));
    expect(t.writes).toContainEqual({ method: 'checkpoints.delete', input: { name: 'a', id: 'v3' } });

    fireEvent.click(screen.getByRole('button', { name: 'Fork v2' }));
    const dialog = screen.getByRole('dialog');
    fireEvent.change(within(dialog).getByLabelText('Name of the new sprite'), { target: { value: 'a' } });
    expect(within(dialog).getByText(/already exists/)).toBeTruthy();
    fireEvent.change(within(dialog).getByLabelText('Name of the new sprite'), { target: { value: 'a-fork' } });
    await act(async () => fireEvent.click(within(dialog).getByRole('button', { name: 'Fork' })));
    expect(t.writes).toContainEqual({ method: 'sprites.fork', input: { name: 'a', checkpoint: 'v2', newName: 'a-fork' } });
  });
});
