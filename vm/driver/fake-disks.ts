/**
 * The fake driver's disks: small JSON files (the guest's files as far as a spec cares, and named
 * snapshots of them) written for real. Offline operations refuse a disk a running machine has open,
 * as they must on a real one.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { DiskOps } from './driver.ts';

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
