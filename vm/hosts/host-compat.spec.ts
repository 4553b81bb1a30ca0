import { describe, expect, it } from 'vitest';
import { checkCompat, notInstalledMessage, parseHello, parseVersion, socketPathProblem, UPGRADE_COMMAND } from './host-compat.ts';

const hello = { version: '0.1.0', api: 'v1', pid: 42, home: '/home/me/.local/share/spritely', socket: '/home/me/.local/share/spritely/run/api.sock', urlPort: 41234, accel: { accel: 'kvm', reason: 'canary ok' }, qemuVersion: '7.2.22' };
const local = { version: '0.1.0', api: 'v1' };

describe('parseHello', () => {
  it('finds the hello after a login banner and ignores fields it does not know', () => {
    expect(parseHello(`Welcome to box!\n{"not":"it"}\n${JSON.stringify({ ...hello, future: 1 })}\n`)).toEqual(hello);
  });
  it('is null when nothing in the output is a hello', () => {
    expect(parseHello('')).toBeNull();
    expect(parseHello('0.1.0\n')).toBeNull();
    expect(parseHello('{"version":"0.1.0"}')).toBeNull();
    expect(parseHello('{broken')).toBeNull();
  });
});

describe('socketPathProblem', () => {
  it('accepts absolute plain paths only', () => {
    expect(socketPathProblem('/tmp/spritely-0-abc/api.sock')).toBeNull();
    expect(socketPathProblem('run/api.sock')).toMatch(/absolute/);
    expect(socketPathProblem('/a:b/api.sock')).toMatch(/":"/);
    expect(socketPathProblem('/a b/api.sock')).toMatch(/space/);
    expect(socketPathProblem('/' + 'x'.repeat(110))).toMatch(/longer/);
  });
});

describe('checkCompat', () => {
  it('accepts the same release line and API', () => {
    expect(checkCompat('box', local, { version: '0.1.0', api: 'v1' })).toEqual({ ok: true });
    expect(checkCompat('box', local, { version: '0.1.7', api: 'v1' })).toEqual({ ok: true });
    expect(checkCompat('box', { version: '1.2.0', api: 'v1' }, { version: '1.9.3-rc1', api: 'v1' })).toEqual({ ok: true });
  });

  it('refuses an older remote, naming both versions and the upgrade command for the server', () => {
    const r = checkCompat('box', local, { version: '0.0.9', api: 'v1' });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.message).toContain('"box" runs Spritely 0.0.9');
    expect(r.message).toContain('this computer runs 0.1.0');
    expect(r.message).toContain(`Upgrade Spritely on the server to 0.1.0`);
    expect(r.message).toContain(UPGRADE_COMMAND);
  });

  it('refuses a newer remote and says to upgrade this computer instead', () => {
    const r = checkCompat('box', local, { version: '0.2.0', api: 'v1' });
    expect(r.ok || r.message).toMatch(/Upgrade Spritely on this computer to 0.2.0/);
    const major = checkCompat('box', { version: '1.0.0', api: 'v1' }, { version: '2.0.0', api: 'v1' });
    expect(major.ok || major.message).toMatch(/on this computer/);
  });

  it('refuses a different API version, a remote too old to say, and a version that is not one', () => {
    expect(checkCompat('box', local, { version: '0.1.0', api: 'v2' }).ok || 'refused').toBe('refused');
    const api = checkCompat('box', local, { version: '0.1.0', api: 'v2' });
    expect(api.ok || api.message).toMatch(/API v2, this computer API v1/);
    const old = checkCompat('box', local, { version: '0.0.1', api: null });
    expect(old.ok || old.message).toMatch(/too old to be driven remotely.*on the server/);
    const junk = checkCompat('box', local, { version: 'banana', api: 'v1' });
    expect(junk.ok || junk.message).toMatch(/not a version number/);
  });

  it('parses versions with a v prefix or a suffix', () => {
    expect(parseVersion('v1.2.3')).toEqual({ major: 1, minor: 2, patch: 3 });
    expect(parseVersion('0.1.0-dev')).toEqual({ major: 0, minor: 1, patch: 0 });
    expect(parseVersion('1.2')).toBeNull();
  });
});

describe('notInstalledMessage', () => {
  it('says how to install and how to point at an existing install', () => {
    const m = notInstalledMessage('box', 'ssh://me@box', 'spritely', 'bash: line 1: spritely: command not found\n');
    expect(m).toContain('not installed on host "box"');
    expect(m).toContain('spritely: command not found');
    expect(m).toContain("spritely host add box ssh://me@box --remote-command '/usr/bin/node /path/to/spritely/bin/spritely.js'");
  });
});
