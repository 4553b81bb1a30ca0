/**
 * A checkpoint diff as clients get it (the API's `checkpoints.diff`, the CLI, spritely-env, the MCP
 * tool): paths as strings (with the exact bytes beside them when they are not UTF-8), modes in
 * octal, times in ISO, counts; and as text for people, where every name, target and patch line —
 * all of them chosen by whoever controls the guest — goes through `safeText` so it cannot drive
 * the terminal showing it. JSON for terminals goes through `terminalSafeJson` for the same reason
 * (JSON.stringify leaves C1 controls such as U+009B, a CSI, as they are).
 */
import { safeText } from '../safe-text.ts';
import { formatBytes } from '../text-format.ts';
import { formatUnified, type FileDiff } from './text-diff.ts';
import type { ChangeField, FileMeta, TreeChange } from './tree-diff.ts';

export interface DiffMetaView {
  type: string;
  size: number;
  /** Octal permission bits, e.g. "0644". */
  mode: string;
  uid: number;
  gid: number;
  mtime: string;
  target: string | null;
}

export interface DiffEntryView {
  path: string;
  /** The path's bytes in base64, when they are not valid UTF-8 (`path` then shows U+FFFD for them). */
  pathBytes?: string;
  change: TreeChange['change'];
  changes: ChangeField[];
  before: DiffMetaView | null;
  after: DiffMetaView | null;
  /** With `patch`: the file's line diff (or why there is none). */
  patch?: FileDiff;
}

export interface DiffReport {
  name: string;
  from: string;
  to: string;
  entries: DiffEntryView[];
  counts: { added: number; removed: number; modified: number };
  truncated: boolean;
  /** Bytes of disk that differ between the two (the hypervisor's count: exact for "nothing"); null when unknown. */
  changedBytes: number | null;
  problems: string[];
  timings: { totalMs: number; [phase: string]: number };
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

export function decodeName(b: Buffer): { text: string; exact: boolean } {
  try {
    return { text: utf8.decode(b), exact: true };
  } catch {
    return { text: b.toString('utf8'), exact: false };
  }
}

function metaView(m: FileMeta | null): DiffMetaView | null {
  if (!m) return null;
  return {
    type: m.type,
    size: m.size,
    mode: m.perm.toString(8).padStart(4, '0'),
    uid: m.uid,
    gid: m.gid,
    mtime: new Date(Number(m.mtimeNs / 1_000_000n)).toISOString(),
    target: m.target ? decodeName(m.target).text : null,
  };
}

export function entryView(c: TreeChange): DiffEntryView {
  const name = decodeName(c.path);
  return {
    path: name.text,
    ...(name.exact ? {} : { pathBytes: c.path.toString('base64') }),
    change: c.change,
    changes: c.fields,
    before: metaView(c.before),
    after: metaView(c.after),
  };
}

/** A guest-chosen name for a terminal: quoted when it has anything but plain characters. */
export function showName(s: string): string {
  const safe = safeText(s, { maxChars: 500 });
  return safe !== s || /[\s"'\\]/.test(s) || s === '' ? `"${safe.replace(/"/g, '\\"')}"` : s;
}

function detail(e: DiffEntryView): string {
  const a = e.before;
  const b = e.after;
  if (e.change === 'added' && b) return b.type === 'symlink' ? `symlink → ${showName(b.target ?? '')}` : b.type === 'file' ? `file, ${formatBytes(b.size)}` : b.type;
  if (e.change === 'removed' && a) return a.type === 'file' ? `file, ${formatBytes(a.size)}` : a.type;
  if (!a || !b) return '';
  const parts: string[] = [];
  if (e.changes.includes('type')) parts.push(`${a.type} → ${b.type}`);
  if (e.changes.includes('size')) parts.push(`${formatBytes(a.size)} → ${formatBytes(b.size)}`);
  else if (e.changes.includes('content')) parts.push('content');
  if (e.changes.includes('mode')) parts.push(`mode ${a.mode} → ${b.mode}`);
  if (e.changes.includes('owner')) parts.push(`owner ${a.uid}:${a.gid} → ${b.uid}:${b.gid}`);
  if (e.changes.includes('target')) parts.push(`target ${showName(a.target ?? '')} → ${showName(b.target ?? '')}`);
  return parts.join(', ');
}

const MARK = { added: 'A', removed: 'R', modified: 'M' } as const;

/** The diff for people: a summary line, then one line per path (A/R/M), and with patches their hunks. */
export function formatReport(r: DiffReport): string {
  const { added, removed, modified } = r.counts;
  const changed = r.changedBytes === null ? '' : `; ${formatBytes(r.changedBytes)} of disk differ`;
  const lines = [`${r.name}: ${r.from} → ${r.to}: ${added} added, ${removed} removed, ${modified} modified${changed}`];
  if (!r.entries.length) lines.push('no differences');
  for (const e of r.entries) {
    const d = detail(e);
    lines.push(`${MARK[e.change]}  ${showName(e.path)}${d ? `  (${d})` : ''}`);
    if (e.patch) {
      const text = formatUnified(`${r.from}:${e.path}`, `${r.to}:${e.path}`, e.patch);
      for (const l of text.split('\n').filter((x) => x !== '')) lines.push('   ' + safeText(l, { maxChars: 2000 }));
    }
  }
  if (r.truncated) lines.push(`… the list was cut at ${r.entries.length} entries (narrow it with paths)`);
  for (const p of r.problems) lines.push(`! could not read ${safeText(p)}`);
  return lines.join('\n');
}

/** JSON that is safe to print to a terminal: C1 controls and Unicode line separators escaped too. */
export function terminalSafeJson(value: unknown, indent?: number): string {
  return JSON.stringify(value, null, indent).replace(/[\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069\u061c\u200e\u200f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
