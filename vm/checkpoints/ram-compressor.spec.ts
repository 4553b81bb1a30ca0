import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { lz4Compress, RamCompressor, type Compress } from './ram-compressor.ts';
import { completeState, compressedOf, isCompressed, isFormOf, linkState, partialOf, removeState, settleStates, stateBytes } from './state-files.ts';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ram-compressor-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A compressor a spec drives: each call waits until released (or fails), writing half its output first. */
function gated(): { compress: Compress; release(fail?: string): void; started: Promise<void> } {
  let release!: (fail?: string) => void;
  let started!: () => void;
  const s = new Promise<void>((r) => (started = r));
  const compress: Compress = (src, dest, signal) =>
    new Promise((resolve, reject) => {
      const data = fs.readFileSync(src);
      fs.writeFileSync(dest, data.subarray(0, data.length >> 1)); // half written
      started();
      signal.addEventListener('abort', () => reject(new Error('cancelled')));
      release = (fail) => {
        if (fail) return reject(new Error(fail));
        fs.writeFileSync(dest, Buffer.concat([Buffer.from('Z:'), data]));
        resolve();
      };
    });
  return { compress, release: (f) => release(f), started: s };
}

const state = (name: string, content = 'RAM'.repeat(1000)) => {
  const f = path.join(dir, name);
  fs.writeFileSync(f, content);
  return f;
};

describe('RamCompressor', () => {
  it('replaces a raw state by its compressed form only once that is complete, then says so', async () => {
    const g = gated();
    const done: string[] = [];
    const c = new RamCompressor(g.compress, () => {}, (o) => done.push(o));
    const f = state('v1.state');
    c.enqueue(f, 'dev');
    await g.started;
    // mid-compression: the raw state is the complete one, the partial is not a state
    expect(completeState(f)).toBe(f);
    expect(fs.existsSync(partialOf(f))).toBe(true);
    g.release();
    await c.idle();
    expect(completeState(f)).toBe(compressedOf(f));
    expect(fs.existsSync(f)).toBe(false);
    expect(fs.existsSync(partialOf(f))).toBe(false);
    expect(fs.readFileSync(compressedOf(f), 'utf8').startsWith('Z:RAM')).toBe(true);
    expect(done).toEqual(['dev']);
  });

  it('cancelled mid-way (the state is being deleted) leaves the raw state alone and no partial file', async () => {
    const g = gated();
    const c = new RamCompressor(g.compress, () => {}, () => {});
    const f = state('v2.state');
    c.enqueue(f, 'dev');
    await g.started;
    c.cancel(f);
    await c.idle();
    expect(completeState(f)).toBe(f);
    expect(fs.existsSync(partialOf(f))).toBe(false);
    expect(fs.existsSync(compressedOf(f))).toBe(false);
  });

  it('a failed compression keeps the raw state and logs why; the queue goes on', async () => {
    const g = gated();
    const logs: string[] = [];
    const c = new RamCompressor(g.compress, (m) => logs.push(m), () => {});
    const f = state('v3.state');
    c.enqueue(f, 'dev');
    await g.started;
    g.release('disk full');
    await c.idle();
    expect(completeState(f)).toBe(f);
    expect(logs.join()).toMatch(/could not compress the RAM state \(kept as it is\): disk full/);
  });

  it('runs one job at a time, in order, and skips duplicates and states already gone', async () => {
    const order: string[] = [];
    const compress: Compress = async (src, dest) => {
      order.push(path.basename(src));
      fs.copyFileSync(src, dest);
    };
    const c = new RamCompressor(compress, () => {}, () => {});
    const a = state('v1.state');
    const b = state('v2.state');
    c.enqueue(a, 'dev');
    c.enqueue(b, 'dev');
    c.enqueue(b, 'dev');
    c.enqueue(path.join(dir, 'gone.state'), 'dev');
    await c.idle();
    expect(order).toEqual(['v1.state', 'v2.state']);
  });

  it('does nothing when compression is off', async () => {
    const c = new RamCompressor(async () => {
      throw new Error('never');
    }, () => {}, () => {}, false);
    const f = state('v1.state');
    c.enqueue(f, 'dev');
    await c.idle();
    expect(completeState(f)).toBe(f);
  });

  it('compresses with the real lz4 into a .lz4 form, and lz4 -dc (what a restore runs) gives the exact bytes back', async () => {
    const data = Buffer.concat([crypto.randomBytes(100_000), Buffer.alloc(2_000_000)]);
    const f = state('v9.state', data as unknown as string);
    const c = new RamCompressor(lz4Compress, () => {}, () => {});
    c.enqueue(f, 'dev');
    await c.idle();
    expect(completeState(f)).toBe(`${f}.lz4`);
    expect(stateBytes(f)).toBeLessThan(data.length / 5);
    expect(execFileSync('lz4', ['-dcq', '--', compressedOf(f)], { maxBuffer: 1 << 24 }).equals(data)).toBe(true);
    // the frame descriptor (LZ4 frame format): no content checksum (FLG bit 2), and 64 KiB blocks
    // (BD bits 4-6 = 4), so QEMU is fed as each small block is done rather than every 4 MiB
    const head = fs.readFileSync(compressedOf(f)).subarray(0, 6);
    expect(head.readUInt32LE(0)).toBe(0x184d2204);
    expect(head[4] & 0x04).toBe(0);
    expect((head[5] >> 4) & 7).toBe(4);
  });

  it('leaves a state an older daemon compressed with zstd as it is', async () => {
    const f = path.join(dir, 'v2.state');
    fs.writeFileSync(`${f}.zst`, 'Z');
    const c = new RamCompressor(lz4Compress, () => {}, () => {});
    c.enqueue(f, 'dev');
    await c.idle();
    expect(fs.readdirSync(dir)).toEqual(['v2.state.zst']);
  });
});

describe('state files', () => {
  it('after a daemon died mid-compression: partials go, a complete compressed form wins over the raw state, raw ones are left to compress', () => {
    const a = state('v1.state');
    fs.writeFileSync(partialOf(a), 'half');
    const b = state('v2.state');
    fs.writeFileSync(compressedOf(b), 'Z:whole');
    const c = state('v3.state');
    expect(settleStates([a, b, c, path.join(dir, 'v4.state')])).toEqual([a, c]);
    expect(fs.existsSync(partialOf(a))).toBe(false);
    expect(completeState(a)).toBe(a);
    expect(completeState(b)).toBe(compressedOf(b));
    expect(fs.existsSync(b)).toBe(false);
  });

  it('links whichever form is complete, and removes every form', () => {
    const src = state('sleep.state');
    fs.writeFileSync(compressedOf(src), 'Z');
    fs.rmSync(src);
    const made = linkState(src, path.join(dir, 'cp', 'v1.state'), () => {});
    expect(made).toBe(path.join(dir, 'cp', 'v1.state.lz4'));
    expect(fs.statSync(made!).ino).toBe(fs.statSync(compressedOf(src)).ino);
    expect(linkState(path.join(dir, 'nothing.state'), path.join(dir, 'x.state'), () => {})).toBeNull();
    removeState(src);
    expect(completeState(src)).toBeNull();
  });

  it('still knows the .zst form older daemons wrote: complete, compressed, linked as .zst, settled, removed', () => {
    const old = path.join(dir, 'v1.state');
    fs.writeFileSync(`${old}.zst`, 'Z');
    fs.writeFileSync(`${old}.zst.partial`, 'half'); // an older daemon killed mid-compression of another copy
    expect(completeState(old)).toBe(`${old}.zst`);
    expect(isCompressed(completeState(old)!)).toBe(true);
    expect(isCompressed(old)).toBe(false);
    expect(stateBytes(old)).toBe(1);
    expect(isFormOf('v1.state.zst', 'v1.state')).toBe(true);
    expect(isFormOf('v1.state.lz4', 'v1.state')).toBe(true);
    expect(isFormOf('v1.state.zst.partial', 'v1.state')).toBe(false);
    expect(linkState(old, path.join(dir, 'fork', 'v1.state'), () => {})).toBe(path.join(dir, 'fork', 'v1.state.zst'));
    // a raw state beside a complete .zst: the .zst wins, the partial goes
    fs.writeFileSync(old, 'RAW');
    expect(settleStates([old])).toEqual([]);
    expect(fs.readdirSync(dir).sort()).toEqual(['fork', 'v1.state.zst']);
    removeState(old);
    expect(completeState(old)).toBeNull();
    expect(fs.readdirSync(dir)).toEqual(['fork']);
  });

  it('prefers the .lz4 form when both compressed forms exist', () => {
    const f = state('v1.state');
    fs.writeFileSync(`${f}.zst`, 'Z');
    fs.writeFileSync(`${f}.lz4`, 'L');
    expect(completeState(f)).toBe(`${f}.lz4`);
    removeState(f);
    expect(fs.readdirSync(dir)).toEqual([]);
  });
});
