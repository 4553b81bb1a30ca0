import crypto from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { LineSplitter } from './line-splitter.ts';

const text = (lines: Buffer[]) => lines.map((l) => l.toString('latin1'));

/** Feeds `data` in the given chunk sizes (cycled) and collects everything. */
function feed(s: LineSplitter, data: Buffer, sizes: number[]): { lines: string[]; overflow: boolean } {
  const lines: string[] = [];
  let overflow = false;
  for (let at = 0, i = 0; at < data.length; i++) {
    const n = Math.max(1, sizes[i % sizes.length]);
    const r = s.push(data.subarray(at, at + n));
    lines.push(...text(r.lines));
    overflow ||= r.overflow;
    at += n;
  }
  return { lines, overflow };
}

/** What a correct splitter returns: the lines before the first one over the cap, and whether there was one. */
function reference(data: Buffer, max: number): { lines: string[]; overflow: boolean } {
  const parts = data.toString('latin1').split('\n');
  const unfinished = parts.pop()!;
  const lines: string[] = [];
  for (const p of parts) {
    if (p.length > max) return { lines, overflow: true };
    lines.push(p);
  }
  return { lines, overflow: unfinished.length > max };
}

describe('LineSplitter', () => {
  it('splits across chunk boundaries and keeps an unfinished line for later', () => {
    const s = new LineSplitter(100);
    expect(text(s.push(Buffer.from('ab')).lines)).toEqual([]);
    expect(s.buffered).toBe(2);
    expect(text(s.push(Buffer.from('c\nde\n\nf')).lines)).toEqual(['abc', 'de', '']);
    expect(s.buffered).toBe(1);
    expect(text(s.push(Buffer.from('\n')).lines)).toEqual(['f']);
    expect(s.buffered).toBe(0);
  });

  it('never cuts a UTF-8 character, whatever the chunk boundaries', () => {
    const data = Buffer.from('ünï€ode 😀\nzwei\n');
    for (let cut = 1; cut < data.length; cut++) {
      const s = new LineSplitter(100);
      const lines = [...s.push(data.subarray(0, cut)).lines, ...s.push(data.subarray(cut)).lines];
      expect(lines.map((l) => l.toString('utf8'))).toEqual(['ünï€ode 😀', 'zwei']);
    }
  });

  it('a line of exactly the cap passes; one byte more is an overflow, and nothing after it is kept', () => {
    const s = new LineSplitter(4);
    expect(s.push(Buffer.from('abcd\n'))).toEqual({ lines: [Buffer.from('abcd')], overflow: false });
    const r = s.push(Buffer.from('ok\nabcde\nlater\n'));
    expect(text(r.lines)).toEqual(['ok']);
    expect(r.overflow).toBe(true);
    expect(s.overflow).toBe(true);
    expect(s.buffered).toBe(0);
    expect(s.push(Buffer.from('more\n'))).toEqual({ lines: [], overflow: true });
    s.reset();
    expect(text(s.push(Buffer.from('back\n')).lines)).toEqual(['back']);
  });

  it('reports an overflow before the line ends: the unfinished bytes never pass the cap', () => {
    const s = new LineSplitter(10);
    expect(s.push(Buffer.alloc(6, 0x41)).overflow).toBe(false);
    expect(s.push(Buffer.alloc(5, 0x41)).overflow).toBe(true);
    expect(s.buffered).toBe(0);
  });

  it('64 MiB without a newline, in 64 KiB chunks, takes well under a second (linear), then the line ends', () => {
    const s = new LineSplitter(128 * 2 ** 20);
    const chunk = Buffer.alloc(64 * 1024, 0x41);
    const t0 = performance.now();
    for (let i = 0; i < 1024; i++) expect(s.push(chunk).lines).toHaveLength(0);
    const r = s.push(Buffer.from('\n'));
    const ms = performance.now() - t0;
    expect(r.lines[0].length).toBe(64 * 2 ** 20);
    expect(ms).toBeLessThan(1000);
  });

  it('64 MiB without a newline against a 1 MiB cap: overflow at the cap, the rest costs nothing', () => {
    const s = new LineSplitter(2 ** 20);
    const chunk = Buffer.alloc(64 * 1024, 0x41);
    const t0 = performance.now();
    let firstOverflow = -1;
    for (let i = 0; i < 1024; i++) if (s.push(chunk).overflow && firstOverflow < 0) firstOverflow = i;
    expect(performance.now() - t0).toBeLessThan(500);
    expect(firstOverflow).toBe(16); // the 17th chunk takes it past 1 MiB
  });

  it('one byte at a time stays linear (1 MiB of single-byte chunks)', () => {
    const s = new LineSplitter(4 * 2 ** 20);
    const one = Buffer.from('x');
    const t0 = performance.now();
    for (let i = 0; i < 2 ** 20; i++) s.push(one);
    expect(s.push(Buffer.from('\n')).lines[0].length).toBe(2 ** 20);
    expect(performance.now() - t0).toBeLessThan(2000);
  });

  it('fuzz: any data in any chunking gives what a whole-buffer split gives', () => {
    let seed = 7;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    for (let round = 0; round < 400; round++) {
      const len = rand(400);
      const data = Buffer.from(crypto.randomBytes(len).map((b) => (rand(8) === 0 ? 0x0a : b)));
      const max = 1 + rand(60);
      const sizes = Array.from({ length: 1 + rand(5) }, () => 1 + rand(50));
      const s = new LineSplitter(max);
      expect(feed(s, data, sizes), `round ${round}: max ${max}, sizes ${sizes}`).toEqual(reference(data, max));
    }
  });
});
