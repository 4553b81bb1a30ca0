/**
 * `ssh://[user@]server[:port]`: how a remote host is named, as Docker names its SSH hosts. Parsed
 * strictly because its parts become words of an `ssh` command line: a user or server that starts
 * with "-" would be read as an option, so both are checked against plain character sets, and the
 * server is always passed after `--`. No password, path, query or fragment: authentication is the
 * user's SSH keys and agent, never a secret in a URL. `server` may be an alias from ~/.ssh/config
 * (then its HostName, User, Port, ProxyJump… apply, the OpenSSH way).
 */
import net from 'node:net';
import { SpritelyError } from '../errors.ts';

export interface SshTarget {
  user: string | null;
  /** A DNS name, an ssh_config alias, an IPv4 address, or an IPv6 address (without brackets). */
  server: string;
  port: number | null;
}

const USER = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$/;
const SERVER = /^[A-Za-z0-9_]([A-Za-z0-9._-]{0,252})$/;
const SHAPE = /^ssh:\/\/(?:([^@/?#]*)@)?(\[[^\]/?#]*\]|[^:/?#@]*)(?::([^/?#]*))?(\/[^?#]*)?(\?[^#]*)?(#.*)?$/i;

function invalid(text: string, why: string): SpritelyError {
  return new SpritelyError('invalid_argument', `"${printable(text)}" is not a usable host address: ${why}. Write it as ssh://[user@]server[:port], e.g. ssh://me@build-box or ssh://me@10.0.0.5:2222.`);
}

function printable(s: string): string {
  return s.replace(/[\x00-\x1f\x7f]/g, '?').slice(0, 200);
}

export function parseSshUrl(text: string): SshTarget {
  if (/[\x00-\x20\x7f]/.test(text)) throw invalid(text, 'it contains spaces or control characters');
  if (!/^ssh:\/\//i.test(text)) throw invalid(text, 'it does not start with ssh://');
  const m = SHAPE.exec(text);
  if (!m) throw invalid(text, 'it is not of the form ssh://[user@]server[:port]');
  const [, userInfo, rawServer, rawPort, pathPart, query, fragment] = m;
  if (query !== undefined) throw invalid(text, 'it has a query (?…), which means nothing here');
  if (fragment !== undefined) throw invalid(text, 'it has a fragment (#…), which means nothing here');
  if (pathPart !== undefined && pathPart !== '/') throw invalid(text, `it has a path (${pathPart}); the remote Spritely is found by its command, see --remote-command`);
  let user: string | null = null;
  if (userInfo !== undefined) {
    if (userInfo.includes(':')) throw invalid(text, 'it contains a password; Spritely logs in with your SSH keys or agent, never a password in a URL');
    if (!USER.test(userInfo)) throw invalid(text, `the user "${userInfo}" may use only letters, digits, ".", "_" and "-" (not first), at most 64`);
    user = userInfo;
  }
  let server: string;
  if (rawServer.startsWith('[')) {
    server = rawServer.slice(1, -1);
    if (!net.isIPv6(server)) throw invalid(text, `[${server}] is not an IPv6 address`);
  } else {
    server = rawServer;
    if (!server) throw invalid(text, 'the server is missing');
    if (!SERVER.test(server)) throw invalid(text, `the server "${server}" may use only letters, digits, ".", "_" and "-" (not first)`);
  }
  let port: number | null = null;
  if (rawPort !== undefined) {
    if (!/^\d{1,5}$/.test(rawPort) || Number(rawPort) < 1 || Number(rawPort) > 65535) throw invalid(text, `the port "${rawPort}" is not a number from 1 to 65535`);
    port = Number(rawPort);
  }
  return { user, server, port };
}

/** The canonical spelling (what `host list` shows and the host record keeps). */
export function formatSshUrl(t: SshTarget): string {
  const server = net.isIPv6(t.server) ? `[${t.server}]` : t.server;
  return `ssh://${t.user ? `${t.user}@` : ''}${server}${t.port !== null ? `:${t.port}` : ''}`;
}

/** The destination words of an ssh command line: options first, then `--` and the server. */
export function sshDestination(t: SshTarget): string[] {
  return [...(t.user ? ['-l', t.user] : []), ...(t.port !== null ? ['-p', String(t.port)] : []), '--', t.server];
}
