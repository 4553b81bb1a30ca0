import { describe, expect, it } from 'vitest';
import type { Checkpoint } from '../../vm/api/contract.ts';
import { buildDiffTree, comparePair, describeEntry, hasLines, sideBySide, treeRows, visible, type DiffEntry } from './diff-view.ts';

const meta = (type: string, size = 0, over = {}) => ({ type, size, mode: '0644', uid: 0, gid: 0, mtime: '2030-01-01T00:00:00.000Z', target: null, ...over });
const add = (path: string, type = 'file', size = 1): DiffEntry => ({ path, change: 'added', changes: [], before: null, after: meta(type, size) });
const mod = (path: string, changes: DiffEntry['changes'], a = meta('file', 8), b = meta('file', 10)): DiffEntry => ({ path, change: 'modified', changes, before: a, after: b });
const rm = (path: string): DiffEntry => ({ path, change: 'removed', changes: [], before: meta('file', 3), after: null });

const cp = (id: string, minutes: number): Checkpoint => ({ id, parent: null, comment: '', createdAt: new Date(Date.UTC(2030, 0, 1, 0, minutes)).toISOString(), auto: false, memory: true, bytes: 0, ramBytes: 0, diskBytes: 0, pauseMs: 0, current: false });

describe('comparePair', () => {
  it('puts the older checkpoint first and "now" last, whatever the order of the picks', () => {
    const cps = [cp('v1', 1), cp('v2', 2), cp('v10', 3)];
    expect(comparePair(cps, ['v10', 'v2'])).toEqual({ from: 'v2', to: 'v10' });
    expect(comparePair(cps, ['v1', 'v10'])).toEqual({ from: 'v1', to: 'v10' });
    expect(comparePair(cps, ['now', 'v2'])).toEqual({ from: 'v2', to: 'now' });
    expect(comparePair(cps, ['v2'])).toBeNull();
  });
});

describe('buildDiffTree', () => {
  it('nests paths under their directories with counts, folding single-child chains', () => {
    const root = buildDiffTree([add('/usr/local/share/pkg/a'), add('/usr/local/share/pkg/b'), mod('/etc/app.conf', ['content', 'size']), rm('/etc/motd'), add('/root')]);
    expect(root.counts).toEqual({ added: 3, removed: 1, modified: 1 });
    const rows = treeRows(root, new Set());
    expect(rows.map((r) => `${'  '.repeat(r.depth)}${r.node.name} ${r.node.counts.added}/${r.node.counts.removed}/${r.node.counts.modified}${r.node.entry ? ` ${r.node.entry.change}` : ''}`)).toEqual([
      'usr/local/share/pkg 2/0/0',
      '  a 1/0/0 added',
      '  b 1/0/0 added',
      'etc 0/1/1',
      '  app.conf 0/0/1 modified',
      '  motd 0/1/0 removed',
      'root 1/0/0 added',
    ]);
    expect(treeRows(root, new Set(['/etc'])).map((r) => r.node.name)).toEqual(['usr/local/share/pkg', 'a', 'b', 'etc', 'root']);
  });

  it('keeps an entry for a directory that changed itself, with its children below', () => {
    const root = buildDiffTree([mod('/var/old', ['type'], meta('dir'), meta('file', 3)), { ...rm('/var/old/x') }]);
    const rows = treeRows(root, new Set());
    expect(rows.map((r) => [r.node.name, r.node.entry?.change ?? null])).toEqual([
      ['var/old', 'modified'],
      ['x', 'removed'],
    ]);
  });
});

describe('sideBySide', () => {
  it('pairs removed lines with the added lines that replace them, numbering both sides', () => {
    const rows = sideBySide({
      kind: 'text',
      noNewlineAtEnd: { before: false, after: false },
      hunks: [{ aStart: 1, aLines: 3, bStart: 1, bLines: 4, lines: [{ op: ' ', text: 'a' }, { op: '-', text: 'b' }, { op: '+', text: 'B' }, { op: '+', text: 'B2' }, { op: ' ', text: 'c' }] }],
    });
    expect(rows).toEqual([
      { kind: 'hunk', header: '@@ -1,3 +1,4 @@' },
      { kind: 'line', left: { no: 1, text: 'a', op: ' ' }, right: { no: 1, text: 'a', op: ' ' } },
      { kind: 'line', left: { no: 2, text: 'b', op: '-' }, right: { no: 2, text: 'B', op: '+' } },
      { kind: 'line', left: null, right: { no: 3, text: 'B2', op: '+' } },
      { kind: 'line', left: { no: 3, text: 'c', op: ' ' }, right: { no: 4, text: 'c', op: ' ' } },
    ]);
  });

  it('numbers a new file from 1', () => {
    const rows = sideBySide({ kind: 'text', noNewlineAtEnd: { before: false, after: false }, hunks: [{ aStart: 0, aLines: 0, bStart: 1, bLines: 1, lines: [{ op: '+', text: 'x' }] }] });
    expect(rows[1]).toEqual({ kind: 'line', left: null, right: { no: 1, text: 'x', op: '+' } });
  });
});

describe('names and descriptions', () => {
  it('shows control characters as escapes', () => {
    expect(visible('a\x1b[31mb\nc\u202ed')).toBe('a\\x1b[31mb\\x0ac\\u202ed');
    expect(visible('plain — ünïcode')).toBe('plain — ünïcode');
  });

  it('says what happened in one line', () => {
    expect(describeEntry(add('/x', 'file', 2048))).toBe('new file, 2.0 KiB');
    expect(describeEntry(mod('/x', ['content', 'size']))).toBe('8 B → 10 B');
    expect(describeEntry(mod('/x', ['mode'], meta('file', 1), meta('file', 1, { mode: '0755' })))).toBe('mode 0644 → 0755');
    expect(describeEntry(mod('/l', ['target'], meta('symlink', 0, { target: 'a' }), meta('symlink', 0, { target: 'b\x1b' })))).toBe('target a → b\\x1b');
    expect(describeEntry(rm('/y'))).toBe('removed file, 3 B');
  });

  it('offers lines only for files whose content changed', () => {
    expect(hasLines(mod('/x', ['content']))).toBe(true);
    expect(hasLines(mod('/x', ['mode']))).toBe(false);
    expect(hasLines(add('/d', 'dir'))).toBe(false);
    expect(hasLines(rm('/y'))).toBe(true);
  });
});
