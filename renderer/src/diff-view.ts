/**
 * What the checkpoint diff view shows, as pure data: which two timeline nodes are compared (the
 * older one first, "now" last), the changed paths as a tree with counts (single-child directory
 * chains folded into one row), a file's hunks as side-by-side rows, and names made visible — every
 * name and line comes from the sprite, so control characters are shown as \xNN escapes rather than
 * handed to the page as they are. The component only draws what this returns.
 */
import type { Checkpoint, DiffEntry, FileDiff } from '../../vm/api/contract.ts';
import { formatBytes } from './format-bytes.ts';

export type { DiffEntry, FileDiff };

export interface Counts {
  added: number;
  removed: number;
  modified: number;
}

export interface DiffNode {
  /** What the row shows: one name, or a folded chain "a/b/c". */
  name: string;
  path: string;
  entry: DiffEntry | null;
  children: DiffNode[];
  counts: Counts;
}

const CONTROLS = /[\p{Cc}\p{Cs}\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]/gu;

/** A guest-chosen name or line with every control character shown as an escape (\x1b, \u202e). */
export function visible(s: string): string {
  return s.replace(CONTROLS, (c) => {
    const cp = c.codePointAt(0)!;
    return cp <= 0xff ? `\\x${cp.toString(16).padStart(2, '0')}` : `\\u${cp.toString(16).padStart(4, '0')}`;
  });
}

function order(cps: Checkpoint[], id: string): number {
  const c = cps.find((x) => x.id === id);
  return c ? Date.parse(c.createdAt) * 1000 + Number(id.slice(1)) % 1000 : Number.MAX_SAFE_INTEGER;
}

/** The two picked nodes as `from` (older) and `to` (newer; "now" is always the newer). */
export function comparePair(cps: Checkpoint[], picked: string[]): { from: string; to: string } | null {
  if (picked.length !== 2) return null;
  const [a, b] = picked;
  if (a === 'now') return { from: b, to: 'now' };
  if (b === 'now') return { from: a, to: 'now' };
  return order(cps, a) <= order(cps, b) ? { from: a, to: b } : { from: b, to: a };
}

const zero = (): Counts => ({ added: 0, removed: 0, modified: 0 });

/** The changed paths as a tree under "/" (every node counts what changed at or below it). */
export function buildDiffTree(entries: DiffEntry[]): DiffNode {
  const root: DiffNode = { name: '/', path: '/', entry: null, children: [], counts: zero() };
  for (const e of entries) {
    const parts = e.path.split('/').filter(Boolean);
    let node = root;
    node.counts[e.change]++;
    let path = '';
    for (const part of parts) {
      path += `/${part}`;
      let child = node.children.find((c) => c.path === path);
      if (!child) {
        child = { name: part, path, entry: null, children: [], counts: zero() };
        node.children.push(child);
      }
      child.counts[e.change]++;
      node = child;
    }
    if (node !== root) node.entry = e;
  }
  const fold = (n: DiffNode): DiffNode => {
    n.children = n.children.map(fold);
    while (n !== root && !n.entry && n.children.length === 1 && n.children[0].children.length) {
      const only = n.children[0];
      n.name = `${n.name}/${only.name}`;
      n.path = only.path;
      n.entry = only.entry;
      n.children = only.children;
    }
    return n;
  };
  return fold(root);
}

/** The rows to draw, depth first, skipping what is below a collapsed path. */
export function treeRows(root: DiffNode, collapsed: ReadonlySet<string>): { node: DiffNode; depth: number }[] {
  const out: { node: DiffNode; depth: number }[] = [];
  const walk = (n: DiffNode, depth: number) => {
    for (const c of n.children) {
      out.push({ node: c, depth });
      if (!collapsed.has(c.path)) walk(c, depth + 1);
    }
  };
  walk(root, 0);
  return out;
}

export interface SideCell {
  no: number;
  text: string;
  op: ' ' | '-' | '+';
}

export type SideRow = { kind: 'hunk'; header: string } | { kind: 'line'; left: SideCell | null; right: SideCell | null };

/** Unified hunks as side-by-side rows: removed lines beside the added lines that replace them. */
export function sideBySide(d: Extract<FileDiff, { kind: 'text' }>): SideRow[] {
  const rows: SideRow[] = [];
  for (const h of d.hunks) {
    rows.push({ kind: 'hunk', header: `@@ -${h.aStart},${h.aLines} +${h.bStart},${h.bLines} @@` });
    let a = h.aLines ? h.aStart : h.aStart + 1;
    let b = h.bLines ? h.bStart : h.bStart + 1;
    let i = 0;
    while (i < h.lines.length) {
      const l = h.lines[i];
      if (l.op === ' ') {
        rows.push({ kind: 'line', left: { no: a++, text: l.text, op: ' ' }, right: { no: b++, text: l.text, op: ' ' } });
        i++;
        continue;
      }
      const del: SideCell[] = [];
      const add: SideCell[] = [];
      while (i < h.lines.length && h.lines[i].op === '-') del.push({ no: a++, text: h.lines[i++].text, op: '-' });
      while (i < h.lines.length && h.lines[i].op === '+') add.push({ no: b++, text: h.lines[i++].text, op: '+' });
      for (let k = 0; k < Math.max(del.length, add.length); k++) rows.push({ kind: 'line', left: del[k] ?? null, right: add[k] ?? null });
    }
  }
  return rows;
}

/** One line saying what happened to a path ("file, 9 B", "8 B → 10 B, mode 0644 → 0755", …). */
export function describeEntry(e: DiffEntry): string {
  const a = e.before;
  const b = e.after;
  if (e.change === 'added' && b) return b.type === 'symlink' ? `new symlink → ${visible(b.target ?? '')}` : b.type === 'file' ? `new file, ${formatBytes(b.size)}` : `new ${b.type === 'dir' ? 'directory' : b.type}`;
  if (e.change === 'removed' && a) return a.type === 'file' ? `removed file, ${formatBytes(a.size)}` : `removed ${a.type === 'dir' ? 'directory' : a.type}`;
  if (!a || !b) return '';
  const parts: string[] = [];
  if (e.changes.includes('type')) parts.push(`${a.type} → ${b.type}`);
  if (e.changes.includes('size')) parts.push(`${formatBytes(a.size)} → ${formatBytes(b.size)}`);
  else if (e.changes.includes('content')) parts.push('content changed');
  if (e.changes.includes('mode')) parts.push(`mode ${a.mode} → ${b.mode}`);
  if (e.changes.includes('owner')) parts.push(`owner ${a.uid}:${a.gid} → ${b.uid}:${b.gid}`);
  if (e.changes.includes('target')) parts.push(`target ${visible(a.target ?? '')} → ${visible(b.target ?? '')}`);
  return parts.join(', ');
}

/** Whether a line diff of the entry can be asked for (a file on at least one side, its content changed or it came or went). */
export function hasLines(e: DiffEntry): boolean {
  const types = [e.before?.type, e.after?.type].filter(Boolean);
  return types.length > 0 && types.every((t) => t === 'file') && (e.change !== 'modified' || e.changes.includes('content')) && !e.pathBytes;
}
