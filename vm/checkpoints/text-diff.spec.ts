import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { diffText, formatUnified, TEXT_DIFF_LIMITS } from './text-diff.ts';

const B = (s: string) => Buffer.from(s);

/** What GNU diff -u says (its hunk lines), the reference. */
function gnu(a: string, b: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'text-diff-'));
  fs.writeFileSync(path.join(dir, 'a'), a);
  fs.writeFileSync(path.join(dir, 'b'), b);
  let out = '';
  try {
    execFileSync('diff', ['-u', 'a', 'b'], { cwd: dir, encoding: 'utf8' });
  } catch (err) {
    out = (err as { stdout: string }).stdout;
  }
  fs.rmSync(dir, { recursive: true });
  return out.split('\n').slice(2).join('\n');
}

function mine(a: string, b: string): string {
  return formatUnified('a', 'b', diffText(B(a), B(b))).split('\n').slice(2).join('\n');
}

describe('diffText', () => {
  it('gives the hunks GNU diff gives: a change, an insertion, a deletion, far apart and close together', () => {
    const base = Array.from({ length: 40 }, (_, i) => `line ${i}`);
    const cases: string[][] = [
      base.map((l, i) => (i === 5 ? 'changed' : l)),
      [...base.slice(0, 10), 'inserted', ...base.slice(10)],
      base.filter((_, i) => i !== 30),
      base.map((l, i) => (i === 5 || i === 35 ? `${l}!` : l)),
      base.map((l, i) => (i === 5 || i === 9 ? `${l}!` : l)),
      ['new first', ...base, 'new last'],
      [],
    ];
    for (const b of cases) {
      const a = base.join('\n') + '\n';
      const bs = b.length ? b.join('\n') + '\n' : '';
      expect(mine(a, bs)).toBe(gnu(a, bs));
    }
  });

  it('diffs a new and a removed file', () => {
    expect(diffText(null, B('a\nb\n'))).toMatchObject({ kind: 'text', hunks: [{ aStart: 0, aLines: 0, bStart: 1, bLines: 2, lines: [{ op: '+', text: 'a' }, { op: '+', text: 'b' }] }] });
    expect(diffText(B('x\n'), null)).toMatchObject({ kind: 'text', hunks: [{ aLines: 1, bLines: 0 }] });
  });

  it('says when only the final newline changed', () => {
    const d = diffText(B('a\nb'), B('a\nb\n'));
    expect(d.kind === 'text' && d.hunks[0].lines).toEqual([{ op: ' ', text: 'a' }, { op: '-', text: 'b' }, { op: '+', text: 'b' }]);
    expect(d.kind === 'text' && d.noNewlineAtEnd).toEqual({ before: true, after: false });
  });

  it('calls NUL bytes and invalid UTF-8 binary, with both sizes', () => {
    expect(diffText(B('a\0b'), B('ab'))).toEqual({ kind: 'binary', beforeBytes: 3, afterBytes: 2 });
    expect(diffText(Buffer.from([0xff, 0xfe]), null)).toEqual({ kind: 'binary', beforeBytes: 2, afterBytes: null });
    expect(formatUnified('a', 'b', { kind: 'binary', beforeBytes: 10, afterBytes: 20 })).toBe('Binary files differ (10 → 20 bytes)\n');
  });

  it('bounds the work: big files are "too large", a huge edit distance is still a correct diff', () => {
    expect(diffText(Buffer.alloc(TEXT_DIFF_LIMITS.maxBytes + 1, 'a'), B('a')).kind).toBe('too-large');
    const a = Array.from({ length: 3000 }, (_, i) => `a${i}`);
    const b = Array.from({ length: 3000 }, (_, i) => `b${i}`);
    const d = diffText(B(a.join('\n') + '\n'), B(b.join('\n') + '\n'), { context: 0 });
    expect(d.kind).toBe('text');
    if (d.kind !== 'text') return;
    const lines = d.hunks.flatMap((h) => h.lines);
    expect(lines.filter((l) => l.op === '-').map((l) => l.text)).toEqual(a);
    expect(lines.filter((l) => l.op === '+').map((l) => l.text)).toEqual(b);
  });

  it('is empty for equal files', () => {
    expect(diffText(B('same\n'), B('same\n'))).toMatchObject({ kind: 'text', hunks: [] });
    expect(formatUnified('a', 'b', diffText(B('same\n'), B('same\n')))).toBe('');
  });
});
