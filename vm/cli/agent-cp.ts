/**
 * `spritely cp SRC DST`: files and directory trees between this computer and a sprite, either way,
 * with `docker cp` semantics (docs/agents.md). The decisions are in cp-plan.ts; here → sprite runs
 * in cp-to-sprite.ts (this computer's tar → the guest's tar); sprite → here in cp-from-sprite.ts,
 * where the guest's tar stream is treated as hostile: unpacked in Node into a fresh directory,
 * capped, and moved into place by this computer (tar-extract.ts, cp-place.ts).
 */
import { Option, type Command } from 'commander';
import type { ApiClient } from '../api/client.ts';
import { SpritelyError } from '../errors.ts';
import { copyFromSprite } from './cp-from-sprite.ts';
import { guestPathSpec, parseCpArg, pathSpec, type CopyResult } from './cp-plan.ts';
import { copyToSprite } from './cp-to-sprite.ts';
import { DEFAULT_LIMITS, type ExtractLimits } from './tar-extract.ts';

export interface CpOptions {
  /** Caps on what a sprite may send (sprite → here only). */
  limits?: ExtractLimits;
  /** Applied to modes from a sprite (like tar run by a user without -p); default: this process's umask. */
  umask?: number;
}

export async function runCp(api: () => Promise<ApiClient>, srcArg: string, dstArg: string, cwd = process.cwd(), opts: CpOptions = {}): Promise<CopyResult> {
  const src = parseCpArg(srcArg);
  const dst = parseCpArg(dstArg);
  if (src.sprite && dst.sprite) throw new SpritelyError('invalid_argument', `Both ${srcArg} and ${dstArg} are in sprites; copy through this computer (spritely cp ${srcArg} ./tmp, then spritely cp ./tmp ${dstArg}).`);
  if (!src.sprite && !dst.sprite) throw new SpritelyError('invalid_argument', `Neither ${srcArg} nor ${dstArg} is in a sprite; write one side as NAME:PATH (e.g. spritely cp ./file dev:/root/).`);
  if (dst.sprite) return copyToSprite(await api(), pathSpec(src.path, cwd), dst.sprite, guestPathSpec(dst.sprite, dst.path));
  return copyFromSprite(await api(), src.sprite!, guestPathSpec(src.sprite!, src.path), pathSpec(dst.path, cwd), {
    limits: opts.limits ?? DEFAULT_LIMITS,
    umask: opts.umask ?? process.umask(),
  });
}

const UNITS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/** "512M", "8G", "1.5GiB", "100000" (bytes; K/M/G/T are powers of 1024). */
export function parseSize(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$/i.exec(text);
  const n = m ? Math.floor(Number(m[1]) * UNITS[m[2].toLowerCase()]) : NaN;
  if (!Number.isSafeInteger(n) || n <= 0) throw new SpritelyError('invalid_argument', `expected a size such as 512M or 8G, got ${JSON.stringify(text)}`);
  return n;
}

function countArg(text: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n <= 0) throw new SpritelyError('invalid_argument', `expected a whole number above 0, got ${JSON.stringify(text)}`);
  return n;
}

export function registerCpCommand(program: Command, client: () => Promise<ApiClient>): void {
  const gib = (n: number) => `${n / 1024 ** 3}G`;
  program
    .command('cp')
    .description('Copy files and directories between this computer and a sprite, either way (like docker cp)')
    .argument('<src>', 'PATH here or NAME:PATH in a sprite (a directory ending in /. copies its contents)')
    .argument('<dst>', 'PATH here or NAME:PATH in a sprite (relative sprite paths start in /root)')
    .option('-q, --quiet', 'print nothing on success')
    .addOption(new Option('--max-size <size>', `from a sprite: refuse an archive larger than this, its last 128 KiB record's padding aside (default ${gib(DEFAULT_LIMITS.maxBytes)})`).env('SPRITELY_CP_MAX_SIZE').argParser(parseSize))
    .addOption(new Option('--max-file-size <size>', `from a sprite: refuse a file larger than this (default ${gib(DEFAULT_LIMITS.maxFileBytes)})`).env('SPRITELY_CP_MAX_FILE_SIZE').argParser(parseSize))
    .addOption(new Option('--max-entries <n>', `from a sprite: refuse more entries than this (default ${DEFAULT_LIMITS.maxEntries})`).env('SPRITELY_CP_MAX_ENTRIES').argParser(countArg))
    .action(async (srcArg: string, dstArg: string, opts: { quiet?: boolean; maxSize?: number; maxFileSize?: number; maxEntries?: number }) => {
      const limits: ExtractLimits = {
        maxBytes: opts.maxSize ?? DEFAULT_LIMITS.maxBytes,
        maxFileBytes: opts.maxFileSize ?? DEFAULT_LIMITS.maxFileBytes,
        maxEntries: opts.maxEntries ?? DEFAULT_LIMITS.maxEntries,
      };
      const r = await runCp(client, srcArg, dstArg, process.cwd(), { limits });
      if (!opts.quiet) process.stderr.write(`copied ${srcArg} → ${dstArg} (${formatSize(r.bytes)} in ${(r.ms / 1000).toFixed(1)} s)\n`);
    });
}

function formatSize(n: number): string {
  return n < 1024 * 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 1024 / 1024).toFixed(1)} MiB`;
}
