import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { checkRunDir, ensureLayout, layout, shortRunDir } from './paths.ts';

let tmp: string;
beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'paths-'));
});
afterEach(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

const long = (base: string) => path.join(base, 'a-rather-long-directory-name-for-spritely-data-that-goes-on', 'and-on-and-on');

describe('the run dir', () => {
  it('is the data dir’s own run/ when socket paths fit', () => {
    expect(layout('/home/u/.local/share/spritely', {}).runDir).toBe('/home/u/.local/share/spritely/run');
  });

  it('for a long data dir: in $XDG_RUNTIME_DIR when set (and short enough), else in the temp dir under our uid', () => {
    const home = long('/home/u');
    const tag = /spritely-([0-9a-f]{10})$/.exec(shortRunDir(home, { XDG_RUNTIME_DIR: '/run/user/1000' }))![1];
    expect(layout(home, { XDG_RUNTIME_DIR: '/run/user/1000' }).runDir).toBe(`/run/user/1000/spritely-${tag}`);
    expect(layout(home, {}).runDir).toBe(path.join(os.tmpdir(), `spritely-${process.getuid!()}-${tag}`));
    expect(layout(home, { XDG_RUNTIME_DIR: 'relative/dir' }).runDir).toBe(path.join(os.tmpdir(), `spritely-${process.getuid!()}-${tag}`));
    expect(layout(home, { XDG_RUNTIME_DIR: '/' + 'x'.repeat(90) }).runDir).toBe(path.join(os.tmpdir(), `spritely-${process.getuid!()}-${tag}`));
  });

  it('is made owner-only in $XDG_RUNTIME_DIR and used again next time', () => {
    const xdg = path.join(tmp, 'xdg');
    fs.mkdirSync(xdg, { mode: 0o700 });
    const l = layout(long(tmp), { XDG_RUNTIME_DIR: xdg });
    ensureLayout(l);
    expect(path.dirname(l.runDir)).toBe(xdg);
    expect(fs.statSync(l.runDir).mode & 0o777).toBe(0o700);
    ensureLayout(l);
    expect(checkRunDir(l.runDir)).toBe(true);
  });

  it('refuses one that someone else prepared: a symlink, a file, open to others, or another user’s', () => {
    const xdg = path.join(tmp, 'xdg');
    fs.mkdirSync(xdg, { mode: 0o700 });
    const l = layout(long(tmp), { XDG_RUNTIME_DIR: xdg });
    const elsewhere = path.join(tmp, 'elsewhere');
    fs.mkdirSync(elsewhere, { mode: 0o700 });

    fs.symlinkSync(elsewhere, l.runDir);
    expect(() => ensureLayout(l)).toThrow(/The run dir .* is a symbolic link, not a directory\. Remove it if it is not yours/);
    fs.rmSync(l.runDir);

    fs.writeFileSync(l.runDir, '');
    expect(() => ensureLayout(l)).toThrow(/is not a directory/);
    fs.rmSync(l.runDir);

    fs.mkdirSync(l.runDir, { mode: 0o700 });
    fs.chmodSync(l.runDir, 0o777);
    expect(() => ensureLayout(l)).toThrow(/is open to other users \(mode 777; it must be 700\)/);
    expect(fs.statSync(l.runDir).mode & 0o777).toBe(0o777); // refused, not quietly "fixed"
    fs.chmodSync(l.runDir, 0o700);

    const me = process.getuid!();
    expect(() => checkRunDir(l.runDir, me + 1)).toThrow(`The run dir ${l.runDir} belongs to user ${me}, not to you (${me + 1}).`);
    expect(checkRunDir(path.join(tmp, 'missing'))).toBe(false);
  });

  it('inside the data dir it is simply made owner-only, as before', () => {
    const home = path.join(tmp, 'home');
    const l = layout(home, {});
    fs.mkdirSync(l.runDir, { recursive: true, mode: 0o755 });
    fs.chmodSync(l.runDir, 0o755);
    ensureLayout(l);
    expect(fs.statSync(l.runDir).mode & 0o777).toBe(0o700);
  });
});
