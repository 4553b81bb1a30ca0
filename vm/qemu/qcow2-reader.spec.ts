import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Qcow2Reader, readQcow2Header } from './qcow2-reader.ts';
import { changedBytes, exclusiveBytes } from './qcow2-snapshot-costs.ts';

// Real images made by qemu-img/qemu-io (QEMU's own tools), read back by the reader and compared
// byte for byte with what `qemu-img convert` says the same state holds.
let dir: string;
const img = (...a: string[]) => execFileSync('qemu-img', a, { stdio: 'pipe' });
const io = (file: string, cmd: string) => execFileSync('qemu-io', ['-c', cmd, file], { stdio: 'pipe' });
const MiB = 2 ** 20;

function rawOf(file: string, snapshot?: string): Buffer {
  const out = path.join(dir, `raw-${Math.random()}`);
  img('convert', '-U', ...(snapshot ? ['-l', `snapshot.name=${snapshot}`] : []), '-O', 'raw', file, out);
  const b = fs.readFileSync(out);
  fs.rmSync(out);
  return b;
}

function readAll(r: Qcow2Reader): Buffer {
  return r.read(0, r.size);
}

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qcow2-reader-'));
  // base (raw) <- gold (qcow2, 64k clusters) <- disk (qcow2, 4k clusters: several L2 tables)
  fs.writeFileSync(path.join(dir, 'base.raw'), Buffer.alloc(6 * MiB, 0x11));
  img('create', '-q', '-f', 'qcow2', '-b', 'base.raw', '-F', 'raw', path.join(dir, 'gold.qcow2'), String(8 * MiB));
  io(path.join(dir, 'gold.qcow2'), 'write -P 0x22 1M 64k');
  img('create', '-q', '-f', 'qcow2', '-o', 'cluster_size=4096,lazy_refcounts=on', '-b', 'gold.qcow2', '-F', 'qcow2', path.join(dir, 'disk.qcow2'), String(8 * MiB));
  const disk = path.join(dir, 'disk.qcow2');
  io(disk, 'write -P 0x33 0 8k');
  img('snapshot', '-c', 'v1', disk);
  io(disk, 'write -P 0x44 4k 4k');
  io(disk, 'write -P 0x55 5M 12k');
  io(disk, 'write -z 1M 4k');
  img('snapshot', '-c', 'v2', disk);
  img('snapshot', '-c', 'v3', disk);
  io(disk, 'write -P 0x66 7M 4k');
});

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('Qcow2Reader', () => {
  const disk = () => path.join(dir, 'disk.qcow2');

  it('reads the live state and each snapshot exactly as QEMU does, through a qcow2 and a raw backing file', () => {
    for (const s of [undefined, 'v1', 'v2', 'v3']) {
      const r = Qcow2Reader.open(disk(), s ?? null);
      expect(readAll(r).equals(rawOf(disk(), s)), `state ${s ?? 'live'}`).toBe(true);
      r.close();
    }
  });

  it('reads unaligned pieces across clusters', () => {
    const r = Qcow2Reader.open(disk(), 'v2');
    const whole = rawOf(disk(), 'v2');
    for (const [off, len] of [[4090, 20], [5 * MiB - 3, 8200], [MiB - 1, 4098], [8 * MiB - 10, 10]]) expect(r.read(off, len).equals(whole.subarray(off, off + len))).toBe(true);
    r.close();
  });

  it('reads compressed clusters', () => {
    const c = path.join(dir, 'compressed.qcow2');
    img('convert', '-c', '-O', 'qcow2', disk(), c);
    const r = Qcow2Reader.open(c, null);
    expect(readAll(r).equals(rawOf(disk()))).toBe(true);
    r.close();
  });

  it('names where each cluster lives: equal for shared clusters, different for rewritten ones', () => {
    const v1 = Qcow2Reader.open(disk(), 'v1');
    const v2 = Qcow2Reader.open(disk(), 'v2');
    expect(v1.where(0)).toBe(v2.where(0));
    expect(v1.where(4096)).not.toBe(v2.where(4096));
    expect(v1.where(2 * MiB)).toBe(v2.where(2 * MiB)); // both from the backing file
    expect(v2.where(MiB)).toBe('z');
    v1.close();
    v2.close();
  });

  it('lists snapshots with their disk size, and refuses names it does not have', () => {
    const fd = fs.openSync(disk(), 'r');
    const h = readQcow2Header(fd, disk());
    fs.closeSync(fd);
    expect(h.snapshots.map((s) => [s.name, s.diskSize])).toEqual([['v1', 8 * MiB], ['v2', 8 * MiB], ['v3', 8 * MiB]]);
    expect(h.backingFile).toBe('gold.qcow2');
    expect(() => Qcow2Reader.open(disk(), 'nope')).toThrow(/no snapshot nope/);
  });

  it('counts changed bytes between states: 0 for identical ones', () => {
    expect(changedBytes(disk(), 'v2', 'v3')).toBe(0);
    // v1 -> v2: the 4k at 4k, 12k at 5M, the zeroed 4k at 1M
    expect(changedBytes(disk(), 'v1', 'v2')).toBe(5 * 4096);
    expect(changedBytes(disk(), 'v3', null)).toBe(4096);
  });

  it('says what deleting a snapshot frees: the clusters only it references', async () => {
    const ex = await exclusiveBytes(disk());
    // v2 and v3 share everything (only their L1 tables are their own); v1 alone holds the old 4k at 4k
    expect(ex.get('v2')).toBe(ex.get('v3'));
    expect(ex.get('v1')! - ex.get('v2')!).toBeGreaterThanOrEqual(4096);
  });

  it('refuses what is not a qcow2 image, or a hostile header', () => {
    const bad = path.join(dir, 'bad.qcow2');
    fs.writeFileSync(bad, Buffer.alloc(4096));
    expect(() => Qcow2Reader.open(bad, null)).toThrow(/not a qcow2 image/);
    const h = fs.readFileSync(disk()).subarray(0, 4096);
    const huge = Buffer.from(h);
    huge.writeBigUInt64BE(2n ** 46n, 24);
    fs.writeFileSync(bad, huge);
    expect(() => Qcow2Reader.open(bad, null)).toThrow(/too large/);
    const enc = Buffer.from(h);
    enc.writeUInt32BE(1, 32);
    fs.writeFileSync(bad, enc);
    expect(() => Qcow2Reader.open(bad, null)).toThrow(/encrypted/);
  });
});
