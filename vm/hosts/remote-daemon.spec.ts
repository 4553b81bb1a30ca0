/**
 * startRemoteDaemon against a fake `ssh` (SPRITELY_SSH_BINARY): a script that answers as a server
 * would for each remote command — installed, missing, too old to know --json, newer, broken.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SshSpec } from './ssh-command.ts';
import { parseSshUrl } from './ssh-url.ts';

let dir: string;
let startRemoteDaemon: typeof import('./remote-daemon.ts').startRemoteDaemon;
const hello = (over: Record<string, unknown> = {}) => JSON.stringify({ version: '0.1.0', api: 'v1', pid: 7, home: '/srv/s', socket: '/srv/s/run/api.sock', urlPort: 4000, accel: { accel: 'kvm', reason: 'ok' }, qemuVersion: '7.2.22', ...over });

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'remote-daemon-'));
  const fake = path.join(dir, 'ssh');
  fs.writeFileSync(
    fake,
    `#!/bin/sh
for last; do :; done
case "$last" in
  "good daemon start --json") echo "Welcome to the server"; echo '${hello()}';;
  "newer daemon start --json") echo '${hello({ version: '0.2.0' })}';;
  "badsock daemon start --json") echo '${hello({ socket: 'run/api.sock' })}';;
  "missing daemon start --json") echo "bash: line 1: missing: command not found" >&2; exit 127;;
  "dash daemon start --json") echo "sh: 1: dash: not found" >&2; exit 127;;
  "old daemon start --json") echo "error: unknown option '--json'" >&2; exit 1;;
  "old --version") echo 0.0.9;;
  "broken daemon start --json") printf 'spritely: the daemon failed to start\\033]0;x\\007\\n' >&2; exit 1;;
  "broken --version") exit 1;;
  *) echo "Connection closed by remote host" >&2; exit 255;;
esac
`,
    { mode: 0o755 },
  );
  process.env.SPRITELY_SSH_BINARY = fake;
  ({ startRemoteDaemon } = await import('./remote-daemon.ts'));
});

afterAll(() => {
  delete process.env.SPRITELY_SSH_BINARY;
  fs.rmSync(dir, { recursive: true, force: true });
});

const spec = (): SshSpec => ({ target: parseSshUrl('ssh://me@box'), identity: null, configFile: null, controlPath: path.join(dir, 'ctl') });
const run = (remoteCommand: string, ended: string | null = null) => startRemoteDaemon(spec(), { name: 'box', url: 'ssh://me@box', remoteCommand }, '0.1.0', () => ended);

describe('startRemoteDaemon', () => {
  it('reads the hello after a login banner', async () => {
    expect(await run('good')).toMatchObject({ version: '0.1.0', socket: '/srv/s/run/api.sock', urlPort: 4000 });
  });

  it('refuses a newer release line, saying to upgrade this computer', async () => {
    await expect(run('newer')).rejects.toThrow(/runs Spritely 0.2.0.*Upgrade Spritely on this computer to 0.2.0/);
  });

  it('refuses a socket path an SSH forward cannot carry', async () => {
    await expect(run('badsock')).rejects.toThrow(/not an absolute path/);
  });

  it('says how to install, for bash and for dash', async () => {
    await expect(run('missing')).rejects.toThrow(/Spritely is not installed on host "box".*missing: command not found.*--remote-command/);
    await expect(run('dash')).rejects.toThrow(/not installed/);
  });

  it('an install too old to know --json: its version and the upgrade command', async () => {
    await expect(run('old')).rejects.toThrow(/runs Spritely 0.0.9 and this computer runs 0.1.0;.*too old.*git pull && bash scripts\/setup.sh/);
  });

  it('any other failure in its own words, made inert', async () => {
    await expect(run('broken')).rejects.toThrow(/failed \(exit 1\): spritely: the daemon failed to start\\x1b\]0;x\\x07/);
  });

  it('a connection that ended is reported as ssh said it, not as a Spritely problem', async () => {
    await expect(run('anything', 'Timeout, server box not responding.')).rejects.toMatchObject({ code: 'unavailable', message: expect.stringMatching(/is unreachable: Timeout, server box not responding/) });
  });
});
