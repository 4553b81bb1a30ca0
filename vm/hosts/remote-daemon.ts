/**
 * Starting (or finding) the Spritely daemon on a server, over an open SSH master: run
 * `spritely daemon start --json` there — the way the local CLI starts the local daemon — and read
 * how to reach it (its "hello"), then decide whether this computer can drive it. Every failure is a
 * sentence that says what to do: not installed (install it, or --remote-command), too old or too
 * new (which side to upgrade, and how), or what it said when it failed.
 */
import { API_VERSION } from '../api/contract.ts';
import { SpritelyError } from '../errors.ts';
import { safeText } from '../safe-text.ts';
import { checkCompat, notInstalledMessage, parseHello, parseVersion, socketPathProblem, type RemoteHello } from './host-compat.ts';
import type { HostRecord } from './host-records.ts';
import { classifySshFailure, runArgs, sshFailureMessage, type SshSpec } from './ssh-command.ts';
import { runSsh } from './ssh-process.ts';

/** How long the remote `spritely daemon start --json` may take (a first start builds its CLI). */
export const HELLO_TIMEOUT_MS = 90_000;

/** A shell saying the command does not exist (bash, dash, zsh; a missing absolute path). */
const NOT_FOUND = /command not found|: not found\s*$|No such file or directory/im;

export async function startRemoteDaemon(
  spec: SshSpec,
  host: Pick<HostRecord, 'name' | 'url' | 'remoteCommand'>,
  localVersion: string,
  /** What the master said, when it has ended (the command failed because the connection did). */
  masterEnded: () => string | null,
): Promise<RemoteHello> {
  const cmd = host.remoteCommand;
  const r = await runSsh(runArgs(spec, `${cmd} daemon start --json`), HELLO_TIMEOUT_MS);
  if (r.timedOut) throw new SpritelyError('timeout', `Host "${host.name}": \`${cmd} daemon start --json\` did not finish within ${HELLO_TIMEOUT_MS / 1000} s.`);
  const hello = r.code === 0 ? parseHello(r.stdout) : null;
  if (hello) return checked(host.name, localVersion, hello);
  const ended = r.code === 255 ? masterEnded() : null;
  if (ended !== null) throw new SpritelyError('unavailable', sshFailureMessage(host.name, host.url, classifySshFailure(ended || r.stderr)));
  if (r.code === 127 || NOT_FOUND.test(r.stderr)) throw new SpritelyError('failed_precondition', notInstalledMessage(host.name, host.url, cmd, safeText(r.stderr, { maxChars: 400 })));
  // Too old to know `--json`? Then it still knows --version.
  const v = await runSsh(runArgs(spec, `${cmd} --version`), 30_000);
  const version = v.code === 0 ? (v.stdout.trim().split('\n').pop()?.trim() ?? '') : '';
  if (parseVersion(version)) {
    const compat = checkCompat(host.name, { version: localVersion, api: API_VERSION }, { version, api: null });
    if (!compat.ok) throw new SpritelyError('failed_precondition', compat.message);
  }
  const said = safeText((r.stderr || r.stdout).trim().split('\n').slice(-3).join(' | '), { maxChars: 400 });
  throw new SpritelyError('failed_precondition', `Host "${host.name}": \`${cmd} daemon start --json\` failed (exit ${r.code}): ${said || 'no output'}. Its daemon log (on the server: ~/.local/share/spritely/daemon.log) may say more.`);
}

function checked(name: string, localVersion: string, hello: RemoteHello): RemoteHello {
  const compat = checkCompat(name, { version: localVersion, api: API_VERSION }, { version: hello.version, api: hello.api });
  if (!compat.ok) throw new SpritelyError('failed_precondition', compat.message);
  const sockProblem = socketPathProblem(hello.socket);
  if (sockProblem) throw new SpritelyError('failed_precondition', `Host "${name}": ${sockProblem}.`);
  return hello;
}
