/**
 * The fake driver's disks: small JSON files (the guest's files as far as a spec cares, and named
 * snapshots of them) written for real. Offline operations refuse a disk a running machine has open,
 * as they must on a real one. Reading a snapshot's contents gives a real ext4 image of its files
 * (made with mke2fs -d), so the engine's checkpoint diff runs for real on the fake driver too.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { DiskOps, DiskReader } from './driver.ts';
import { RawFileReader } from './raw-file-reader.ts';

export interface FakeDisk {
  format: 'fake-disk';
  backing: string | null;
  virtualBytes: number;
  /** The guest's files, as far as a spec cares. */
  files: Record<string, string>;
  snapshots: Record<string, Record<string, string>>;
}

export function readDisk(file: string): FakeDisk {
  let d: FakeDisk;
  try {
    d = JSON.parse(fs.readFileSync(file, 'utf8')) as FakeDisk;
  } catch (err) {
    throw new Error(`${file} is not a disk: ${(err as Error).message}`);
  }
  if (d.format !== 'fake-disk') throw new Error(`${file} is not a disk`);
  return d;
}

export function writeDisk(file: string, d: FakeDisk): void {
  fs.writeFileSync(file, JSON.stringify(d));
}

/** What the disks need of their driver: its call log, its failures, and which disks are open. */
export interface FakeDiskHost {
  calls: string[];
  maybeFail(step: 'overlay' | 'offline-snapshot' | 'apply-snapshot' | 'offline-delete' | 'clone'): void;
  diskInUse(disk: string): boolean;
}

export class FakeDisks implements DiskOps {
  constructor(private readonly host: FakeDiskHost) {}

  async createOverlay({ file, backing, virtualBytes }: { file: string; backing: string; virtualBytes: number }): Promise<void> {
    this.host.calls.push(`overlay ${path.basename(file)}`);
    this.host.maybeFail('overlay');
    writeDisk(file, { format: 'fake-disk', backing, virtualBytes, files: {}, snapshots: {} });
  }

  async snapshots(disk: string): Promise<Set<string>> {
    return new Set(Object.keys(readDisk(disk).snapshots));
  }

  async createSnapshot(disk: string, name: string): Promise<void> {
    this.offline('offline-snapshot', disk, name, (d) => {
      if (d.snapshots[name]) throw new Error(`snapshot ${name} exists`);
      d.snapshots[name] = { ...d.files };
    });
  }

  async applySnapshot(disk: string, name: string): Promise<void> {
    this.offline('apply-snapshot', disk, name, (d) => {
      const snap = d.snapshots[name];
      if (!snap) throw new Error(`no snapshot ${name}`);
      d.files = { ...snap };
    });
  }

  async deleteSnapshot(disk: string, name: string): Promise<void> {
    this.offline('offline-delete', disk, name, (d) => {
      if (!d.snapshots[name]) throw new Error(`no snapshot ${name}`);
      delete d.snapshots[name];
    });
  }

  async cloneAt(src: string, name: string, dest: string): Promise<void> {
    this.host.calls.push(`clone ${name}`);
    this.host.maybeFail('clone');
    const d = readDisk(src);
    const snap = d.snapshots[name];
    if (!snap) throw new Error(`no snapshot ${name} in ${src}`);
    writeDisk(dest, { ...d, files: { ...snap }, snapshots: {} });
  }

  async openReader(disk: string, snapshot: string | null): Promise<DiskReader> {
    this.host.calls.push(`read ${snapshot ?? 'current'}`);
    const d = readDisk(disk);
    const files = snapshot === null ? d.files : d.snapshots[snapshot];
    if (!files) throw new Error(`no snapshot ${snapshot} in ${disk}`);
    if (snapshot === null && this.host.diskInUse(disk)) throw new Error(`${disk} is open in a running machine: read a snapshot of it`);
    return ext4ImageOf(files);
  }

  async changedBytes(disk: string, a: string | null, b: string | null): Promise<number | null> {
    const d = readDisk(disk);
    const fa = a === null ? d.files : d.snapshots[a];
    const fb = b === null ? d.files : d.snapshots[b];
    if (!fa || !fb) throw new Error(`no snapshot ${!fa ? a : b} in ${disk}`);
    let bytes = 0;
    for (const p of new Set([...Object.keys(fa), ...Object.keys(fb)])) if (fa[p] !== fb[p]) bytes += Math.max(1, (fa[p] ?? '').length, (fb[p] ?? '').length);
    return bytes;
  }

  async snapshotCosts(disk: string): Promise<Map<string, number>> {
    const d = readDisk(disk);
    const out = new Map<string, number>();
    for (const [name, files] of Object.entries(d.snapshots)) {
      let own = 0;
      for (const [p, content] of Object.entries(files)) {
        const elsewhere = d.files[p] === content || Object.entries(d.snapshots).some(([n, f]) => n !== name && f[p] === content);
        if (!elsewhere) own += content.length;
      }
      out.set(name, own);
    }
    return out;
  }

  async importRaw(raw: string, disk: string): Promise<void> {
    writeDisk(disk, { format: 'fake-disk', backing: null, virtualBytes: fs.statSync(raw).size, files: {}, snapshots: {} });
  }

  allocatedBytes(file: string): number {
    try {
      return fs.statSync(file).size;
    } catch {
      return 0;
    }
  }

  /** An operation on a closed disk; it refuses (as qemu-img must) when a machine has the disk open. */
  private offline(step: 'offline-snapshot' | 'apply-snapshot' | 'offline-delete', disk: string, name: string, change: (d: FakeDisk) => void): void {
    this.host.calls.push(`${step} ${name}`);
    if (this.host.diskInUse(disk)) throw new Error(`${step} ${name}: ${disk} is open in a running machine`);
    this.host.maybeFail(step);
    const d = readDisk(disk);
    change(d);
    writeDisk(disk, d);
  }
}

/** A real ext4 image holding `files` (guest path → content), read through a raw reader; the image is unlinked once open. */
function ext4ImageOf(files: Record<string, string>): DiskReader {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fake-disk-'));
  try {
    const tree = path.join(tmp, 'tree');
    fs.mkdirSync(tree);
    for (const [guestPath, content] of Object.entries(files)) {
      const rel = guestPath.split('/').filter((x) => x && x !== '.' && x !== '..');
      if (!rel.length) continue;
      const host = path.join(tree, ...rel);
      fs.mkdirSync(path.dirname(host), { recursive: true });
      fs.writeFileSync(host, content);
    }
    const image = path.join(tmp, 'disk.img');
    execFileSync('mke2fs', ['-q', '-F', '-t', 'ext4', '-b', '4096', '-d', tree, image, '32M'], { stdio: 'pipe' });
    return RawFileReader.open(image);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}
