/**
 * Whether this computer can drive the Spritely on a server. The local daemon passes API calls and
 * streams through unchanged and reads the remote's events with its own schemas, so both sides must
 * speak the same API version, and — while the wire types still move between releases — the same
 * release line: same major version, and the same minor while the major is 0. What the remote is
 * comes from `spritely daemon start --json`, run on it over SSH (the "hello" below); a Spritely
 * too old to know `--json` answers `--version` instead.
 */
import { z } from 'zod';

/** What `spritely daemon start --json` prints: the remote daemon is running, and how to reach it. */
export const RemoteHello = z.object({
  version: z.string().max(100),
  api: z.string().max(20),
  pid: z.number().int(),
  home: z.string().max(4096),
  /** The daemon's owner-only API socket (absolute path on the server). */
  socket: z.string().max(4096),
  /** The server's local URL proxy port on its 127.0.0.1, or null when it has none. */
  urlPort: z.number().int().min(1).max(65535).nullable(),
  accel: z.object({ accel: z.string().max(50), reason: z.string().max(2000) }).nullable(),
  qemuVersion: z.string().max(100).nullable(),
});
export type RemoteHello = z.infer<typeof RemoteHello>;

/** The hello in a command's stdout: its last JSON line (a login shell may print a banner first). */
export function parseHello(stdout: string): RemoteHello | null {
  const lines = stdout.split('\n').map((l) => l.trim()).filter((l) => l.startsWith('{'));
  for (const line of lines.reverse()) {
    try {
      const r = RemoteHello.safeParse(JSON.parse(line));
      if (r.success) return r.data;
    } catch {
      /* not this line */
    }
  }
  return null;
}

/** A socket path `ssh -L local:remote` can carry: absolute, no ":" (the separator), nothing unprintable. */
export function socketPathProblem(p: string): string | null {
  if (!p.startsWith('/')) return `the remote API socket "${p}" is not an absolute path`;
  if (/[:\s\x00-\x1f\x7f]/.test(p)) return `the remote API socket path "${p.replace(/[\x00-\x1f\x7f]/g, '?')}" contains ":", a space or a control character, which an SSH forward cannot carry; set SPRITELY_HOME on the server to a plain path`;
  if (p.length > 104) return `the remote API socket path is ${p.length} characters, longer than a unix socket allows`;
  return null;
}

interface Version {
  major: number;
  minor: number;
  patch: number;
}

export function parseVersion(v: string): Version | null {
  const m = /^v?(\d+)\.(\d+)\.(\d+)/.exec(v.trim());
  return m ? { major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3]) } : null;
}

export type Compat = { ok: true } | { ok: false; message: string };

export const UPGRADE_COMMAND = 'git pull && bash scripts/setup.sh';

/** Can this computer (`local`) drive the remote daemon `remote` of host `host`? */
export function checkCompat(host: string, local: { version: string; api: string }, remote: { version: string; api: string | null }): Compat {
  const lv = parseVersion(local.version);
  const rv = parseVersion(remote.version);
  const same = (a: Version, b: Version) => a.major === b.major && (a.major > 0 || a.minor === b.minor);
  if (lv && rv && remote.api === local.api && same(lv, rv)) return { ok: true };
  const remoteNewer = !!(lv && rv && (rv.major - lv.major || rv.minor - lv.minor || rv.patch - lv.patch) > 0);
  const why = !rv
    ? `its version "${remote.version.slice(0, 40)}" is not a version number`
    : remote.api === null
      ? 'it is too old to be driven remotely'
      : remote.api !== local.api
        ? `it speaks API ${remote.api}, this computer API ${local.api}`
        : 'different release lines';
  const fix = remoteNewer
    ? `Upgrade Spritely on this computer to ${remote.version}: in its checkout run \`${UPGRADE_COMMAND}\`.`
    : `Upgrade Spritely on the server to ${local.version}: in its Spritely checkout there run \`${UPGRADE_COMMAND}\` (e.g. ssh into it first), then try again.`;
  return { ok: false, message: `Host "${host}" runs Spritely ${remote.version.slice(0, 40)} and this computer runs ${local.version}; they cannot work together (${why}). ${fix}` };
}

/** What to say when the remote command is not there. */
export function notInstalledMessage(host: string, url: string, command: string, detail: string): string {
  return (
    `Spritely is not installed on host "${host}" (${url}), or \`${command}\` is not on the PATH of a non-interactive SSH session there (${detail.trim().split('\n').slice(-1)[0]?.slice(0, 200) || 'command not found'}). ` +
    `Install it on the server (a Spritely checkout, then \`bash scripts/setup.sh && npm link\`; see docs/hosts.md), ` +
    `or name its full path: spritely host add ${host} ${url} --remote-command '/usr/bin/node /path/to/spritely/bin/spritely.js'.`
  );
}
