/**
 * The relay's tokens file: accounts, each with a stable public suffix and the sha256 of its current
 * tunnel token (never the token). Written atomically with mode 0600 by `spritely-relay token …`, read
 * and watched by a running relay so a revocation takes effect at once. Pure edits on the parsed file,
 * thin I/O around them.
 */
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, watch, watchFile, unwatchFile, writeSync, type FSWatcher } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { DigestSet } from './digest-set.ts';
import { generateSuffix, generateTunnelToken, hashTunnelToken } from './tunnel-token.ts';

const accountSchema = z.object({
  name: z.string(),
  suffix: z.string(),
  /** sha256 (hex) of the current tunnel token; null once revoked. */
  tokenHash: z.string().nullable(),
  createdAt: z.string(),
  revokedAt: z.string().nullable().default(null),
  /** Hashes of revoked tokens, so the relay's log can say "revoked" (the client hears the same as for an unknown token). */
  revokedHashes: z.array(z.string()).default([]),
});
export type Account = z.infer<typeof accountSchema>;

const tokenFileSchema = z.object({ version: z.literal(1), accounts: z.array(accountSchema) });
export type TokenFile = z.infer<typeof tokenFileSchema>;

export const ACCOUNT_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export function emptyTokenFile(): TokenFile {
  return { version: 1, accounts: [] };
}

/**
 * Issues a token for `name`: a new account with a fresh unique suffix, or — for a revoked account — a
 * new token under the same suffix (URLs stay stable). An account with a live token must be revoked first.
 */
export function addAccountToken(file: TokenFile, name: string, now: Date, suffixSource: () => string = generateSuffix): { file: TokenFile; token: string; account: Account } {
  if (!ACCOUNT_NAME_PATTERN.test(name)) throw new Error(`invalid account name ${JSON.stringify(name)}`);
  const existing = file.accounts.find((account) => account.name === name);
  if (existing && existing.tokenHash !== null) throw new Error(`account ${name} already has a token; revoke it first`);
  let suffix = existing?.suffix;
  if (!suffix) {
    const taken = new Set(file.accounts.map((account) => account.suffix));
    for (let i = 0; i < 100 && (!suffix || taken.has(suffix)); i += 1) suffix = suffixSource();
    if (!suffix || taken.has(suffix)) throw new Error('could not pick a unique suffix');
  }
  const token = generateTunnelToken(suffix);
  const account: Account = {
    name,
    suffix,
    tokenHash: hashTunnelToken(token),
    createdAt: existing?.createdAt ?? now.toISOString(),
    revokedAt: null,
    revokedHashes: existing?.revokedHashes ?? [],
  };
  const accounts = existing ? file.accounts.map((a) => (a.name === name ? account : a)) : [...file.accounts, account];
  return { file: { version: 1, accounts }, token, account };
}

export function revokeAccount(file: TokenFile, name: string, now: Date): TokenFile {
  const existing = file.accounts.find((account) => account.name === name);
  if (!existing) throw new Error(`no account named ${name}`);
  if (existing.tokenHash === null) throw new Error(`account ${name} is already revoked`);
  const revoked: Account = {
    ...existing,
    tokenHash: null,
    revokedAt: now.toISOString(),
    revokedHashes: [...existing.revokedHashes, existing.tokenHash].slice(-20),
  };
  return { version: 1, accounts: file.accounts.map((a) => (a.name === name ? revoked : a)) };
}

export type TokenLookup = { kind: 'ok'; account: Account } | { kind: 'revoked'; account: Account } | { kind: 'unknown' };

/**
 * A lookup index over a parsed file, by token hash. Lookups are constant-time (relay/digest-set.ts):
 * the relay answers unknown and revoked tokens alike on the wire, and the time it takes must not tell
 * them apart either. `revoked` is for the operator's log only.
 */
export class TokenIndex {
  private readonly digests: DigestSet<TokenLookup>;

  constructor(readonly file: TokenFile) {
    const entries: [string, TokenLookup][] = [];
    for (const account of file.accounts) {
      if (account.tokenHash) entries.push([account.tokenHash, { kind: 'ok', account }]);
      for (const hash of account.revokedHashes) entries.push([hash, { kind: 'revoked', account }]);
    }
    this.digests = new DigestSet(entries);
  }

  lookup(tokenHash: string): TokenLookup {
    return this.digests.find(tokenHash) ?? { kind: 'unknown' };
  }

  /** Whether a tunnel opened with `tokenHash` may stay open. */
  isLive(tokenHash: string): boolean {
    return this.lookup(tokenHash).kind === 'ok';
  }
}

export function readTokenFile(file: string): TokenFile {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return emptyTokenFile();
    throw error;
  }
  return tokenFileSchema.parse(JSON.parse(text));
}

/** temp file (0600) + fsync + rename: a reader never sees a half-written file. */
export function writeTokenFile(file: string, data: TokenFile): void {
  const temp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${Date.now()}.tmp`);
  const fd = openSync(temp, 'wx', 0o600);
  try {
    writeSync(fd, `${JSON.stringify(data, null, 2)}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(temp, file);
}

/**
 * Calls `onChange` soon after the file changes: fs.watch on the directory (catches the atomic
 * rename at once) with a stat poll as a fallback for filesystems where watching is unreliable.
 */
export function watchTokenFile(file: string, onChange: () => void, pollMs = 1000): () => void {
  let timer: NodeJS.Timeout | undefined;
  const fire = () => {
    clearTimeout(timer);
    timer = setTimeout(onChange, 20);
  };
  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(path.dirname(file), (_event, name) => {
      if (name === null || name.toString() === path.basename(file)) fire();
    });
    watcher.on('error', () => undefined);
  } catch {
    watcher = undefined;
  }
  const poll = () => fire();
  watchFile(file, { interval: pollMs, persistent: false }, poll);
  return () => {
    clearTimeout(timer);
    watcher?.close();
    unwatchFile(file, poll);
  };
}
