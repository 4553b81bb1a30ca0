import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FakeDriver } from './fake-driver.ts';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spritely-fake-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const spec = (disk: string) => ({ id: 'm', dir, disk, shape: { memoryMiB: 256, cpus: 1 }, boot: { kernel: 'k', initrd: 'i', cmdline: '' }, forwards: [], egressSocket: '', netSocket: '' });

describe('the fake driver keeps to what real disks need', () => {
  it('refuses offline snapshot operations on a disk a running machine has open', async () => {
    const d = new FakeDriver();
    const disk = path.join(dir, 'disk');
    await d.disks.createOverlay({ file: disk, backing: 'base', virtualBytes: 1 });
    const m = await d.launch(spec(disk));
    await expect(d.disks.createSnapshot(disk, 'v1')).rejects.toThrow(/open in a running machine/);
    await m.snapshotDisk('v1');
    expect(await d.disks.snapshots(disk)).toEqual(new Set(['v1']));
    await m.quit();
    await d.disks.applySnapshot(disk, 'v1');
    await d.disks.deleteSnapshot(disk, 'v1');
    await expect(d.disks.deleteSnapshot(disk, 'v1')).rejects.toThrow(/no snapshot v1/);
  });

  it('fails the step it is told to, once', async () => {
    const d = new FakeDriver();
    const disk = path.join(dir, 'disk');
    await d.disks.createOverlay({ file: disk, backing: 'base', virtualBytes: 1 });
    d.failNext('launch', 'no room');
    await expect(d.launch(spec(disk))).rejects.toThrow('no room');
    const m = await d.launch(spec(disk));
    expect(await m.state()).toBe('running');
    await m.kill();
  });
});
