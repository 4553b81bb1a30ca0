/**
 * What a sprite's checkpoints cost on disk, counted from a qcow2 file's own tables (qcow2-reader.ts
 * reads them, with every offset bounded): which clusters two states differ by, and which clusters
 * only one snapshot references — what deleting it frees. Read from the L1/L2 tables, not the
 * refcounts, which a running QEMU with lazy refcounts updates late.
 */
import fs from 'node:fs';
import { L1_OFFSET_MASK, L2_COMPRESSED, readAt, readL1, readQcow2Header, type Qcow2Header } from './qcow2-reader.ts';

/** The L1 table of each state of one qcow2 file: its snapshots by name, and the live one (`null`). */
function states(fd: number, file: string): { h: Qcow2Header; l1s: Map<string | null, BigUint64Array> } {
  const h = readQcow2Header(fd, file);
  const l1s = new Map<string | null, BigUint64Array>();
  for (const s of h.snapshots) l1s.set(s.name, readL1(fd, s.l1Offset, s.l1Size, file));
  l1s.set(null, readL1(fd, h.l1Offset, h.l1Size, file));
  return { h, l1s };
}

/**
 * Bytes that differ between two states of one qcow2 file (snapshot names, or null for the live
 * state), counted in clusters whose L2 entries differ: an upper bound (a cluster rewritten with the
 * same bytes counts), and exact for "nothing changed". Neither side's backing file is read: both
 * share it.
 */
export function changedBytes(file: string, a: string | null, b: string | null): number {
  const fd = fs.openSync(file, 'r');
  try {
    const { h, l1s } = states(fd, file);
    const l1a = l1s.get(a);
    const l1b = l1s.get(b);
    if (!l1a) throw new Error(`${file} has no snapshot ${a}`);
    if (!l1b) throw new Error(`${file} has no snapshot ${b}`);
    const entries = h.clusterSize / 8;
    const empty = Buffer.alloc(h.clusterSize);
    const table = (off: number) => {
      if (!off) return empty;
      const t = Buffer.alloc(h.clusterSize);
      readAt(fd, t, 0, t.length, off);
      return t;
    };
    const mask = ~(1n << 63n);
    let changed = 0;
    for (let i = 0; i < Math.max(l1a.length, l1b.length); i++) {
      const oa = Number((l1a[i] ?? 0n) & L1_OFFSET_MASK);
      const ob = Number((l1b[i] ?? 0n) & L1_OFFSET_MASK);
      if (oa === ob) continue;
      const ta = table(oa);
      const tb = table(ob);
      for (let j = 0; j < entries; j++) if ((ta.readBigUInt64BE(j * 8) & mask) !== (tb.readBigUInt64BE(j * 8) & mask)) changed += h.clusterSize;
    }
    return changed;
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * For each snapshot of a qcow2 file: the bytes of clusters that no other snapshot and not the live
 * state reference (its L1 table, L2 tables and data clusters) — what deleting it frees. Read from
 * the tables, not the refcounts (which a running QEMU with lazy refcounts updates late). The L2
 * tables are read asynchronously, one at a time: on a disk with a dozen snapshots the walk took
 * 4–20 ms of the daemon's thread at once, after every checkpoint change.
 */
export async function exclusiveBytes(file: string): Promise<Map<string, number>> {
  const fh = await fs.promises.open(file, 'r');
  try {
    const { h, l1s } = states(fh.fd, file);
    const owners = [...l1s.keys()];
    const entries = h.clusterSize / 8;
    // cluster offset -> the one owner referencing it, or -1 when shared
    const ownerOf = new Map<number, number>();
    const mark = (cluster: number, owner: number) => {
      const was = ownerOf.get(cluster);
      if (was === undefined) ownerOf.set(cluster, owner);
      else if (was !== owner) ownerOf.set(cluster, -1);
    };
    const l2Owners = new Map<number, Set<number>>();
    owners.forEach((name, o) => {
      for (const e of l1s.get(name)!) {
        const off = Number(e & L1_OFFSET_MASK);
        if (!off) continue;
        let s = l2Owners.get(off);
        if (!s) l2Owners.set(off, (s = new Set()));
        s.add(o);
      }
    });
    const t = Buffer.alloc(h.clusterSize);
    for (const [off, set] of l2Owners) {
      const owner = set.size === 1 ? [...set][0] : -1;
      mark(off, owner);
      await readFullAt(fh, t, off);
      for (let j = 0; j < entries; j++) {
        const e = t.readBigUInt64BE(j * 8);
        if (e & L2_COMPRESSED) continue;
        const host = Number(e & L1_OFFSET_MASK);
        if (!host) continue;
        if (owner === -1) ownerOf.set(host, -1);
        else mark(host, owner);
      }
    }
    const out = new Map<string, number>();
    owners.forEach((name, o) => {
      if (name === null) return;
      const l1Clusters = Math.ceil((l1s.get(name)!.length * 8) / h.clusterSize);
      out.set(name, l1Clusters * h.clusterSize);
    });
    for (const owner of ownerOf.values()) {
      const name = owner >= 0 ? owners[owner] : null;
      if (name !== null && name !== undefined) out.set(name, out.get(name)! + h.clusterSize);
    }
    return out;
  } finally {
    await fh.close();
  }
}

/** Fills `into` from `position` (zeros past the end of the file, as `readAt` leaves them). */
async function readFullAt(fh: fs.promises.FileHandle, into: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < into.length) {
    const { bytesRead } = await fh.read(into, done, into.length - done, position + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  into.fill(0, done);
}
