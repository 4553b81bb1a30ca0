import { describe, expect, it } from 'vitest';
import { classifySshFailure, exitArgs, forwardArgs, masterArgs, meaningfulLines, offeredHostKey, runArgs, sshFailureMessage, type SshSpec } from './ssh-command.ts';
import { parseSshUrl } from './ssh-url.ts';

const spec: SshSpec = { target: parseSshUrl('ssh://me@box:2222'), identity: '/home/me/.ssh/id_box', configFile: null, controlPath: '/run/s/h-1.ctl' };

/** ssh 9.2's own words, captured from real runs. */
const UNKNOWN = 'No ED25519 host key is known for 10.231.77.2 and you have requested strict checking.\nHost key verification failed.\n';
const UNKNOWN_DEBUG = 'debug1: Connecting to 10.231.77.2 [10.231.77.2] port 22.\ndebug1: Server host key: ssh-ed25519 SHA256:nEkk3DSSO35hwjidsO68wmOG34n1XkghvMTkU2fTLhk\n' + UNKNOWN;
const CHANGED = `@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@
@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @
@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@
IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!
Someone could be eavesdropping on you right now (man-in-the-middle attack)!
It is also possible that a host key has just been changed.
The fingerprint for the ED25519 key sent by the remote host is
SHA256:nEkk3DSSO35hwjidsO68wmOG34n1XkghvMTkU2fTLhk.
Please contact your system administrator.
Add correct host key in /tmp/kh3 to get rid of this message.
Offending ED25519 key in /tmp/kh3:1
  remove with:
  ssh-keygen -f "/tmp/kh3" -R "10.231.77.2"
Host key for 10.231.77.2 has changed and you have requested strict checking.
Host key verification failed.
`;

describe('command lines', () => {
  it('master: one connection held open, no prompt, strict host keys, nothing forwarded to the server, server last after --', () => {
    const a = masterArgs(spec);
    expect(a.slice(0, 4)).toEqual(['-i', '/home/me/.ssh/id_box', '-o', 'BatchMode=yes']);
    for (const o of ['StrictHostKeyChecking=yes', 'ControlPersist=no', 'ExitOnForwardFailure=yes', 'ForwardAgent=no', 'ForwardX11=no', 'ClearAllForwardings=yes', 'RemoteCommand=none', 'PermitLocalCommand=no']) expect(a).toContain(o);
    expect(a).toContain('-M');
    expect(a).toContain('-N');
    expect(a.slice(a.indexOf('-S'), a.indexOf('-S') + 2)).toEqual(['-S', '/run/s/h-1.ctl']);
    expect(a.slice(-6)).toEqual(['-l', 'me', '-p', '2222', '--', 'box']);
    expect(a.join(' ')).not.toMatch(/accept-new|LogLevel/);
  });

  it('master: accept-new and the debug log only when asked (host add)', () => {
    const a = masterArgs({ ...spec, identity: null, configFile: '/t/ssh_config' }, { acceptNewHostKey: true, verbose: true });
    expect(a.slice(0, 2)).toEqual(['-F', '/t/ssh_config']);
    expect(a).toContain('StrictHostKeyChecking=accept-new');
    expect(a).toContain('LogLevel=DEBUG1');
    expect(a).not.toContain('-i');
  });

  it('sessions, forwards and exit ride on the control socket, never as a master', () => {
    const r = runArgs(spec, 'spritely daemon start --json');
    expect(r).toContain('ControlMaster=no');
    expect(r).toContain('ProxyCommand=false');
    expect(r.at(-1)).toBe('spritely daemon start --json');
    expect(r.slice(-7, -1)).toEqual(['-l', 'me', '-p', '2222', '--', 'box']);
    const f = forwardArgs(spec, 'forward', '/run/s/h-1.api', '/home/me/.local/share/spritely/run/api.sock');
    expect(f.slice(f.indexOf('-O'), f.indexOf('-O') + 4)).toEqual(['-O', 'forward', '-L', '/run/s/h-1.api:/home/me/.local/share/spritely/run/api.sock']);
    expect(forwardArgs(spec, 'cancel', '/a', '127.0.0.1:80')).toContain('cancel');
    expect(exitArgs(spec).slice(-8, -6)).toEqual(['-O', 'exit']);
  });
});

describe('classifySshFailure', () => {
  it('an unknown host key, with the offered key when the debug log shows it', () => {
    expect(classifySshFailure(UNKNOWN)).toEqual({ kind: 'host-key-unknown', detail: 'Host key verification failed.', offeredKey: null });
    expect(classifySshFailure(UNKNOWN_DEBUG).offeredKey).toBe('ssh-ed25519 SHA256:nEkk3DSSO35hwjidsO68wmOG34n1XkghvMTkU2fTLhk');
  });

  it('a changed host key, with the fingerprint ssh printed', () => {
    const f = classifySshFailure(CHANGED);
    expect(f.kind).toBe('host-key-changed');
    expect(f.offeredKey).toBe('SHA256:nEkk3DSSO35hwjidsO68wmOG34n1XkghvMTkU2fTLhk');
  });

  it('a refused login, an unreachable server, anything else', () => {
    expect(classifySshFailure('me@box: Permission denied (publickey).\n').kind).toBe('auth');
    expect(classifySshFailure('ssh: connect to host 10.231.77.2 port 23: Connection refused\n')).toMatchObject({ kind: 'unreachable', detail: 'ssh: connect to host 10.231.77.2 port 23: Connection refused' });
    expect(classifySshFailure('ssh: connect to host 10.9.9.9 port 22: Connection timed out\n').kind).toBe('unreachable');
    expect(classifySshFailure('ssh: Could not resolve hostname nope: Name or service not known\n').kind).toBe('unreachable');
    expect(classifySshFailure('Timeout, server 10.231.77.2 not responding.\n').kind).toBe('unreachable');
    expect(classifySshFailure('something odd\n')).toMatchObject({ kind: 'ssh', detail: 'something odd' });
    expect(classifySshFailure('').detail).toMatch(/without saying why/);
  });

  it('makes server-chosen text inert (a banner could carry terminal escapes)', () => {
    expect(classifySshFailure('\x1b]0;pwned\x07evil\n').detail).toBe('\\x1b]0;pwned\\x07evil');
  });

  it('drops debug chatter and banners from what a person reads', () => {
    expect(meaningfulLines(UNKNOWN_DEBUG)).toEqual(['No ED25519 host key is known for 10.231.77.2 and you have requested strict checking.', 'Host key verification failed.']);
    expect(offeredHostKey('nothing')).toBeNull();
  });
});

describe('sshFailureMessage', () => {
  it('says what to do for each kind', () => {
    const url = 'ssh://me@box';
    expect(sshFailureMessage('b', url, classifySshFailure(UNKNOWN_DEBUG))).toMatch(/not in your known_hosts; it shows ssh-ed25519 SHA256:nEkk.*spritely host add b ssh:\/\/me@box --accept-new-host-key/);
    expect(sshFailureMessage('b', url, classifySshFailure(CHANGED))).toMatch(/not the one your known_hosts has.*will not connect.*ssh-keygen -R/);
    expect(sshFailureMessage('b', url, classifySshFailure('Permission denied (publickey).'))).toMatch(/--identity FILE.*ssh-agent/);
    expect(sshFailureMessage('b', url, classifySshFailure('ssh: connect to host box port 22: Connection refused'))).toBe('Host "b" (ssh://me@box) is unreachable: ssh: connect to host box port 22: Connection refused.');
  });
});
