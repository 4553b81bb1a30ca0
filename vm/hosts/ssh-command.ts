/**
 * The system OpenSSH command lines the local daemon runs for a remote host, and what their
 * failures mean. Real `ssh`, not an SSH library, so the user's ~/.ssh/config (HostName, User,
 * ProxyJump, IdentityFile…), known_hosts, agent and hardware keys all work exactly as with `ssh`.
 *
 * One connection per host: a *master* (`-M -S CONTROL -N`) that the daemon holds open; everything
 * else rides on it through its control socket — the remote commands (`spritely daemon start
 * --json`) as new sessions, and the API as a stream-local forward (`-O forward -L LOCAL:REMOTE`),
 * each HTTP or WebSocket connection a new channel on the same connection (no handshake).
 *
 * Never a prompt (BatchMode: a missing key fails, it does not hang a daemon); host keys checked the
 * OpenSSH way (StrictHostKeyChecking=yes, `accept-new` only when the user asked on `host add`);
 * the master forwards nothing of this computer to the server (no agent, no X11, none of the
 * config's forwardings) and runs no configured RemoteCommand or LocalCommand.
 */
import { safeText } from '../safe-text.ts';
import { sshDestination, type SshTarget } from './ssh-url.ts';

export interface SshSpec {
  target: SshTarget;
  /** `-i FILE` (a path; the key's passphrase, if any, is the agent's business). */
  identity: string | null;
  /** `-F FILE` instead of ~/.ssh/config. */
  configFile: string | null;
  /** The master's control socket. */
  controlPath: string;
}

/** How long a connection attempt may take before ssh gives up (seconds). */
export const CONNECT_TIMEOUT_S = 8;
/** A silent server is declared dead after ALIVE_INTERVAL_S × ALIVE_COUNT_MAX seconds. */
export const ALIVE_INTERVAL_S = 5;
export const ALIVE_COUNT_MAX = 3;

function base(s: SshSpec): string[] {
  return [...(s.configFile ? ['-F', s.configFile] : []), ...(s.identity ? ['-i', s.identity] : []), '-o', 'BatchMode=yes'];
}

export function masterArgs(s: SshSpec, opts: { acceptNewHostKey?: boolean; verbose?: boolean } = {}): string[] {
  return [
    ...base(s),
    '-M', '-S', s.controlPath, '-N', '-T',
    '-o', 'ControlPersist=no',
    '-o', `StrictHostKeyChecking=${opts.acceptNewHostKey ? 'accept-new' : 'yes'}`,
    '-o', `ConnectTimeout=${CONNECT_TIMEOUT_S}`,
    '-o', `ServerAliveInterval=${ALIVE_INTERVAL_S}`,
    '-o', `ServerAliveCountMax=${ALIVE_COUNT_MAX}`,
    '-o', 'ExitOnForwardFailure=yes',
    '-o', 'StreamLocalBindUnlink=yes',
    '-o', 'ClearAllForwardings=yes',
    '-o', 'ForwardAgent=no',
    '-o', 'ForwardX11=no',
    '-o', 'PermitLocalCommand=no',
    '-o', 'RemoteCommand=none',
    ...(opts.verbose ? ['-o', 'LogLevel=DEBUG1'] : []),
    ...sshDestination(s.target),
  ];
}

/**
 * Runs `command` (a shell command line for the server) as a new session on the master. When the
 * master is gone, ssh would quietly open a connection of its own instead; `ProxyCommand=false`
 * makes that fallback fail at once, so there is never a second connection.
 */
export function runArgs(s: SshSpec, command: string): string[] {
  return [...base(s), '-S', s.controlPath, '-o', 'ControlMaster=no', '-o', 'ProxyCommand=false', '-T', '-o', 'RemoteCommand=none', '-o', 'PermitLocalCommand=no', ...sshDestination(s.target), command];
}

/** Adds (or cancels) a forward of a local unix socket to `remote` (a socket path, or `127.0.0.1:PORT`). */
export function forwardArgs(s: SshSpec, op: 'forward' | 'cancel', localSocket: string, remote: string): string[] {
  return [...base(s), '-S', s.controlPath, '-O', op, '-L', `${localSocket}:${remote}`, ...sshDestination(s.target)];
}

/** Asks a master to end (used for one a previous daemon left behind). */
export function exitArgs(s: SshSpec): string[] {
  return [...base(s), '-S', s.controlPath, '-O', 'exit', ...sshDestination(s.target)];
}

export type SshFailureKind = 'host-key-changed' | 'host-key-unknown' | 'auth' | 'unreachable' | 'ssh';

export interface SshFailure {
  kind: SshFailureKind;
  /** ssh's own words (its last meaningful line), made inert for a terminal. */
  detail: string;
  /** The key the server offered, when ssh said it (LogLevel=DEBUG1): e.g. `ssh-ed25519 SHA256:…`. */
  offeredKey: string | null;
}

const SERVER_KEY = /Server host key: (\S+) (SHA256:[A-Za-z0-9+/=]+)/;

/** The key the server showed, from a DEBUG1 log (`ssh-ed25519 SHA256:…`), or null. */
export function offeredHostKey(stderr: string): string | null {
  const m = SERVER_KEY.exec(stderr);
  return m ? `${m[1]} ${m[2]}` : null;
}

/** ssh's stderr without its debug chatter and warning banners: the lines a person should read. */
export function meaningfulLines(stderr: string): string[] {
  return stderr
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l && !/^debug\d?:/.test(l) && !/^@+$/.test(l) && !/^@ +WARNING/.test(l) && !/^(Transferred|Bytes per second|Authenticated to|Warning: Permanently added)/.test(l));
}

export function classifySshFailure(stderr: string): SshFailure {
  const lines = meaningfulLines(stderr);
  const last = safeText(lines.at(-1) ?? 'ssh ended without saying why', { maxChars: 300 });
  const offeredKey = offeredHostKey(stderr);
  const has = (re: RegExp) => lines.some((l) => re.test(l));
  if (has(/REMOTE HOST IDENTIFICATION HAS CHANGED|Host key for .* has changed/)) {
    const fp = /fingerprint for the \S+ key sent by the remote host is\s*(SHA256:[A-Za-z0-9+/=]+)/.exec(stderr.replace(/\n/g, ' '));
    return { kind: 'host-key-changed', detail: last, offeredKey: offeredKey ?? (fp ? fp[1] : null) };
  }
  if (has(/host key is known for|Host key verification failed|No matching host key/)) return { kind: 'host-key-unknown', detail: last, offeredKey };
  if (has(/Permission denied \(|Too many authentication failures|no mutual signature/)) return { kind: 'auth', detail: last, offeredKey };
  if (has(/Connection refused|No route to host|Connection timed out|timed out|Could not resolve hostname|Name or service not known|Network is unreachable|Connection closed by|Connection reset|kex_exchange_identification|broken pipe|Timeout, server .* not responding/i)) {
    return { kind: 'unreachable', detail: last, offeredKey };
  }
  return { kind: 'ssh', detail: last, offeredKey };
}

/** A sentence for the person: what happened and what to do. */
export function sshFailureMessage(host: string, url: string, f: SshFailure): string {
  switch (f.kind) {
    case 'host-key-changed':
      return (
        `The SSH host key of host "${host}" (${url}) is not the one your known_hosts has for it${f.offeredKey ? ` (it now shows ${f.offeredKey})` : ''}: ` +
        `someone may be intercepting the connection, or the server was reinstalled. Spritely will not connect. ` +
        `If you know why it changed, remove the old key (ssh-keygen -R SERVER) and add the host again with --accept-new-host-key.`
      );
    case 'host-key-unknown':
      return (
        `The SSH host key of host "${host}" (${url}) is not in your known_hosts${f.offeredKey ? `; it shows ${f.offeredKey}` : ''}. ` +
        `Compare that with the server's own (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub, run on it), then add it with: ` +
        `spritely host add ${host} ${url} --accept-new-host-key` +
        ` (or connect once with plain ssh, which asks).`
      );
    case 'auth':
      return (
        `SSH could not log in to host "${host}" (${url}): ${f.detail}. Check the user, give the key with --identity FILE, and make sure its public key is in ~/.ssh/authorized_keys on the server. ` +
        `Spritely never asks for a password or a passphrase: load a protected key into your ssh-agent (ssh-add).`
      );
    case 'unreachable':
      return `Host "${host}" (${url}) is unreachable: ${f.detail}.`;
    default:
      return `SSH to host "${host}" (${url}) failed: ${f.detail}.`;
  }
}
