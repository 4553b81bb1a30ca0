/**
 * A read-only ext4 reader over a checkpoint's bytes, so the daemon can list and compare what two
 * checkpoints hold without mounting anything and without running code in the guest: superblock,
 * group descriptors (meta_bg too), inodes, extent trees and old block maps, directories (htree
 * ones read linearly), symlinks and file contents; the journal is replayed in memory first
 * (ext4-journal.ts), as a mount would, because a checkpoint of a running machine always has one.
 *
 * The filesystem is the guest's: root in a sprite can write any bytes to its disk. So this is a
 * parser of hostile input: every number is checked before it is used as an offset or a count,
 * every loop and recursion is bounded, and what it cannot read it says so (an error, never a
 * guess). It never names a host path: it only reads through a `BlockSource`.
 */
import { replayJournal, type JournalOverlay } from './ext4-journal.ts';

/** Random access to a disk's bytes (sync: a walk makes tens of thousands of small reads). */
export interface BlockSource {
  readonly size: number;
  read(offset: number, length: number): Buffer;
  /** Where the bytes at `offset` are stored: equal tokens from two sources of one disk mean equal bytes; null: unknown. */
  where(offset: number): string | null;
}

export type FileType = 'file' | 'dir' | 'symlink' | 'char' | 'block' | 'fifo' | 'socket' | 'unknown';

export interface Inode {
  ino: number;
  type: FileType;
  /** Permission bits (07777). */
  perm: number;
  uid: number;
  gid: number;
  size: number;
  mtimeNs: bigint;
  ctimeNs: bigint;
  links: number;
  flags: number;
  /** The 60 bytes of i_block (extent root, block map or inline target). */
  iBlock: Buffer;
  generation: number;
  fileAcl: number;
}

export interface DirEntry {
  name: Buffer;
  ino: number;
  /** From the entry (filetype feature); `unknown` when the filesystem does not record it. */
  type: FileType;
}

export interface Extent {
  logical: number;
  physical: number;
  length: number;
  /** Allocated but never written: reads as zeros. */
  uninit: boolean;
}

export class Ext4Error extends Error {
  override name = 'Ext4Error';
}

const SB_MAGIC = 0xef53;
const EXTENT_MAGIC = 0xf30a;
const INCOMPAT = { filetype: 0x2, recover: 0x4, journalDev: 0x8, metaBg: 0x10, extents: 0x40, bit64: 0x80, inlineData: 0x8000, dirdata: 0x1000 };
const RO_COMPAT_SPARSE_SUPER = 0x1;
const COMPAT_SPARSE_SUPER2 = 0x200;
const FLAG = { extents: 0x80000, inlineData: 0x10000000 };
/** Bounds for hostile input. */
export const EXT4_LIMITS = { maxDirBytes: 256 * 2 ** 20, maxExtents: 1_000_000, maxExtentDepth: 5, maxSymlink: 4096 };

function typeOfMode(mode: number): FileType {
  switch (mode & 0xf000) {
    case 0x8000:
      return 'file';
    case 0x4000:
      return 'dir';
    case 0xa000:
      return 'symlink';
    case 0x2000:
      return 'char';
    case 0x6000:
      return 'block';
    case 0x1000:
      return 'fifo';
    case 0xc000:
      return 'socket';
    default:
      return 'unknown';
  }
}

const DIRENT_TYPES: FileType[] = ['unknown', 'file', 'dir', 'char', 'block', 'fifo', 'socket', 'symlink'];

function isPowerOf(n: number, base: number): boolean {
  while (n > 1 && n % base === 0) n /= base;
  return n === 1;
}

function timeNs(seconds: number, extra: number | null): bigint {
  let s = BigInt(seconds | 0);
  let ns = 0n;
  if (extra !== null) {
    s += BigInt(extra & 3) << 32n;
    ns = BigInt(extra >>> 2);
  }
  return s * 1_000_000_000n + ns;
}

export class Ext4Volume {
  readonly blockSize: number;
  readonly blocksCount: number;
  readonly inodesCount: number;
  readonly inodeSize: number;
  private readonly inodesPerGroup: number;
  private readonly blocksPerGroup: number;
  private readonly firstDataBlock: number;
  private readonly descSize: number;
  private readonly incompat: number;
  private readonly roCompat: number;
  private readonly compat: number;
  private readonly firstMetaBg: number;
  private readonly backupBgs: [number, number];
  private readonly groups: number;
  private readonly itableCache = new Map<number, number>();
  readonly journal: JournalOverlay;

  private constructor(
    private readonly src: BlockSource,
    sb: Buffer,
    journal: JournalOverlay,
  ) {
    this.journal = journal;
    if (sb.readUInt16LE(56) !== SB_MAGIC) throw new Ext4Error('the disk holds no ext4 filesystem (bad superblock magic)');
    const logBlock = sb.readUInt32LE(24);
    if (logBlock > 6) throw new Ext4Error(`unsupported block size 2^${10 + logBlock}`);
    this.blockSize = 1024 << logBlock;
    this.incompat = sb.readUInt32LE(96);
    this.roCompat = sb.readUInt32LE(100);
    this.compat = sb.readUInt32LE(92);
    if (this.incompat & INCOMPAT.journalDev) throw new Ext4Error('this is an external journal, not a filesystem');
    if (this.incompat & INCOMPAT.dirdata) throw new Ext4Error('the dirdata feature is not supported');
    const bit64 = (this.incompat & INCOMPAT.bit64) !== 0;
    this.blocksCount = sb.readUInt32LE(4) + (bit64 ? sb.readUInt32LE(336) * 2 ** 32 : 0);
    this.inodesCount = sb.readUInt32LE(0);
    this.firstDataBlock = sb.readUInt32LE(20);
    this.blocksPerGroup = sb.readUInt32LE(32);
    this.inodesPerGroup = sb.readUInt32LE(40);
    const rev = sb.readUInt32LE(76);
    this.inodeSize = rev >= 1 ? sb.readUInt16LE(88) : 128;
    this.descSize = bit64 ? sb.readUInt16LE(254) || 64 : 32;
    this.firstMetaBg = sb.readUInt32LE(260);
    this.backupBgs = [sb.readUInt32LE(588), sb.readUInt32LE(592)];
    if (this.inodeSize < 128 || this.inodeSize > this.blockSize || (this.inodeSize & (this.inodeSize - 1)) !== 0) throw new Ext4Error(`bad inode size ${this.inodeSize}`);
    if (this.descSize < 32 || this.descSize > 1024 || this.blockSize % this.descSize) throw new Ext4Error(`bad group descriptor size ${this.descSize}`);
    if (!this.inodesPerGroup || !this.blocksPerGroup || this.blocksPerGroup > 8 * this.blockSize * 16) throw new Ext4Error('bad blocks/inodes per group');
    this.groups = Math.ceil((this.blocksCount - this.firstDataBlock) / this.blocksPerGroup);
    // (a filesystem claiming more than its disk reads zeros there; the bound keeps the numbers sane)
    if (this.groups <= 0 || this.groups > 2 ** 24) throw new Ext4Error('bad block count');
  }

  /**
   * Opens the filesystem on `src`, replaying its journal in memory (a checkpoint of a mounted
   * filesystem always needs it) unless `replay` is false.
   */
  static open(src: BlockSource, opts: { replay?: boolean } = {}): Ext4Volume {
    const rawSb = src.read(1024, 1024);
    const bare = new Ext4Volume(src, rawSb, new Map());
    if (opts.replay === false) return bare;
    const journal = replayJournal(bare, rawSb);
    if (!journal.size) return bare;
    const replayed = new Ext4Volume(src, bare.readSuperblockThrough(journal), journal);
    return replayed;
  }

  private readSuperblockThrough(journal: JournalOverlay): Buffer {
    const block = Math.floor(1024 / this.blockSize);
    const j = journal.get(block);
    if (!j) return this.src.read(1024, 1024);
    const b = this.readJournaled(j);
    const at = 1024 - block * this.blockSize;
    return b.subarray(at, at + 1024);
  }

  private readJournaled(j: { offset: number; escape: boolean }): Buffer {
    const b = this.src.read(j.offset, this.blockSize);
    if (j.escape) b.writeUInt32BE(0xc03b3998, 0);
    return b;
  }

  get features(): { incompat: number; roCompat: number; compat: number } {
    return { incompat: this.incompat, roCompat: this.roCompat, compat: this.compat };
  }

  /** Reads filesystem block `n` (as the journal replay leaves it). */
  readBlock(n: number): Buffer {
    if (!Number.isSafeInteger(n) || n < 0 || n >= this.blocksCount) throw new Ext4Error(`block ${n} is outside the filesystem`);
    const j = this.journal.get(n);
    if (j) return this.readJournaled(j);
    return this.src.read(n * this.blockSize, this.blockSize);
  }

  /** Reads a block of the disk as it is on disk (no journal), for the journal itself. */
  readRawBlock(n: number): Buffer {
    if (!Number.isSafeInteger(n) || n < 0 || n >= this.blocksCount) throw new Ext4Error(`block ${n} is outside the filesystem`);
    return this.src.read(n * this.blockSize, this.blockSize);
  }

  /** Where block `n` comes from (see BlockSource.where), journal replay included. */
  blockWhere(n: number): string | null {
    const j = this.journal.get(n);
    if (j) {
      const w = this.src.where(j.offset);
      return w === null ? null : `J${j.escape ? 1 : 0}:${w}`;
    }
    return this.src.where(n * this.blockSize);
  }

  private hasSuper(group: number): boolean {
    if (group === 0) return true;
    if (this.compat & COMPAT_SPARSE_SUPER2) return group === this.backupBgs[0] || group === this.backupBgs[1];
    if (group <= 1 || !(this.roCompat & RO_COMPAT_SPARSE_SUPER)) return true;
    if (!(group & 1)) return false;
    return isPowerOf(group, 3) || isPowerOf(group, 5) || isPowerOf(group, 7);
  }

  private descriptorBlock(group: number): number {
    const perBlock = this.blockSize / this.descSize;
    const metaGroup = Math.floor(group / perBlock);
    if (!(this.incompat & INCOMPAT.metaBg) || metaGroup < this.firstMetaBg) return this.firstDataBlock + 1 + metaGroup;
    const first = metaGroup * perBlock;
    return this.firstDataBlock + first * this.blocksPerGroup + (this.hasSuper(first) ? 1 : 0);
  }

  private inodeTable(group: number): number {
    let t = this.itableCache.get(group);
    if (t === undefined) {
      const perBlock = this.blockSize / this.descSize;
      const d = this.readBlock(this.descriptorBlock(group));
      const at = (group % perBlock) * this.descSize;
      t = d.readUInt32LE(at + 8) + (this.descSize >= 64 ? d.readUInt32LE(at + 40) * 2 ** 32 : 0);
      if (this.itableCache.size > 65536) this.itableCache.clear();
      this.itableCache.set(group, t);
    }
    return t;
  }

  /** Byte offset (in the filesystem) of inode `ino`'s record. */
  inodeOffset(ino: number): number {
    if (!Number.isSafeInteger(ino) || ino < 1 || ino > this.inodesCount) throw new Ext4Error(`inode ${ino} does not exist`);
    const group = Math.floor((ino - 1) / this.inodesPerGroup);
    if (group >= this.groups) throw new Ext4Error(`inode ${ino} is outside the filesystem`);
    const index = (ino - 1) % this.inodesPerGroup;
    return this.inodeTable(group) * this.blockSize + index * this.inodeSize;
  }

  /** Where inode `ino`'s record is stored (equal tokens: equal inode). */
  inodeWhere(ino: number): string | null {
    const off = this.inodeOffset(ino);
    const w = this.blockWhere(Math.floor(off / this.blockSize));
    return w === null ? null : `${w}+${off % this.blockSize}`;
  }

  inode(ino: number): Inode {
    const off = this.inodeOffset(ino);
    const block = this.readBlock(Math.floor(off / this.blockSize));
    const r = block.subarray(off % this.blockSize, (off % this.blockSize) + this.inodeSize);
    const mode = r.readUInt16LE(0);
    const extra = this.inodeSize > 128 ? r.readUInt16LE(128) : 0;
    const has = (field: number) => this.inodeSize > 128 && 128 + extra >= field + 4;
    return {
      ino,
      type: typeOfMode(mode),
      perm: mode & 0o7777,
      uid: r.readUInt16LE(2) | (r.readUInt16LE(120) << 16),
      gid: r.readUInt16LE(24) | (r.readUInt16LE(122) << 16),
      size: r.readUInt32LE(4) + r.readUInt32LE(108) * 2 ** 32,
      ctimeNs: timeNs(r.readInt32LE(12), has(132) ? r.readUInt32LE(132) : null),
      mtimeNs: timeNs(r.readInt32LE(16), has(136) ? r.readUInt32LE(136) : null),
      links: r.readUInt16LE(26),
      flags: r.readUInt32LE(32),
      iBlock: Buffer.from(r.subarray(40, 100)),
      generation: r.readUInt32LE(100),
      fileAcl: r.readUInt32LE(104) + r.readUInt16LE(118) * 2 ** 32,
    };
  }

  /** The extents of a file (logical block → physical block), bounded; holes are absent. */
  extents(inode: Inode): Extent[] {
    const maxLogical = Math.ceil(inode.size / this.blockSize);
    if (inode.flags & FLAG.inlineData) return [];
    if (!(inode.flags & FLAG.extents)) return this.blockMap(inode, maxLogical);
    const out: Extent[] = [];
    const walk = (node: Buffer, depth: number) => {
      if (node.readUInt16LE(0) !== EXTENT_MAGIC) throw new Ext4Error(`inode ${inode.ino}: bad extent header`);
      const entries = node.readUInt16LE(2);
      const d = node.readUInt16LE(6);
      if (d !== depth) throw new Ext4Error(`inode ${inode.ino}: extent tree depth mismatch`);
      if (12 + entries * 12 > node.length) throw new Ext4Error(`inode ${inode.ino}: extent node overflows`);
      for (let i = 0; i < entries; i++) {
        const e = 12 + i * 12;
        if (d === 0) {
          const rawLen = node.readUInt16LE(e + 4);
          const uninit = rawLen > 32768;
          const length = uninit ? rawLen - 32768 : rawLen;
          const physical = node.readUInt32LE(e + 8) + node.readUInt16LE(e + 6) * 2 ** 32;
          if (out.length >= EXT4_LIMITS.maxExtents) throw new Ext4Error(`inode ${inode.ino}: too many extents`);
          out.push({ logical: node.readUInt32LE(e), physical, length, uninit });
        } else {
          const child = node.readUInt32LE(e + 4) + node.readUInt16LE(e + 8) * 2 ** 32;
          walk(this.readBlock(child), depth - 1);
        }
      }
    };
    const depth = inode.iBlock.readUInt16LE(6);
    if (depth > EXT4_LIMITS.maxExtentDepth) throw new Ext4Error(`inode ${inode.ino}: extent tree too deep`);
    walk(inode.iBlock, depth);
    return out.filter((x) => x.logical < maxLogical && x.length > 0).sort((a, b) => a.logical - b.logical);
  }

  /** ext2/3-style block map: 12 direct blocks, then single, double and triple indirect ones. */
  private blockMap(inode: Inode, maxLogical: number): Extent[] {
    const per = this.blockSize / 4;
    const out: Extent[] = [];
    let logical = 0;
    const push = (physical: number) => {
      if (physical && logical < maxLogical) {
        const last = out.at(-1);
        if (last && last.logical + last.length === logical && last.physical + last.length === physical) last.length++;
        else {
          if (out.length >= EXT4_LIMITS.maxExtents) throw new Ext4Error(`inode ${inode.ino}: too many blocks`);
          out.push({ logical, physical, length: 1, uninit: false });
        }
      }
      logical++;
    };
    const indirect = (block: number, level: number) => {
      const span = per ** level;
      if (!block) {
        logical += span;
        return;
      }
      const b = this.readBlock(block);
      for (let i = 0; i < per && logical < maxLogical; i++) {
        const p = b.readUInt32LE(i * 4);
        if (level === 1) push(p);
        else indirect(p, level - 1);
      }
    };
    for (let i = 0; i < 12 && logical < maxLogical; i++) push(inode.iBlock.readUInt32LE(i * 4));
    for (let level = 1; level <= 3 && logical < maxLogical; level++) indirect(inode.iBlock.readUInt32LE((11 + level) * 4), level);
    return out;
  }

  /** Reads up to `max` bytes of a file's (or directory's, or symlink's) content. */
  readData(inode: Inode, max: number): Buffer {
    const size = Math.min(inode.size, max);
    const out = Buffer.alloc(size);
    if (inode.flags & FLAG.inlineData) {
      inode.iBlock.copy(out, 0, 0, Math.min(size, 60));
      return out;
    }
    for (const e of this.extents(inode)) {
      if (e.uninit) continue;
      for (let i = 0; i < e.length; i++) {
        const at = (e.logical + i) * this.blockSize;
        if (at >= size) break;
        this.readBlock(e.physical + i).copy(out, at, 0, Math.min(this.blockSize, size - at));
      }
    }
    return out;
  }

  /** Where every block of a file's data is stored, in order (null if any is unknown). */
  dataWhere(inode: Inode): string[] | null {
    const out: string[] = [];
    for (const e of this.extents(inode)) {
      out.push(`@${e.logical}${e.uninit ? 'u' : ''}`);
      if (e.uninit) continue;
      for (let i = 0; i < e.length; i++) {
        const w = this.blockWhere(e.physical + i);
        if (w === null) return null;
        out.push(w);
      }
    }
    return out;
  }

  /** A symlink's target. */
  readLink(inode: Inode): Buffer {
    const size = Math.min(inode.size, EXT4_LIMITS.maxSymlink);
    if (inode.size < 60 && !(inode.flags & FLAG.extents) && !(inode.flags & FLAG.inlineData)) return Buffer.from(inode.iBlock.subarray(0, size));
    return this.readData(inode, size);
  }

  /** The entries of a directory ("." and ".." left out). */
  readDir(inode: Inode): DirEntry[] {
    if (inode.type !== 'dir') throw new Ext4Error(`inode ${inode.ino} is not a directory`);
    const entries: DirEntry[] = [];
    const filetype = (this.incompat & INCOMPAT.filetype) !== 0;
    const parse = (b: Buffer, start: number) => {
      let off = start;
      while (off + 8 <= b.length) {
        const ino = b.readUInt32LE(off);
        const recLen = b.readUInt16LE(off + 4);
        const nameLen = b[off + 6];
        const ft = b[off + 7];
        const len = recLen === 0 && b.length === 65536 ? 65536 : recLen; // 64 KiB blocks encode their size as 0
        if (len < 8 || len % 4 || off + len > b.length || 8 + nameLen > len) break; // damaged: stop this block
        if (ino && nameLen) {
          const name = Buffer.from(b.subarray(off + 8, off + 8 + nameLen));
          const dot = name.length <= 2 && name.every((c) => c === 0x2e);
          if (!dot && !name.includes(0x2f) && !name.includes(0) && ino <= this.inodesCount) entries.push({ name, ino, type: filetype ? (DIRENT_TYPES[ft & 7] ?? 'unknown') : 'unknown' });
        }
        off += len;
      }
    };
    if (inode.flags & FLAG.inlineData) {
      parse(inode.iBlock, 4);
      return entries;
    }
    if (inode.size > EXT4_LIMITS.maxDirBytes) throw new Ext4Error(`directory inode ${inode.ino} is larger than ${EXT4_LIMITS.maxDirBytes} bytes`);
    for (const e of this.extents(inode)) {
      if (e.uninit) continue;
      for (let i = 0; i < e.length; i++) parse(this.readBlock(e.physical + i), 0);
    }
    return entries;
  }

  /** Where a directory's blocks are stored (equal: equal entries); null when unknown. */
  dirWhere(inode: Inode): string | null {
    if (inode.flags & FLAG.inlineData) return null;
    const w = this.dataWhere(inode);
    return w === null ? null : w.join(',');
  }
}
