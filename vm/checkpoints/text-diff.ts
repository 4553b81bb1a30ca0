/**
 * A line diff of two versions of a file, for `checkpoint diff --patch` and the app's side-by-side
 * view: unified hunks (Myers' O(ND) algorithm after trimming the common head and tail), or
 * "binary, N bytes → M bytes" for anything that is not UTF-8 text, or "too large" past a bound.
 * Both versions come from the guest's disk: sizes and the edit distance are bounded (past it the
 * changed middle is shown as removed-then-added, which is still a correct diff), and lines are
 * kept as they are — showing them safely is the caller's job.
 */
export interface DiffLine {
  op: ' ' | '-' | '+';
  text: string;
}

export interface Hunk {
  /** 1-based first line and line count on each side (unified-diff numbering). */
  aStart: number;
  aLines: number;
  bStart: number;
  bLines: number;
  lines: DiffLine[];
}

export type FileDiff =
  | { kind: 'text'; hunks: Hunk[]; /** a side's last line has no newline */ noNewlineAtEnd: { before: boolean; after: boolean } }
  | { kind: 'binary'; beforeBytes: number | null; afterBytes: number | null }
  | { kind: 'too-large'; beforeBytes: number | null; afterBytes: number | null };

export const TEXT_DIFF_LIMITS = { maxBytes: 1024 * 1024, maxLines: 50_000, maxEditDistance: 2000 };

const utf8 = new TextDecoder('utf-8', { fatal: true });

function asText(b: Buffer): string | null {
  if (b.includes(0)) return null;
  try {
    return utf8.decode(b);
  } catch {
    return null;
  }
}

function splitLines(s: string): { lines: string[]; noNewline: boolean } {
  if (s === '') return { lines: [], noNewline: false };
  const lines = s.split('\n');
  const noNewline = lines[lines.length - 1] !== '';
  if (!noNewline) lines.pop();
  return { lines, noNewline };
}

type Op = { op: ' ' | '-' | '+'; a: number; b: number };

/** The shortest edit script of a → b (indices into each), or null when it is longer than `maxD`. */
function myers(a: string[], b: string[], maxD: number): Op[] | null {
  const n = a.length;
  const m = b.length;
  const max = n + m;
  const off = max + 1;
  const v = new Int32Array(2 * max + 3);
  const trace: Int32Array[] = [];
  let found = -1;
  for (let d = 0; d <= Math.min(max, maxD) && found < 0; d++) {
    for (let k = -d; k <= d; k += 2) {
      let x = k === -d || (k !== d && v[off + k - 1] < v[off + k + 1]) ? v[off + k + 1] : v[off + k - 1] + 1;
      let y = x - k;
      while (x < n && y < m && a[x] === b[y]) {
        x++;
        y++;
      }
      v[off + k] = x;
      if (x >= n && y >= m) found = d;
    }
    trace.push(v.slice(off - d, off + d + 1));
  }
  if (found < 0) return null;
  const ops: Op[] = [];
  let x = n;
  let y = m;
  const at = (d: number, k: number) => trace[d][k + d];
  for (let d = found; d > 0; d--) {
    const k = x - y;
    const down = k === -d || (k !== d && at(d - 1, k - 1) < at(d - 1, k + 1));
    const pk = down ? k + 1 : k - 1;
    const px = at(d - 1, pk);
    const py = px - pk;
    while (x > px && y > py) ops.push({ op: ' ', a: --x, b: --y });
    if (down) ops.push({ op: '+', a: x, b: --y });
    else ops.push({ op: '-', a: --x, b: y });
  }
  while (x > 0 && y > 0) ops.push({ op: ' ', a: --x, b: --y });
  return ops.reverse();
}

function editScript(a: string[], b: string[], maxD: number): Op[] {
  let head = 0;
  while (head < a.length && head < b.length && a[head] === b[head]) head++;
  let tail = 0;
  while (tail < a.length - head && tail < b.length - head && a[a.length - 1 - tail] === b[b.length - 1 - tail]) tail++;
  const ma = a.slice(head, a.length - tail);
  const mb = b.slice(head, b.length - tail);
  let middle = myers(ma, mb, maxD);
  if (!middle) middle = [...ma.map((_, i) => ({ op: '-' as const, a: i, b: 0 })), ...mb.map((_, i) => ({ op: '+' as const, a: ma.length, b: i }))];
  const ops: Op[] = [];
  for (let i = 0; i < head; i++) ops.push({ op: ' ', a: i, b: i });
  for (const o of middle) ops.push({ op: o.op, a: o.a + head, b: o.b + head });
  for (let i = 0; i < tail; i++) ops.push({ op: ' ', a: a.length - tail + i, b: b.length - tail + i });
  return ops;
}

function hunksOf(ops: Op[], a: string[], b: string[], context: number): Hunk[] {
  const hunks: Hunk[] = [];
  let i = 0;
  while (i < ops.length) {
    while (i < ops.length && ops[i].op === ' ') i++;
    if (i >= ops.length) break;
    let start = Math.max(0, i - context);
    let end = i;
    // extend while the next change is within 2*context equal lines
    for (;;) {
      while (end < ops.length && ops[end].op !== ' ') end++;
      let eq = end;
      while (eq < ops.length && ops[eq].op === ' ') eq++;
      if (eq < ops.length && eq - end <= 2 * context) end = eq;
      else {
        end = Math.min(ops.length, end + context);
        break;
      }
    }
    const slice = ops.slice(start, end);
    const first = slice[0];
    const lines: DiffLine[] = slice.map((o) => ({ op: o.op, text: o.op === '+' ? b[o.b] : a[o.a] }));
    const aLines = slice.filter((o) => o.op !== '+').length;
    const bLines = slice.filter((o) => o.op !== '-').length;
    hunks.push({ aStart: aLines ? first.a + 1 : first.a, aLines, bStart: bLines ? first.b + 1 : first.b, bLines, lines });
    i = end;
    start = end;
  }
  return hunks;
}

/** The diff of two versions of a file (null: the file does not exist on that side). */
export function diffText(before: Buffer | null, after: Buffer | null, opts: { context?: number } = {}): FileDiff {
  const sizes = { beforeBytes: before?.length ?? null, afterBytes: after?.length ?? null };
  if ((before?.length ?? 0) > TEXT_DIFF_LIMITS.maxBytes || (after?.length ?? 0) > TEXT_DIFF_LIMITS.maxBytes) return { kind: 'too-large', ...sizes };
  const ta = before ? asText(before) : '';
  const tb = after ? asText(after) : '';
  if (ta === null || tb === null) return { kind: 'binary', ...sizes };
  const a = splitLines(ta);
  const b = splitLines(tb);
  if (a.lines.length > TEXT_DIFF_LIMITS.maxLines || b.lines.length > TEXT_DIFF_LIMITS.maxLines) return { kind: 'too-large', ...sizes };
  // a changed "no newline at end" changes the last line
  if (a.noNewline !== b.noNewline && a.lines.length && b.lines.length) {
    a.lines[a.lines.length - 1] += a.noNewline ? '' : '\n';
    b.lines[b.lines.length - 1] += b.noNewline ? '' : '\n';
  }
  const ops = editScript(a.lines, b.lines, TEXT_DIFF_LIMITS.maxEditDistance);
  for (const l of [a.lines, b.lines]) if (l.length && l[l.length - 1].endsWith('\n')) l[l.length - 1] = l[l.length - 1].slice(0, -1);
  return { kind: 'text', hunks: hunksOf(ops, a.lines, b.lines, opts.context ?? 3), noNewlineAtEnd: { before: a.noNewline, after: b.noNewline } };
}

/** Unified-diff text (lines as they are: the caller makes them safe to show). */
export function formatUnified(labelA: string, labelB: string, d: FileDiff): string {
  if (d.kind === 'binary') return `Binary files differ (${d.beforeBytes ?? 'absent'} → ${d.afterBytes ?? 'absent'} bytes)\n`;
  if (d.kind === 'too-large') return `Files too large to compare line by line (${d.beforeBytes ?? 'absent'} → ${d.afterBytes ?? 'absent'} bytes)\n`;
  if (!d.hunks.length) return '';
  const out = [`--- ${labelA}`, `+++ ${labelB}`];
  for (const h of d.hunks) {
    out.push(`@@ -${h.aStart},${h.aLines} +${h.bStart},${h.bLines} @@`);
    for (const l of h.lines) out.push(l.op + l.text);
  }
  return out.join('\n') + '\n';
}
