import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DiskReader } from '../driver/driver.ts';
import { RawFileReader } from '../driver/raw-file-reader.ts';
import { Ext4Volume } from './ext4-volume.ts';
import { countChanges, diffTrees, normalizePath, PathScope, type TreeChange } from './tree-diff.ts';

// Two real filesystems (mke2fs -d from two trees on the host) compared; each case scripts the
// change on the second tree and says exactly what the diff must list.
let dir: string;
let n = 0;

/** A reader whose `where` names each 4 KiB block by its content: equal tokens ⇔ equal bytes, as a disk's shared clusters are. */
function hashedWhere(r: DiskReader): DiskReader {
  return {
    size: r.size,
    read: (o, l) => r.read(o, l),
    where: (o) => crypto.createHash('sha1').update(r.read(o - (o % 4096), 4096)).digest('hex'),
    close: () => r.close(),
  };
}

async function diff(setupA: (root: string) => void, change: (root: string) => void, opts: { scope?: string[]; where?: boolean; limits?: object } = {}) {
  const base = path.join(dir, `case${n++}`);
  const ta = path.join(base, 'a');
  const tb = path.join(base, 'b');
  fs.mkdirSync(ta, { recursive: true });
  setupA(ta);
  execFileSync('cp', ['-a', ta, tb]);
  change(tb);
  const images = [ta, tb].map((t) => {
    const img = `${t}.img`;
    execFileSync('mke2fs', ['-q', '-F', '-t', 'ext4', '-b', '4096', '-d', t, img, '16M'], { stdio: 'pipe' });
    return img;
  });
  const readers = images.map((i) => (opts.where ? hashedWhere(RawFileReader.open(i)) : RawFileReader.open(i)));
  try {
    return await diffTrees(Ext4Volume.open(readers[0]), Ext4Volume.open(readers[1]), { scope: opts.scope ? new PathScope(opts.scope) : undefined, limits: opts.limits });
  } finally {
    for (const r of readers) r.close();
  }
}

const summary = (changes: TreeChange[]) => changes.map((c) => `${c.change[0].toUpperCase()} ${c.path.toString('latin1')}${c.fields.length ? ` [${c.fields.join(',')}]` : ''}`);

function standard(root: string): void {
  fs.mkdirSync(path.join(root, 'etc/app'), { recursive: true });
  fs.writeFileSync(path.join(root, 'etc/app/config'), 'port=80\n');
  fs.writeFileSync(path.join(root, 'etc/app/same-size'), 'aaaa\n');
  fs.writeFileSync(path.join(root, 'etc/motd'), 'hello\n');
  fs.writeFileSync(path.join(root, 'script'), '#!/bin/sh\n');
  fs.symlinkSync('etc/motd', path.join(root, 'link'));
  fs.mkdirSync(path.join(root, 'var/cache/old'), { recursive: true });
  fs.writeFileSync(path.join(root, 'var/cache/old/x'), 'x');
  fs.writeFileSync(path.join(root, 'var/cache/old/y'), 'y');
  fs.writeFileSync(path.join(root, 'becomes-dir'), 'file');
}

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tree-diff-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('diffTrees', () => {
  for (const where of [false, true]) {
    it(`lists exactly what a script changed: add, remove, modify, chmod, symlink, a directory replaced by a file (${where ? 'shared blocks known' : 'bytes compared'})`, async () => {
      const r = await diff(standard, (t) => {
        fs.writeFileSync(path.join(t, 'etc/app/new'), 'new file\n');
        fs.rmSync(path.join(t, 'etc/motd'));
        fs.writeFileSync(path.join(t, 'etc/app/config'), 'port=8080\n');
        fs.writeFileSync(path.join(t, 'etc/app/same-size'), 'bbbb\n');
        fs.chmodSync(path.join(t, 'script'), 0o755);
        fs.rmSync(path.join(t, 'link'));
        fs.symlinkSync('etc/app/config', path.join(t, 'link'));
        fs.symlinkSync('/nowhere', path.join(t, 'dangling'));
        fs.rmSync(path.join(t, 'var/cache/old'), { recursive: true });
        fs.writeFileSync(path.join(t, 'var/cache/old'), 'now a file');
        fs.rmSync(path.join(t, 'becomes-dir'));
        fs.mkdirSync(path.join(t, 'becomes-dir'));
        fs.writeFileSync(path.join(t, 'becomes-dir/inside'), 'i');
      }, { where });
      expect(summary(r.changes)).toEqual([
        'M /becomes-dir [type]',
        'A /becomes-dir/inside',
        'A /dangling',
        'M /etc/app/config [content,size]',
        'A /etc/app/new',
        'M /etc/app/same-size [content]',
        'R /etc/motd',
        'M /link [target]',
        'M /script [mode]',
        'M /var/cache/old [type]',
        'R /var/cache/old/x',
        'R /var/cache/old/y',
      ]);
      expect(countChanges(r.changes)).toEqual({ added: 3, removed: 3, modified: 6 });
      const link = r.changes.find((c) => c.path.toString() === '/link')!;
      expect([link.before!.target!.toString(), link.after!.target!.toString()]).toEqual(['etc/motd', 'etc/app/config']);
      expect(r.changes.find((c) => c.path.toString() === '/script')!.after!.perm).toBe(0o755);
      expect(r.problems).toEqual([]);
      expect(r.truncated).toBe(false);
    });
  }

  it('finds nothing between identical trees, and ignores a new modification time on the same bytes', async () => {
    expect((await diff(standard, () => {})).changes).toEqual([]);
    const touched = await diff(standard, (t) => {
      const f = path.join(t, 'etc/motd');
      fs.utimesSync(f, new Date(2001, 1, 1), new Date(2001, 1, 1));
    });
    expect(touched.changes).toEqual([]);
  });

  it('keeps names as bytes: spaces, newlines and terminal controls survive, unmangled', async () => {
    const names = ['with space', 'new\nline', 'esc\x1b[31mred', 'tab\there'];
    const r = await diff(standard, (t) => {
      for (const name of names) fs.writeFileSync(path.join(t, name), name);
      fs.writeFileSync(Buffer.concat([Buffer.from(t + '/'), Buffer.from([0xff, 0xfe, 0x41])]), 'not utf-8');
    });
    expect(r.changes.map((c) => c.path.toString('latin1')).sort()).toEqual(['/' + String.fromCharCode(0xff, 0xfe, 0x41), ...names.map((x) => `/${x}`)].sort());
    expect(r.changes.every((c) => c.change === 'added')).toBe(true);
  });

  it('limits the diff to given paths (and what is below them)', async () => {
    const change = (t: string) => {
      fs.writeFileSync(path.join(t, 'etc/app/new'), 'n');
      fs.writeFileSync(path.join(t, 'etc/app-other'), 'o');
      fs.writeFileSync(path.join(t, 'script'), 'changed');
    };
    expect(summary((await diff(standard, change, { scope: ['/etc/app'] })).changes)).toEqual(['A /etc/app/new']);
    expect(summary((await diff(standard, change, { scope: ['etc/app/', '/script'] })).changes)).toEqual(['A /etc/app/new', 'M /script [content,size]']);
  });

  it('cuts a long list and says so', async () => {
    const r = await diff(standard, (t) => {
      for (let i = 0; i < 50; i++) fs.writeFileSync(path.join(t, `f${i}`), '');
    }, { limits: { maxChanges: 10 } });
    expect(r.changes).toHaveLength(10);
    expect(r.truncated).toBe(true);
  });

  it('normalizes paths', () => {
    expect(normalizePath(Buffer.from('a//b/./c/')).toString()).toBe('/a/b/c');
    expect(normalizePath(Buffer.from('/')).toString()).toBe('/');
    expect(normalizePath(Buffer.from('')).toString()).toBe('/');
    const s = new PathScope(['/etc']);
    expect([s.decide(Buffer.from('/')), s.decide(Buffer.from('/etc')), s.decide(Buffer.from('/etc/x')), s.decide(Buffer.from('/etcx')), s.decide(Buffer.from('/usr'))]).toEqual(['descend', 'in', 'in', 'out', 'out']);
  });
});
