import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { trustedFile } from './host-manager.ts';

describe('trustedFile (--identity, --ssh-config)', () => {
  let dir: string | null = null;
  afterEach(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
    dir = null;
  });

  it('takes an absolute path to a file of this user that others cannot write, outside the data dir', () => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'trusted-'));
    dir = d;
    const home = path.join(d, 'spritely');
    fs.mkdirSync(path.join(home, 'sprites/web'), { recursive: true });
    const good = path.join(d, 'ssh_config');
    fs.writeFileSync(good, 'Host *\n', { mode: 0o600 });
    expect(trustedFile(good, '--ssh-config', home)).toBe(good);

    expect(() => trustedFile('ssh_config', '--ssh-config', home)).toThrow(/absolute path/);
    expect(() => trustedFile(path.join(d, 'missing'), '--ssh-config', home)).toThrow(/not a readable file \(ENOENT\)/);
    expect(() => trustedFile(d, '--ssh-config', home)).toThrow(/not a regular file/);
    const open = path.join(d, 'open');
    fs.writeFileSync(open, '', { mode: 0o600 });
    fs.chmodSync(open, 0o666);
    expect(() => trustedFile(open, '--ssh-config', home)).toThrow(/written by others \(mode 666\)/);
    const guestLand = path.join(home, 'sprites/web/serial.log');
    fs.writeFileSync(guestLand, 'ProxyCommand touch /tmp/pwned\n', { mode: 0o600 });
    expect(() => trustedFile(guestLand, '--ssh-config', home)).toThrow(/inside Spritely's data dir/);
    const link = path.join(d, 'innocent');
    fs.symlinkSync(guestLand, link);
    expect(() => trustedFile(link, '--ssh-config', home)).toThrow(/inside Spritely's data dir/);
  });
});
