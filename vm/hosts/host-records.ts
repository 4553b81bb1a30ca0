/**
 * The remote hosts this computer knows, kept in `hosts.json` in the data dir: owner-only (0600)
 * and written atomically (temp file, fsync, rename), so a crash never leaves a torn list. Only the
 * local daemon writes it. A record holds no secret: the SSH URL, optionally the paths of an
 * identity file and an ssh_config file, and the command that runs Spritely on the server.
 *
 * Host names are DNS labels like sprite names, because they become part of local URLs
 * (`http://SPRITE.HOST.localhost:PORT/`); `local` names this computer and is reserved.
 */
import { z } from 'zod';
import { SpritelyError } from '../errors.ts';
import { SPRITE_NAME_PATTERN } from '../names.ts';
import { readJson, writeJsonAtomic } from '../store/atomic-json.ts';
import { formatSshUrl, parseSshUrl } from './ssh-url.ts';

export const LOCAL_HOST = 'local';
export const DEFAULT_REMOTE_COMMAND = 'spritely';

/** Returns null when the name is fine, else a sentence saying what is wrong with it. */
export function hostNameProblem(name: unknown): string | null {
  if (typeof name !== 'string' || name.length === 0) return 'a host name cannot be empty';
  if (name === LOCAL_HOST) return '"local" is this computer; choose another name';
  if (name.length > 63) return `a host name has at most 63 characters (this one has ${name.length})`;
  if (!SPRITE_NAME_PATTERN.test(name)) return `"${name.replace(/[^\x20-\x7e]/g, '?').slice(0, 70)}" is not a DNS label: use a-z, 0-9 and "-", not first or last`;
  return null;
}

export function assertHostName(name: unknown): asserts name is string {
  const p = hostNameProblem(name);
  if (p) throw new SpritelyError('invalid_argument', `Invalid host name: ${p}.`);
}

/** The shell command line that runs Spritely on the server (`spritely daemon start --json` is appended). */
export function remoteCommandProblem(cmd: unknown): string | null {
  if (typeof cmd !== 'string' || !cmd.trim()) return 'the remote command cannot be empty';
  if (cmd.length > 1000) return 'the remote command is longer than 1000 characters';
  if (/[\x00-\x1f\x7f]/.test(cmd)) return 'the remote command contains a control character (a newline?)';
  return null;
}

export const HostRecord = z
  .object({
    name: z.string().refine((n) => hostNameProblem(n) === null, 'an invalid host name'),
    url: z.string().refine((u) => {
      try {
        return formatSshUrl(parseSshUrl(u)) === u;
      } catch {
        return false;
      }
    }, 'not a canonical ssh:// URL'),
    identity: z.string().min(1).nullable(),
    sshConfig: z.string().min(1).nullable(),
    remoteCommand: z.string().refine((c) => remoteCommandProblem(c) === null, 'an invalid remote command'),
    addedAt: z.string(),
  })
  .strict();
export type HostRecord = z.infer<typeof HostRecord>;

export const HostsFile = z.object({ version: z.literal(1), hosts: z.array(HostRecord) }).strict();
export type HostsFile = z.infer<typeof HostsFile>;

export const EMPTY_HOSTS: HostsFile = { version: 1, hosts: [] };

/** Parses a hosts.json document; anything off is a clear error naming the file. */
export function parseHostsFile(value: unknown, file = 'hosts.json'): HostsFile {
  if (value === null) return EMPTY_HOSTS;
  const r = HostsFile.safeParse(value);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new SpritelyError('failed_precondition', `${file} is not a valid host list (${issue.path.join('.') || 'document'}: ${issue.message}). Fix or remove it; \`spritely host add\` writes a new one.`);
  }
  const seen = new Set<string>();
  for (const h of r.data.hosts) {
    if (seen.has(h.name)) throw new SpritelyError('failed_precondition', `${file} names host "${h.name}" twice. Remove one of them.`);
    seen.add(h.name);
  }
  return r.data;
}

export function withHost(file: HostsFile, rec: HostRecord): HostsFile {
  if (file.hosts.some((h) => h.name === rec.name)) throw new SpritelyError('already_exists', `There is already a host named "${rec.name}" (spritely host list). Remove it first, or choose another name.`);
  return { version: 1, hosts: [...file.hosts, HostRecord.parse(rec)] };
}

export function withoutHost(file: HostsFile, name: string): HostsFile {
  if (!file.hosts.some((h) => h.name === name)) throw unknownHost(name);
  return { version: 1, hosts: file.hosts.filter((h) => h.name !== name) };
}

export function unknownHost(name: string): SpritelyError {
  return new SpritelyError('not_found', `There is no host named "${name}". \`spritely host list\` shows them; \`spritely host add ${name} ssh://[user@]server\` adds one.`);
}

export function readHostsFile(file: string): HostsFile {
  return parseHostsFile(readJson(file), file);
}

export async function writeHostsFile(file: string, hosts: HostsFile): Promise<void> {
  await writeJsonAtomic(file, HostsFile.parse(hosts), 0o600);
}
