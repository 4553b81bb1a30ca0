/**
 * Which host a CLI command acts on: `--host NAME`, else $SPRITELY_HOST, else the host `spritely
 * host use` chose (the `default-host` file in the data dir, 0600, like Docker's current context),
 * else this computer. `local` always means this computer. Read by the CLI only — the daemon and
 * the app show every host and need no default.
 */
import fs from 'node:fs';
import path from 'node:path';
import writeFileAtomic from 'write-file-atomic';
import { SpritelyError } from '../errors.ts';
import { SPRITE_NAME_PATTERN } from '../names.ts';
import { layout, type Layout } from '../paths.ts';

export function defaultHostFile(l: Layout): string {
  return path.join(l.home, 'default-host');
}

/** A host name from a flag, the environment or the file; null = this computer. */
export function resolveHost(sources: { env?: string; file?: string | null }): string | null {
  const value = (sources.env?.trim() || sources.file?.trim() || '').toLowerCase();
  if (!value || value === 'local') return null;
  if (!SPRITE_NAME_PATTERN.test(value)) {
    const from = sources.env?.trim() ? '--host / SPRITELY_HOST' : 'the default host (spritely host use)';
    throw new SpritelyError('invalid_argument', `"${value.replace(/[^\x20-\x7e]/g, '?').slice(0, 70)}" (from ${from}) is not a host name. \`spritely host list\` shows them; "local" is this computer.`);
  }
  return value;
}

export function readDefaultHost(l: Layout): string | null {
  try {
    return fs.readFileSync(defaultHostFile(l), 'utf8').trim() || null;
  } catch {
    return null;
  }
}

export async function writeDefaultHost(l: Layout, host: string | null): Promise<void> {
  if (host === null) return void fs.rmSync(defaultHostFile(l), { force: true });
  await writeFileAtomic(defaultHostFile(l), `${host}\n`, { mode: 0o600, fsync: true });
}

/** The host this CLI invocation acts on (null = this computer). */
export function selectedHost(l: Layout = layout()): string | null {
  return resolveHost({ env: process.env.SPRITELY_HOST, file: process.env.SPRITELY_HOST?.trim() ? null : readDefaultHost(l) });
}
