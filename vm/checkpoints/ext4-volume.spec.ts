import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RawFileReader } from '../driver/raw-file-reader.ts';
import { Ext4Volume } from './ext4-volume.ts';

// Real filesystems made by mke2fs -d (the tool the image build uses) from a tree on the host,
// read back and compared with that tree; the journal replay on transactions written by hand
// into a real journal.
let dir: string;

const fileSource = (file: string) => RawFileReader.open(file);

function mkfs(tree: string, image: string, opts: string[] = []): void {
  // 32 MiB would get the "small" profile (1 KiB blocks): say 4 KiB unless the case says otherwise
  execFileSync('mke2fs', ['-q', '-F', '-t', 'ext4', ...(opts.includes('-b') ? [] : ['-b', '4096']), ...opts, '-d', tree, image, '32M'], { stdio: 'pipe' });
}

function walk(v: Ext4Volume, ino = 2, prefix = ''): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of v.readDir(v.inode(ino))) {
    const p = `${prefix}/${e.name.toString('latin1')}`;
    const i = v.inode(e.ino);
    if (i.type === 'dir') {
      out[p] = `dir ${i.perm.toString(8)}`;
      Object.assign(out, walk(v, e.ino, p));
    } else if (i.type === 'symlink') out[p] = `-> ${v.readLink(i).toString('latin1')}`;
    else out[p] = `file ${i.perm.toString(8)} ${v.readData(i, 1 << 30).toString('latin1')}`;
  }
  return out;
}

function treeOf(root: string, prefix = ''): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of fs.readdirSync(root, { encoding: 'buffer' })) {
    const full = Buffer.concat([Buffer.from(root + '/'), name]).toString('latin1');
    const p = `${prefix}/${name.toString('latin1')}`;
    const st = fs.lstatSync(Buffer.from(full, 'latin1'));
    if (st.isDirectory()) {
      out[p] = `dir ${(st.mode & 0o7777).toString(8)}`;
      Object.assign(out, treeOf(full, p));
    } else if (st.isSymbolicLink()) out[p] = `-> ${fs.readlinkSync(Buffer.from(full, 'latin1'), { encoding: 'buffer' }).toString('latin1')}`;
    else out[p] = `file ${(st.mode & 0o7777).toString(8)} ${fs.readFileSync(Buffer.from(full, 'latin1')).toString('latin1')}`;
  }
  return out;
}

let tree: string;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ext4-volume-'));
  tree = path.join(dir, 'tree');
  fs.mkdirSync(path.join(tree, 'etc/deep/er'), { recursive: true });
  fs.writeFileSync(path.join(tree, 'etc/hostname'), 'sprite\n');
  fs.chmodSync(path.join(tree, 'etc/hostname'), 0o640);
  fs.writeFileSync(path.join(tree, 'etc/deep/er/big'), Buffer.alloc(3 * 2 ** 20 + 123, 'abcdefghij'));
  fs.symlinkSync('hostname', path.join(tree, 'etc/fast-link'));
  fs.symlinkSync('x'.repeat(200), path.join(tree, 'etc/slow-link'));
  fs.writeFileSync(path.join(tree, 'with space'), '');
  fs.writeFileSync(Buffer.from(path.join(tree, 'new\nline\x1b[31m')), 'ctl');
  fs.mkdirSync(path.join(tree, 'many'));
  for (let i = 0; i < 1500; i++) fs.writeFileSync(path.join(tree, 'many', `f${i}`), String(i));
});

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('Ext4Volume', () => {
  for (const [label, opts] of [
    ['ext4 defaults (64bit, metadata_csum, flex_bg, 4k blocks)', []],
    ['1k blocks, no 64bit, no metadata_csum', ['-b', '1024', '-O', '^64bit,^metadata_csum']],
    ['no extents (block maps), no filetype in entries', ['-O', '^extent,^64bit,^filetype,^flex_bg']],
  ] as [string, string[]][]) {
    it(`reads every directory, file, mode and symlink of a tree: ${label}`, () => {
      const image = path.join(dir, `img-${label.length}`);
      mkfs(tree, image, opts);
      const src = fileSource(image);
      const v = Ext4Volume.open(src);
      const got = walk(v);
      delete got['/lost+found'];
      expect(got).toEqual(treeOf(tree));
      src.close();
    });
  }

  it('reads a big directory (an htree) completely', () => {
    const image = path.join(dir, 'img-htree');
    mkfs(tree, image);
    // mke2fs -d writes linear directories; e2fsck -D indexes the big one, as the kernel would
    try {
      execFileSync('e2fsck', ['-fyD', image], { stdio: 'pipe' });
    } catch (err) {
      if ((err as { status?: number }).status !== 1) throw err; // 1: "errors corrected" (the re-index)
    }
    const src = fileSource(image);
    const v = Ext4Volume.open(src);
    const many = v.readDir(v.inode(2)).find((e) => e.name.toString() === 'many')!;
    const inode = v.inode(many.ino);
    expect(inode.flags & 0x1000).toBe(0x1000); // an indexed directory
    expect(v.readDir(inode).map((e) => e.name.toString()).sort()).toEqual(Array.from({ length: 1500 }, (_, i) => `f${i}`).sort());
    src.close();
  });

  it('refuses what is not ext4, and reads of inodes and blocks outside the filesystem', () => {
    const junk = path.join(dir, 'junk');
    fs.writeFileSync(junk, Buffer.alloc(1 << 20, 7));
    const src = fileSource(junk);
    expect(() => Ext4Volume.open(src)).toThrow(/no ext4 filesystem/);
    src.close();
    const image = path.join(dir, 'img-bounds');
    mkfs(tree, image);
    const s2 = fileSource(image);
    const v = Ext4Volume.open(s2);
    expect(() => v.inode(0)).toThrow(/does not exist/);
    expect(() => v.inode(v.inodesCount + 1)).toThrow(/does not exist/);
    expect(() => v.readBlock(v.blocksCount)).toThrow(/outside/);
    s2.close();
  });

  it('stops at a damaged directory entry instead of reading past its block', () => {
    const image = path.join(dir, 'img-damaged');
    mkfs(tree, image);
    const src = fileSource(image);
    const v = Ext4Volume.open(src);
    const etc = v.readDir(v.inode(2)).find((e) => e.name.toString() === 'etc')!;
    const block = v.extents(v.inode(etc.ino))[0].physical;
    src.close();
    // give the first entry a record length pointing past the block
    const fd = fs.openSync(image, 'r+');
    const b = Buffer.alloc(2);
    b.writeUInt16LE(60000);
    fs.writeSync(fd, b, 0, 2, block * v.blockSize + 4);
    fs.closeSync(fd);
    const s2 = fileSource(image);
    expect(Ext4Volume.open(s2).readDir(Ext4Volume.open(s2).inode(etc.ino))).toEqual([]);
    s2.close();
  });
});

describe('journal replay', () => {
  /** Writes transactions into the real journal of `image` and marks the filesystem as needing recovery. */
  function journal(image: string, txs: { seq: number; blocks?: [number, Buffer, boolean?][]; revoke?: number[]; commit: boolean }[]): void {
    const src = fileSource(image);
    const v = Ext4Volume.open(src, { replay: false });
    const jIno = src.read(1024 + 224, 4).readUInt32LE(0);
    const ext = v.extents(v.inode(jIno));
    src.close();
    const bs = v.blockSize;
    const phys = (logical: number) => {
      const e = ext.find((x) => logical >= x.logical && logical < x.logical + x.length)!;
      return (e.physical + logical - e.logical) * bs;
    };
    const fd = fs.openSync(image, 'r+');
    const jsb = Buffer.alloc(bs);
    fs.readSync(fd, jsb, 0, bs, phys(0));
    const first = jsb.readUInt32BE(20);
    const incompat = jsb.readUInt32BE(40);
    const bit64 = (incompat & 2) !== 0;
    const csum3 = (incompat & 0x10) !== 0;
    const tagBytes = csum3 ? 16 : bit64 ? 12 : 8;
    let at = first;
    const header = (type: number, seq: number) => {
      const h = Buffer.alloc(bs);
      h.writeUInt32BE(0xc03b3998, 0);
      h.writeUInt32BE(type, 4);
      h.writeUInt32BE(seq, 8);
      return h;
    };
    for (const tx of txs) {
      if (tx.blocks?.length) {
        const d = header(1, tx.seq);
        let off = 12;
        tx.blocks.forEach(([target, , escape], i) => {
          d.writeUInt32BE(target, off);
          const flags = (i === tx.blocks!.length - 1 ? 8 : 0) | (i > 0 ? 2 : 0) | (escape ? 1 : 0);
          if (csum3) d.writeUInt32BE(flags, off + 4);
          else d.writeUInt16BE(flags, off + 6);
          off += tagBytes + (i > 0 ? 0 : 16);
        });
        fs.writeSync(fd, d, 0, bs, phys(at++));
        for (const [, data] of tx.blocks) fs.writeSync(fd, data, 0, bs, phys(at++));
      }
      if (tx.revoke?.length) {
        const r = header(5, tx.seq);
        const rec = bit64 ? 8 : 4;
        tx.revoke.forEach((blk, i) => (bit64 ? r.writeBigUInt64BE(BigInt(blk), 16 + i * rec) : r.writeUInt32BE(blk, 16 + i * rec)));
        r.writeUInt32BE(16 + tx.revoke.length * rec, 12);
        fs.writeSync(fd, r, 0, bs, phys(at++));
      }
      if (tx.commit) fs.writeSync(fd, header(2, tx.seq), 0, bs, phys(at++));
    }
    jsb.writeUInt32BE(txs[0].seq, 24);
    jsb.writeUInt32BE(first, 28);
    fs.writeSync(fd, jsb, 0, bs, phys(0));
    const sb = Buffer.alloc(1024);
    fs.readSync(fd, sb, 0, 1024, 1024);
    sb.writeUInt32LE(sb.readUInt32LE(96) | 0x4, 96);
    fs.writeSync(fd, sb, 0, 1024, 1024);
    fs.closeSync(fd);
  }

  const fill = (c: string) => Buffer.alloc(4096, c); // the images here have 4 KiB blocks

  for (const [label, opts] of [['journal checksums v3, 64-bit tags', []], ['no journal checksums, 32-bit tags', ['-O', '^metadata_csum,^64bit']]] as [string, string[]][]) {
    it(`applies committed transactions in order, skips revoked copies and an uncommitted tail, restores escaped blocks (${label})`, () => {
      const image = path.join(dir, `img-journal-${opts.length}`);
      mkfs(tree, image, opts);
      const escaped = fill('e');
      escaped.writeUInt32BE(0, 0); // the journal stores a block starting with its magic with those 4 bytes zeroed
      journal(image, [
        { seq: 7, blocks: [[5000, fill('a')], [5001, fill('b')], [5003, escaped, true]], commit: true },
        { seq: 8, blocks: [[5000, fill('c')]], revoke: [5001], commit: true },
        { seq: 9, blocks: [[5002, fill('d')]], commit: false },
      ]);
      const src = fileSource(image);
      const plain = Ext4Volume.open(src, { replay: false });
      const v = Ext4Volume.open(src);
      expect(v.readBlock(5000).equals(fill('c'))).toBe(true);
      expect(v.readBlock(5001).equals(plain.readBlock(5001))).toBe(true); // revoked later
      expect(v.readBlock(5002).equals(plain.readBlock(5002))).toBe(true); // never committed
      expect(v.readBlock(5003).readUInt32BE(0)).toBe(0xc03b3998);
      expect(v.readBlock(5003).subarray(4).equals(fill('e').subarray(4))).toBe(true);
      expect(v.journal.size).toBe(2);
      src.close();
    });
  }

  it('leaves a clean filesystem alone', () => {
    const image = path.join(dir, 'img-clean');
    mkfs(tree, image);
    const src = fileSource(image);
    expect(Ext4Volume.open(src).journal.size).toBe(0);
    src.close();
  });
});
