import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SpritelyError } from '../errors.ts';
import { TreeReceiver } from './cp-from-sprite.ts';
import {
  AckParser,
  guestCreateArgv,
  guestExtractArgv,
  guestPathSpec,
  hostCreateArgv,
  hostTarget,
  parseCpArg,
  pathSpec,
  planCopy,
  tarFailed,
  transformArg,
  type PathKind,
} from './cp-plan.ts';
import { DEFAULT_LIMITS } from './tar-extract.ts';

describe('parseCpArg', () => {
  it('reads NAME:PATH as a sprite path and everything else as local', () => {
    expect(parseCpArg('dev:/etc/hostname')).toEqual({ sprite: 'dev', path: '/etc/hostname' });
    expect(parseCpArg('dev:')).toEqual({ sprite: 'dev', path: '' });
    expect(parseCpArg('my-box:rel/x')).toEqual({ sprite: 'my-box', path: 'rel/x' });
    expect(parseCpArg('./a:b')).toEqual({ sprite: null, path: './a:b' });
    expect(parseCpArg('/abs/a:b')).toEqual({ sprite: null, path: '/abs/a:b' });
    expect(parseCpArg('dir/a:b')).toEqual({ sprite: null, path: 'dir/a:b' });
    expect(parseCpArg('plain.txt')).toEqual({ sprite: null, path: 'plain.txt' });
    expect(parseCpArg('.')).toEqual({ sprite: null, path: '.' });
  });

  it('refuses a prefix that is not a sprite name, and says how to write a local path', () => {
    expect(() => parseCpArg('Dev:/x')).toThrow(/capital letters.*\.\/Dev:\/x/);
    expect(() => parseCpArg(':x')).toThrow(/empty/);
    expect(() => parseCpArg('')).toThrow(SpritelyError);
  });
});

describe('path specs', () => {
  it('keeps what a trailing "/" or "/." asks for', () => {
    expect(pathSpec('a/b', '/w')).toMatchObject({ abs: '/w/a/b', dir: '/w/a', base: 'b', trailingSlash: false, contentsOnly: false });
    expect(pathSpec('a/b/', '/w')).toMatchObject({ abs: '/w/a/b', trailingSlash: true, contentsOnly: false });
    expect(pathSpec('a/b/.', '/w')).toMatchObject({ abs: '/w/a/b', trailingSlash: true, contentsOnly: true });
    expect(pathSpec('.', '/w/x')).toMatchObject({ abs: '/w/x', base: 'x', contentsOnly: true });
    expect(pathSpec('/', '/w')).toMatchObject({ abs: '/', base: '', contentsOnly: true });
  });

  it('starts relative sprite paths in /root and shows them as written', () => {
    expect(guestPathSpec('dev', 'x/y')).toMatchObject({ abs: '/root/x/y', shown: 'dev:x/y' });
    expect(guestPathSpec('dev', '')).toMatchObject({ abs: '/root', base: 'root' });
    expect(guestPathSpec('dev', '~/f')).toMatchObject({ abs: '/root/f' });
    expect(guestPathSpec('dev', '/etc/hostname')).toMatchObject({ abs: '/etc/hostname', dir: '/etc', base: 'hostname' });
  });
});

describe('planCopy: docker cp rules', () => {
  const plan = (src: string, srcKind: PathKind, dst: string, dstKind: PathKind, parent: PathKind = 'dir') => planCopy(pathSpec(src, '/h'), srcKind, pathSpec(dst, '/g'), dstKind, parent);

  it('a file goes into a directory, onto a file, or to a new name', () => {
    expect(plan('f.txt', 'file', 'd', 'dir')).toEqual({ archiveDir: '/h', member: 'f.txt', extractDir: '/g/d', rename: null });
    expect(plan('f.txt', 'file', 'old.txt', 'file')).toEqual({ archiveDir: '/h', member: 'f.txt', extractDir: '/g', rename: { from: 'f.txt', to: 'old.txt' } });
    expect(plan('f.txt', 'file', 'new.txt', 'none')).toEqual({ archiveDir: '/h', member: 'f.txt', extractDir: '/g', rename: { from: 'f.txt', to: 'new.txt' } });
    expect(plan('f.txt', 'file', 'f.txt', 'none')).toMatchObject({ rename: null });
  });

  it('a directory goes into a directory, its contents with "/.", or becomes a new directory', () => {
    expect(plan('src', 'dir', 'd', 'dir')).toEqual({ archiveDir: '/h', member: 'src', extractDir: '/g/d', rename: null });
    expect(plan('src/.', 'dir', 'd', 'dir')).toEqual({ archiveDir: '/h/src', member: '.', extractDir: '/g/d', rename: null });
    expect(plan('src', 'dir', 'fresh', 'none')).toEqual({ archiveDir: '/h', member: 'src', extractDir: '/g', rename: { from: 'src', to: 'fresh' } });
    expect(plan('src', 'dir', 'fresh/', 'none')).toMatchObject({ extractDir: '/g', rename: { from: 'src', to: 'fresh' } });
    expect(plan('src/.', 'dir', 'fresh', 'none')).toEqual({ archiveDir: '/h/src', member: '.', extractDir: '/g', rename: { from: '.', to: 'fresh' } });
  });

  it('refuses what docker cp refuses, with the path in the message', () => {
    expect(() => plan('nope', 'none', 'd', 'dir')).toThrow('The source nope does not exist.');
    expect(() => plan('f.txt/', 'file', 'd', 'dir')).toThrow('The source f.txt/ is not a directory.');
    expect(() => plan('f.txt', 'file', 'newdir/', 'none')).toThrow('The destination directory newdir/ does not exist.');
    expect(() => plan('f.txt', 'file', 'a/b/c', 'none', 'none')).toThrow("The destination's parent directory /g/a/b does not exist; create it first.");
    expect(() => planCopy(pathSpec('f', '/h'), 'file', guestPathSpec('dev', '/a/b'), 'none', 'none')).toThrow("parent directory dev:/a does not exist");
    expect(() => plan('src', 'dir', 'a/b', 'none', 'file')).toThrow('/g/a does not exist (it is a file)');
    expect(() => plan('src', 'dir', 'x.txt', 'file')).toThrow('Cannot copy the directory src onto the file x.txt.');
    expect(() => plan('f.txt', 'file', 'x.txt/', 'file')).toThrow('is not a directory');
  });
});

describe('transformArg', () => {
  it('escapes regex and replacement characters and picks a free delimiter', () => {
    expect(transformArg('a.b', 'c&d')).toBe('--transform=s,^a\\.b\\($\\|/\\),c\\&d\\1,rhS');
    expect(transformArg('x,y', 'z')).toBe('--transform=s#^x,y\\($\\|/\\)#z\\1#rhS');
    expect(transformArg('.', 'new')).toBe('--transform=s,^\\.\\($\\|/\\),new\\1,rhS');
    expect(() => transformArg('a/b', 'c')).toThrow(SpritelyError);
  });
});

describe('hostTarget: where a copy from a sprite lands here', () => {
  const target = (src: string, srcKind: PathKind, dst: string, dstKind: PathKind) => {
    const d = pathSpec(dst, '/h');
    return hostTarget(planCopy(guestPathSpec('dev', src), srcKind, d, dstKind, 'dir'), d);
  };

  it('is the destination as typed for a new name, an existing file and "SRC/." into a directory', () => {
    expect(target('/g/f', 'file', 'new', 'none')).toEqual({ path: '/h/new', typed: true });
    expect(target('/g/f', 'file', 'old', 'file')).toEqual({ path: '/h/old', typed: true });
    expect(target('/g/src', 'dir', 'fresh', 'none')).toEqual({ path: '/h/fresh', typed: true });
    expect(target('/g/src/.', 'dir', 'fresh', 'none')).toEqual({ path: '/h/fresh', typed: true });
    expect(target('/g/src/.', 'dir', 'd', 'dir')).toEqual({ path: '/h/d', typed: true });
  });

  it('is the source name inside an existing directory otherwise', () => {
    expect(target('/g/f', 'file', 'd', 'dir')).toEqual({ path: '/h/d/f', typed: false });
    expect(target('/g/src', 'dir', 'd/', 'dir')).toEqual({ path: '/h/d/src', typed: false });
  });

  it('asks the guest for the source under its own name (the host renames), in 128 KiB records', () => {
    const p = planCopy(guestPathSpec('dev', '/g/f'), 'file', pathSpec('new', '/h'), 'none', 'dir');
    expect(guestCreateArgv(p)).toEqual(['tar', '-c', '-f', '-', '-b', '256', '-C', '/g', '--', 'f']);
  });
});

describe('tarFailed', () => {
  it('shows the exit status and stderr, with what a guest chose made inert', () => {
    expect(tarFailed('in dev', 'tar: x: Cannot open\ntar: Exiting', 2).message).toBe('tar in dev failed (2): tar: x: Cannot open\ntar: Exiting');
    expect(tarFailed('in dev', '\x1b]0;owned\x07\r', '\x1b[2JKILL').message).toBe('tar in dev failed (\\x1b[2JKILL): \\x1b]0;owned\\x07\\x0d');
    expect(tarFailed('on this computer', '', 1).message).toBe('tar on this computer failed (1): no message');
  });
});

describe('AckParser', () => {
  it('takes the guest tar progress lines out of stderr, across chunk boundaries', () => {
    const acks: number[] = [];
    const p = new AckParser((n) => acks.push(n));
    p.push('tar: @spritely-ack 100\ntar: @spri');
    p.push('tely-ack 200\ntar: x: Cannot open: Permission denied\n');
    p.push('tar: Exiting with failure status');
    p.end();
    expect(acks).toEqual([100, 200]);
    expect(p.text()).toBe('tar: x: Cannot open: Permission denied\ntar: Exiting with failure status');
  });
});

// The plans above, run for real: this machine's GNU tar stands in for the guest's at the other end;
// into a sprite it extracts (with the rename), from a sprite it packs and the extractor + placement
// (tar-extract.ts, cp-place.ts) unpack. The trees that come out are what docker cp would make.
describe('plans through real tar', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  });
  const tmp = () => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'agent-cp-'));
    dirs.push(d);
    return d;
  };
  const tree = (root: string): string[] => {
    const out: string[] = [];
    const walk = (d: string, rel: string) => {
      for (const e of fs.readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
        const r = rel ? `${rel}/${e.name}` : e.name;
        out.push(e.isDirectory() ? `${r}/` : e.isSymbolicLink() ? `${r} -> ${fs.readlinkSync(path.join(d, e.name))}` : `${r} ${fs.readFileSync(path.join(d, e.name), 'utf8')}`);
        if (e.isDirectory()) walk(path.join(d, e.name), r);
      }
    };
    walk(root, '');
    return out;
  };
  const create = (argv: string[]): Buffer => {
    const c = spawnSync('tar', argv, { maxBuffer: 64 << 20 });
    expect(c.status, c.stderr.toString()).toBe(0);
    return c.stdout;
  };
  const fixture = () => {
    const h = tmp();
    fs.mkdirSync(path.join(h, 'src/sub'), { recursive: true });
    fs.writeFileSync(path.join(h, 'src/sub/f'), 'F');
    fs.writeFileSync(path.join(h, 'src/x.sh'), 'X', { mode: 0o755 });
    fs.symlinkSync('sub/f', path.join(h, 'src/link'));
    fs.utimesSync(path.join(h, 'src/x.sh'), 1_600_000_000, 1_600_000_000);
    fs.chmodSync(path.join(h, 'src/sub'), 0o750);
    return h;
  };
  const cases: [string, string, PathKind, string[]][] = [
    ['src', 'd', 'dir', ['d/', 'd/src/', 'd/src/link -> sub/f', 'd/src/sub/', 'd/src/sub/f F', 'd/src/x.sh X']],
    ['src/.', 'd', 'dir', ['d/', 'd/link -> sub/f', 'd/sub/', 'd/sub/f F', 'd/x.sh X']],
    ['src', 'new', 'none', ['new/', 'new/link -> sub/f', 'new/sub/', 'new/sub/f F', 'new/x.sh X']],
    ['src/.', 'new', 'none', ['new/', 'new/link -> sub/f', 'new/sub/', 'new/sub/f F', 'new/x.sh X']],
    ['src/x.sh', 'd', 'dir', ['d/', 'd/x.sh X']],
    ['src/x.sh', 'y.sh', 'none', ['y.sh X']],
    ['src/sub/f', 'old', 'file', ['old F']],
  ];
  for (const [src, dst, dstKind, expected] of cases) {
    for (const direction of ['to a sprite', 'from a sprite'] as const) {
      it(`${src} → ${dst} (${dstKind}), ${direction}`, async () => {
        const h = fixture();
        const g = tmp();
        if (dstKind === 'dir') fs.mkdirSync(path.join(g, dst));
        if (dstKind === 'file') fs.writeFileSync(path.join(g, dst), 'old contents');
        const srcKind: PathKind = fs.statSync(path.join(h, src)).isDirectory() ? 'dir' : 'file';
        const dstSpec = pathSpec(dst, g);
        const p = planCopy(pathSpec(src, h), srcKind, dstSpec, dstKind, 'dir');
        if (direction === 'to a sprite') {
          // Portable create here, GNU extract (with the rename) in the sprite.
          const x = spawnSync('tar', guestExtractArgv(p).slice(1), { input: create(hostCreateArgv(p)) });
          expect(x.status, x.stderr.toString()).toBe(0);
        } else {
          const archive = create(guestCreateArgv(p).slice(1));
          const t = hostTarget(p, dstSpec);
          const rx = new TreeReceiver({ kind: srcKind as 'file' | 'dir', top: p.member, target: t.path, typed: t.typed, limits: DEFAULT_LIMITS, umask: 0o022 });
          for (let i = 0; i < archive.length; i += 3000) await rx.write(archive.subarray(i, i + 3000));
          await rx.finish();
          expect(fs.existsSync(rx.tempDir)).toBe(false);
        }
        expect(tree(g)).toEqual(expected);
        const sh = path.join(g, expected.find((e) => e.includes('.sh X'))?.split(' ')[0] ?? '');
        if (sh !== g) {
          expect(fs.statSync(sh).mode & 0o7777).toBe(0o755);
          expect(fs.statSync(sh).mtimeMs).toBe(1_600_000_000_000);
        }
        const sub = path.join(g, expected.find((e) => e.endsWith('sub/'))?.slice(0, -1) ?? '');
        if (sub !== g) expect(fs.statSync(sub).mode & 0o7777).toBe(0o750);
      });
    }
  }
});
