/**
 * Reads a qcow2 disk on the host, as it is now or as one of its internal snapshots holds it,
 * through its backing chain (qcow2 or raw), without QEMU: so the daemon can hand the filesystem
 * reader (vm/checkpoints/ext4-*) the bytes of a checkpoint. What two states differ by and what
 * deleting a snapshot frees are counted from the same tables in qcow2-snapshot-costs.ts.
 *
 * Why not qemu-img/qemu-nbd: a checkpoint diff reads tens of thousands of small pieces; a process
 * per read is far too slow, and an NBD client would be a protocol of its own. The format is small
 * and stable (docs/interop/qcow2.txt). Everything that cannot change under a reader — a snapshot's
 * L1/L2 tables and the clusters they name — is what is read; the live layer of a disk a running
 * QEMU has open is only read for estimates. The metadata is QEMU's, the data clusters the guest's:
 * every offset and count is bounded before use, and unsupported features (encryption, external
 * data files, extended L2 entries, zstd-compressed clusters) are refused with a clear error.
 */
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';

const MAGIC = 0x514649fb;
export const L1_OFFSET_MASK = 0x00fffffffffffe00n;
export const L2_COMPRESSED = 1n << 62n;
const L2_ZERO = 1n;
/** Incompatible feature bits we can read: dirty (0) and the compression-type field (3, deflate only). */
const KNOWN_INCOMPATIBLE = 0b1001n;
/** The most a disk may claim (16 TiB, the contract's largest sprite disk). */
const MAX_VIRTUAL = 16 * 1024 ** 4;
const MAX_SNAPSHOTS = 65_536;
const L2_CACHE_TABLES = 256;

export interface Qcow2Snapshot {
  id: string;
  name: string;
  l1Offset: number;
  l1Size: number;
  /** Virtual size of the disk when it was taken. */
  diskSize: number;
}

export interface Qcow2Header {
  version: number;
  clusterBits: number;
  clusterSize: number;
  size: number;
  l1Size: number;
  l1Offset: number;
  snapshots: Qcow2Snapshot[];
  backingFile: string | null;
  backingFormat: string | null;
}

/** A readable disk layer: a qcow2 (one of its states) or a raw file. */
interface Layer {
  readonly size: number;
  read(offset: number, into: Buffer, at: number, length: number): void;
  /** Where the cluster holding `offset` is stored (equal tokens = equal bytes at equal offsets). */
  where(offset: number): string;
  close(): void;
}

function fileKey(fd: number): string {
  const st = fs.fstatSync(fd);
  return `${st.dev}:${st.ino}`;
}

export function readAt(fd: number, into: Buffer, at: number, length: number, position: number): void {
  let done = 0;
  while (done < length) {
    const n = fs.readSync(fd, into, at + done, length - done, position + done);
    if (n === 0) break;
    done += n;
  }
  if (done < length) into.fill(0, at + done, at + length);
}

function u64(b: Buffer, off: number): number {
  const v = b.readBigUInt64BE(off);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`a qcow2 header field at ${off} is out of range (a damaged image?)`);
  return Number(v);
}

/** Parses the header, the snapshot table and the backing file name of an open qcow2 file. */
export function readQcow2Header(fd: number, file: string): Qcow2Header {
  const h = Buffer.alloc(4096);
  readAt(fd, h, 0, h.length, 0);
  if (h.readUInt32BE(0) !== MAGIC) throw new Error(`${file} is not a qcow2 image`);
  const version = h.readUInt32BE(4);
  if (version !== 2 && version !== 3) throw new Error(`${file}: qcow2 version ${version} is not supported`);
  const clusterBits = h.readUInt32BE(20);
  if (clusterBits < 9 || clusterBits > 21) throw new Error(`${file}: cluster size 2^${clusterBits} is not supported`);
  const size = u64(h, 24);
  if (size > MAX_VIRTUAL) throw new Error(`${file}: a virtual size of ${size} bytes is too large`);
  if (h.readUInt32BE(32) !== 0) throw new Error(`${file} is encrypted; that is not supported`);
  if (version === 3) {
    const incompatible = h.readBigUInt64BE(72);
    if (incompatible & ~KNOWN_INCOMPATIBLE) throw new Error(`${file} uses qcow2 features this reader does not support (0x${incompatible.toString(16)})`);
    const headerLength = h.readUInt32BE(100);
    if (incompatible & 0b1000n && headerLength > 104 && h[104] !== 0) throw new Error(`${file}: zstd-compressed clusters are not supported`);
  }
  const clusterSize = 2 ** clusterBits;
  const l1Size = h.readUInt32BE(36);
  const l1Offset = u64(h, 40);
  const nbSnapshots = h.readUInt32BE(60);
  const snapshotsOffset = u64(h, 64);
  if (nbSnapshots > MAX_SNAPSHOTS) throw new Error(`${file}: ${nbSnapshots} snapshots is more than this reader takes`);

  let backingFile: string | null = null;
  const backingOffset = u64(h, 8);
  const backingSize = h.readUInt32BE(16);
  if (backingOffset && backingSize) {
    if (backingSize > 1023) throw new Error(`${file}: backing file name too long`);
    const b = Buffer.alloc(backingSize);
    readAt(fd, b, 0, backingSize, backingOffset);
    backingFile = b.toString('utf8');
  }
  let backingFormat: string | null = null;
  if (version === 3) {
    // header extensions: type, length, data padded to 8
    let off = h.readUInt32BE(100);
    for (let i = 0; i < 64 && off + 8 <= h.length; i++) {
      const type = h.readUInt32BE(off);
      const len = h.readUInt32BE(off + 4);
      if (type === 0) break;
      if (off + 8 + len > h.length) break;
      if (type === 0xe2792aca) backingFormat = h.subarray(off + 8, off + 8 + len).toString('utf8');
      if (type === 0x44415441) throw new Error(`${file} keeps its data in an external file; that is not supported`);
      off += 8 + Math.ceil(len / 8) * 8;
    }
  }

  const snapshots: Qcow2Snapshot[] = [];
  let off = snapshotsOffset;
  const entry = Buffer.alloc(40);
  for (let i = 0; i < nbSnapshots; i++) {
    readAt(fd, entry, 0, 40, off);
    const sl1Offset = u64(entry, 0);
    const sl1Size = entry.readUInt32BE(8);
    const idSize = entry.readUInt16BE(12);
    const nameSize = entry.readUInt16BE(14);
    const extraSize = entry.readUInt32BE(36);
    if (extraSize > 1024) throw new Error(`${file}: snapshot table entry ${i} is malformed`);
    const rest = Buffer.alloc(extraSize + idSize + nameSize);
    readAt(fd, rest, 0, rest.length, off + 40);
    const diskSize = extraSize >= 16 ? u64(rest, 8) : size;
    const id = rest.subarray(extraSize, extraSize + idSize).toString('utf8');
    const name = rest.subarray(extraSize + idSize, extraSize + idSize + nameSize).toString('utf8');
    snapshots.push({ id, name, l1Offset: sl1Offset, l1Size: sl1Size, diskSize: Math.min(diskSize, MAX_VIRTUAL) });
    off += Math.ceil((40 + rest.length) / 8) * 8;
  }
  return { version, clusterBits, clusterSize, size, l1Size, l1Offset, snapshots, backingFile, backingFormat };
}

class RawLayer implements Layer {
  readonly size: number;
  private readonly key: string;
  constructor(
    private readonly fd: number,
    private readonly clusterSize: number,
  ) {
    this.size = fs.fstatSync(fd).size;
    this.key = fileKey(fd);
  }
  read(offset: number, into: Buffer, at: number, length: number): void {
    const n = Math.max(0, Math.min(length, this.size - offset));
    if (n > 0) readAt(this.fd, into, at, n, offset);
    into.fill(0, at + n, at + length);
  }
  where(offset: number): string {
    return offset >= this.size ? 'z' : `${this.key}@${offset - (offset % this.clusterSize)}`;
  }
  close(): void {
    fs.closeSync(this.fd);
  }
}

/** One state of a qcow2 file (its live L1 table, or a snapshot's) over its backing layer. */
class Qcow2Layer implements Layer {
  readonly size: number;
  private readonly cs: number;
  private readonly l2Entries: number;
  private readonly key: string;
  private readonly l2Cache = new Map<number, Buffer>();

  constructor(
    private readonly fd: number,
    readonly header: Qcow2Header,
    private readonly l1: BigUint64Array,
    size: number,
    private readonly backing: Layer | null,
  ) {
    this.size = size;
    this.cs = header.clusterSize;
    this.l2Entries = this.cs / 8;
    this.key = fileKey(fd);
  }

  /** The L2 entry for a guest offset (0n = unallocated here). */
  entry(offset: number): bigint {
    const cluster = Math.floor(offset / this.cs);
    const l1i = Math.floor(cluster / this.l2Entries);
    if (l1i >= this.l1.length) return 0n;
    const l2Offset = Number(this.l1[l1i] & L1_OFFSET_MASK);
    if (!l2Offset) return 0n;
    return this.l2(l2Offset).readBigUInt64BE((cluster % this.l2Entries) * 8);
  }

  l2(l2Offset: number): Buffer {
    let t = this.l2Cache.get(l2Offset);
    if (!t) {
      t = Buffer.alloc(this.cs);
      readAt(this.fd, t, 0, this.cs, l2Offset);
      if (this.l2Cache.size >= L2_CACHE_TABLES) this.l2Cache.delete(this.l2Cache.keys().next().value!);
      this.l2Cache.set(l2Offset, t);
    }
    return t;
  }

  read(offset: number, into: Buffer, at: number, length: number): void {
    let done = 0;
    while (done < length) {
      const pos = offset + done;
      const inCluster = pos % this.cs;
      const n = Math.min(length - done, this.cs - inCluster);
      if (pos >= this.size) into.fill(0, at + done, at + done + n);
      else this.readCluster(pos, inCluster, into, at + done, n);
      done += n;
    }
  }

  private readCluster(pos: number, inCluster: number, into: Buffer, at: number, n: number): void {
    const e = this.entry(pos);
    if (e & L2_COMPRESSED) {
      const data = this.compressed(e);
      data.copy(into, at, inCluster, inCluster + n);
      return;
    }
    const host = Number(e & L1_OFFSET_MASK);
    if (e & L2_ZERO) into.fill(0, at, at + n);
    else if (host) readAt(this.fd, into, at, n, host + inCluster);
    else if (this.backing && pos < this.backing.size) this.backing.read(pos, into, at, n);
    else into.fill(0, at, at + n);
  }

  private compressed(e: bigint): Buffer {
    const x = 62 - (this.header.clusterBits - 8);
    const host = Number(e & ((1n << BigInt(x)) - 1n));
    const sectors = Number((e >> BigInt(x)) & ((1n << BigInt(62 - x)) - 1n)) + 1;
    const raw = Buffer.alloc(sectors * 512 - (host % 512));
    readAt(this.fd, raw, 0, raw.length, host);
    const out = zlib.inflateRawSync(raw, { finishFlush: zlib.constants.Z_SYNC_FLUSH, maxOutputLength: this.cs });
    const cluster = Buffer.alloc(this.cs);
    out.copy(cluster, 0, 0, Math.min(out.length, this.cs));
    return cluster;
  }

  where(offset: number): string {
    if (offset >= this.size) return 'z';
    const e = this.entry(offset);
    if (e & L2_COMPRESSED) return `${this.key}@c${e & 0x3fffffffffffffffn}`;
    if (e & L2_ZERO) return 'z';
    const host = Number(e & L1_OFFSET_MASK);
    if (host) return `${this.key}@${host}`;
    return this.backing && offset < this.backing.size ? this.backing.where(offset) : 'z';
  }

  close(): void {
    fs.closeSync(this.fd);
    this.backing?.close();
  }
}

export function readL1(fd: number, offset: number, entries: number, file: string): BigUint64Array {
  if (entries > 1 << 22) throw new Error(`${file}: an L1 table of ${entries} entries is too large`);
  const b = Buffer.alloc(entries * 8);
  readAt(fd, b, 0, b.length, offset);
  const out = new BigUint64Array(entries);
  for (let i = 0; i < entries; i++) out[i] = b.readBigUInt64BE(i * 8);
  return out;
}

/** Opens a file of the chain (qcow2 or raw) in its live state. */
function openLayer(file: string, format: string | null, depth: number): Layer {
  if (depth > 16) throw new Error(`${file}: the backing chain is too long`);
  const fd = fs.openSync(file, 'r');
  try {
    const magic = Buffer.alloc(4);
    readAt(fd, magic, 0, 4, 0);
    const isQcow2 = magic.readUInt32BE(0) === MAGIC;
    if (format === 'raw' || (!format && !isQcow2)) return new RawLayer(fd, 65536);
    return qcow2Layer(fd, file, null, depth);
  } catch (err) {
    fs.closeSync(fd);
    throw err;
  }
}

function qcow2Layer(fd: number, file: string, snapshot: string | null, depth: number): Qcow2Layer {
  const h = readQcow2Header(fd, file);
  let l1: BigUint64Array;
  let size: number;
  if (snapshot === null) {
    l1 = readL1(fd, h.l1Offset, h.l1Size, file);
    size = h.size;
  } else {
    const s = h.snapshots.find((x) => x.name === snapshot);
    if (!s) throw new Error(`${file} has no snapshot ${snapshot}`);
    l1 = readL1(fd, s.l1Offset, s.l1Size, file);
    size = s.diskSize;
  }
  let backing: Layer | null = null;
  if (h.backingFile) {
    const bf = path.isAbsolute(h.backingFile) ? h.backingFile : path.join(path.dirname(file), h.backingFile);
    backing = openLayer(bf, h.backingFormat, depth + 1);
  }
  return new Qcow2Layer(fd, h, l1, size, backing);
}

/** A qcow2 disk opened at one state: `snapshot` (an internal snapshot's name) or null (live). */
export class Qcow2Reader {
  private constructor(private readonly top: Qcow2Layer) {}

  static open(file: string, snapshot: string | null): Qcow2Reader {
    const fd = fs.openSync(file, 'r');
    try {
      return new Qcow2Reader(qcow2Layer(fd, file, snapshot, 0));
    } catch (err) {
      fs.closeSync(fd);
      throw err;
    }
  }

  get size(): number {
    return this.top.size;
  }

  get clusterSize(): number {
    return this.top.header.clusterSize;
  }

  read(offset: number, length: number): Buffer {
    const b = Buffer.alloc(length);
    this.top.read(offset, b, 0, length);
    return b;
  }

  where(offset: number): string {
    return this.top.where(offset);
  }

  close(): void {
    this.top.close();
  }
}
