// @vitest-environment jsdom
import { act, cleanup, fireEvent, screen, within } from '@testing-library/react';
import { afterEach, describe, expect, it } from 'vitest';
import type { DiffEntry, DiffReport } from '../../../vm/api/contract.ts';
import { sprite } from '../testing/fake-transport.ts';
import { renderApp } from '../testing/render-app.tsx';
import type { Checkpoint } from '../timeline-layout.ts';

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
const meta = (type: string, size: number) => ({ type, size, mode: '0644', uid: 0, gid: 0, mtime: '2030-01-01T00:00:00.000Z', target: null });
const ENTRIES: DiffEntry[] = [
  { path: '/etc/app.conf', change: 'modified', changes: ['content', 'size'], before: meta('file', 8), after: meta('file', 10) },
  { path: '/etc/motd', change: 'removed', changes: [], before: meta('file', 6), after: null },
  { path: '/usr/local/bin/tool', change: 'added', changes: [], before: null, after: meta('file', 5000) },
  { path: '/tmp/\x1b]0;pwned\x07name', change: 'added', changes: [], before: null, after: meta('file', 1) },
];
const report = (from: string, to: string, entries = ENTRIES): DiffReport => ({ name: 'a', from, to, entries, counts: { added: entries.filter((e) => e.change === 'added').length, removed: entries.filter((e) => e.change === 'removed').length, modified: entries.filter((e) => e.change === 'modified').length }, truncated: false, changedBytes: 4096, problems: [], timings: { totalMs: 80 } });

function mount() {
  const { t, store } = renderApp({ methods: ['checkpoints.list', 'checkpoints.create', 'checkpoints.restore', 'checkpoints.delete', 'checkpoints.diff'] });
  t.handlers['checkpoints.list'] = async () => [cp('v1', null, 30, { comment: 'fresh', freeBytes: 120 * 2 ** 20 }), cp('v2', 'v1', 20, { current: true, mounted: true })];
  t.handlers['checkpoints.diff'] = async (i: { from: string; to: string; paths?: string[]; patch?: boolean }) => {
    if (!i.patch) return report(i.from, i.to);
    const e = ENTRIES.find((x) => x.path === i.paths![0])!;
    const patch = e.path === '/usr/local/bin/tool' ? { kind: 'binary', beforeBytes: null, afterBytes: 5000 } : { kind: 'text', noNewlineAtEnd: { before: false, after: false }, hunks: [{ aStart: 1, aLines: 1, bStart: 1, bLines: 1, lines: [{ op: '-', text: 'port=80' }, { op: '+', text: 'port=8080' }] }] };
    return report(i.from, i.to, [{ ...e, patch } as DiffEntry]);
  };
  return { t, store };
}

describe('comparing two timeline nodes', () => {
  it('pick a checkpoint and now → the changed files as a tree with counts; a file → its lines side by side; a binary → its sizes', async () => {
    const { t } = mount();
    await act(async () => t.emit({ type: 'hello', sprites: [sprite('a')] }));
    fireEvent.click(await screen.findByRole('button', { name: 'Compare v1' }));
    expect(screen.getByText(/Comparing from/).textContent).toMatch(/Comparing from v1: pick another checkpoint or now/);
    await act(async () => fireEvent.click(screen.getByRole('button', { name: 'Compare now' })));
    expect(t.calls).toContainEqual({ method: 'checkpoints.diff', input: { name: 'a', from: 'v1', to: 'now' } });
    const dialog = screen.getByRole('dialog', { name: 'Changes in a' });
    expect(dialog.textContent).toMatch(/Changes in a: v1 → now/);
    expect(dialog.textContent).toMatch(/2 added, 1 removed, 1 modified/);
    const tree = within(dialog).getByRole('tree');
    const rows = within(tree).getAllByRole('treeitem');
    expect(rows.map((r) => r.getAttribute('data-path'))).toEqual(['/etc', '/etc/app.conf', '/etc/motd', '/usr/local/bin', '/usr/local/bin/tool', '/tmp', '/tmp/\x1b]0;pwned\x07name']);
    expect(rows[0].textContent).toMatch(/−1~1/);
    // the hostile name is shown with its controls as escapes
    expect(rows[6].textContent).toContain('\\x1b]0;pwned\\x07name');
    expect(dialog.textContent).not.toMatch(/\x1b/);

    await act(async () => fireEvent.click(within(rows[1]).getByRole('button', { name: /app\.conf/ })));
    expect(t.calls).toContainEqual({ method: 'checkpoints.diff', input: { name: 'a', from: 'v1', to: 'now', paths: ['/etc/app.conf'], patch: true } });
    const lines = within(dialog).getByRole('table', { name: 'Lines before and after' });
    const cells = [...lines.querySelectorAll('tr')].map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent));
    expect(cells).toEqual([['@@ -1,1 +1,1 @@'], ['1', 'port=80', '1', 'port=8080']]);
    expect(dialog.textContent).toMatch(/8 B → 10 B/);

    await act(async () => fireEvent.click(within(rows[4]).getByRole('button', { name: /tool/ })));
    expect(dialog.textContent).toMatch(/Binary, absent → 4\.9 KiB/);

    // folding a directory hides what is below it
    fireEvent.click(within(rows[0]).getByRole('button', { name: 'Fold /etc' }));
    expect(within(tree).getAllByRole('treeitem')).toHaveLength(5);

    fireEvent.click(within(dialog).getByRole('button', { name: 'Close the comparison' }));
    expect(screen.queryByRole('dialog')).toBeNull();
    expect(screen.queryByText(/Comparing from/)).toBeNull();
  });

  it('two checkpoints are compared older → newer, whatever order they were picked in; the daemon\'s error is shown', async () => {
    const { t } = mount();
    await act(async () => t.emit({ type: 'hello', sprites: [sprite('a')] }));
    t.handlers['checkpoints.diff'] = async () => {
      throw new Error('Could not read the filesystem of "a"');
    };
    fireEvent.click(await screen.findByRole('button', { name: 'Compare v2' }));
    await act(async () => fireEvent.click(screen.getByRole('button', { name: 'Compare v1' })));
    expect(t.calls).toContainEqual({ method: 'checkpoints.diff', input: { name: 'a', from: 'v1', to: 'v2' } });
    expect(screen.getByRole('dialog').textContent).toMatch(/Could not read the filesystem of "a"/);
  });

  it('shows what each checkpoint frees and which are mounted', async () => {
    const { t } = mount();
    await act(async () => t.emit({ type: 'hello', sprites: [sprite('a')] }));
    const list = await screen.findByLabelText('Checkpoints of a');
    const rows = within(list).getAllByRole('listitem');
    expect(within(rows[0]).getByTitle('300 MiB in all; deleting it frees 120 MiB; guest paused 420 ms').textContent).toBe('RAM 290 MiB + disk 10 MiB');
    // and the delete confirmation says it
    fireEvent.click(within(rows[0]).getByRole('button', { name: 'Delete v1' }));
    expect(screen.getByRole('dialog').textContent).toMatch(/It frees 120 MiB on this computer/);
    fireEvent.click(within(screen.getByRole('dialog')).getByRole('button', { name: 'Cancel' }));
    expect(rows[1].textContent).toMatch(/mounted/);
    expect(within(list).getByRole('button', { name: 'Compare v1' })).toBeTruthy();
  });

  it('offers no comparing when the daemon cannot', async () => {
    const { t } = mount();
    t.methods.delete('checkpoints.diff');
    await act(async () => t.emit({ type: 'hello', sprites: [sprite('a')] }));
    await screen.findByLabelText('Checkpoints of a');
    expect(screen.queryByRole('button', { name: 'Compare v1' })).toBeNull();
  });
});
