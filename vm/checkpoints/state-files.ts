/**
 * A saved RAM state as files: written raw (`vN.state`, the fast path while the guest is paused),
 * then compressed in the background (`vN.state.lz4.partial` → fsync → renamed `vN.state.lz4` → the
 * raw one removed). At every instant one complete state exists: the compressed form only appears
 * once whole and durable, and the raw one goes only after that. So a daemon killed at any point
 * loses nothing; recovery (`settleStates`) keeps the compressed form when both exist and drops
 * partial files. States compressed by older daemons are zstd (`vN.state.zst`): still read, linked,
 * sized and removed like the others, never written any more. Everything that reads, links, sizes
 * or removes a state goes through here, so no caller has to know which form it is in.
 */
import fs from 'node:fs';
import path from 'node:path';

/** The compressed form written now: lz4 (restores decompress it faster than QEMU reads; docs/benchmarks.md). */
export const COMPRESSED = '.lz4';
/** Compressed forms read (newest first): lz4, and zstd from older daemons. */
export const COMPRESSED_FORMS = ['.lz4', '.zst'] as const;

export function compressedOf(file: string): string {
  return file + COMPRESSED;
}

export function partialOf(file: string): string {
  return file + COMPRESSED + '.partial';
}

/** Every name a form of `file` may have, complete or partial (older daemons' `.zst` ones included). */
function allForms(file: string): string[] {
  return [file, ...COMPRESSED_FORMS.flatMap((x) => [file + x, `${file}${x}.partial`])];
}

/** The complete compressed form of `file`, when there is one. */
function compressedForm(file: string): string | null {
  for (const x of COMPRESSED_FORMS) if (fs.existsSync(file + x)) return file + x;
  return null;
}

/** Whether a state file (as completeState names it) is a compressed form. */
export function isCompressed(file: string): boolean {
  return COMPRESSED_FORMS.some((x) => file.endsWith(x));
}

/** The complete state saved under `file`: the compressed one when it is done, else the raw one; null when neither exists. */
export function completeState(file: string): string | null {
  return compressedForm(file) ?? (fs.existsSync(file) ? file : null);
}

export function stateExists(file: string): boolean {
  return completeState(file) !== null;
}

/** Bytes the complete state takes (0 when there is none). */
export function stateBytes(file: string): number {
  const f = completeState(file);
  try {
    return f ? fs.statSync(f).size : 0;
  } catch {
    return 0;
  }
}

/** Removes every form of the state (raw, compressed, half-compressed). */
export function removeState(file: string): void {
  for (const f of allForms(file)) fs.rmSync(f, { force: true });
}

/**
 * Hard-links the complete state `src` to `dest` (`dest` + the same suffix when it is compressed), copying
 * when a link is impossible. Returns the file made, or null when `src` has no complete state.
 */
export function linkState(src: string, dest: string, fsync: (file: string) => void): string | null {
  const from = completeState(src);
  if (!from) return null;
  const to = dest + from.slice(src.length);
  fs.mkdirSync(path.dirname(to), { recursive: true, mode: 0o700 });
  removeState(dest);
  try {
    fs.linkSync(from, to);
  } catch {
    fs.copyFileSync(from, to);
    fsync(to);
  }
  return to;
}

/**
 * What a daemon killed mid-compression leaves, put right: partial files removed; where both forms
 * exist the compressed one is complete (it is renamed only once durable), so the raw one goes.
 * Returns the states still raw (to compress again).
 */
export function settleStates(files: string[]): string[] {
  const raw: string[] = [];
  for (const file of files) {
    for (const x of COMPRESSED_FORMS) fs.rmSync(`${file}${x}.partial`, { force: true });
    const hasRaw = fs.existsSync(file);
    if (hasRaw && compressedForm(file)) fs.rmSync(file, { force: true });
    else if (hasRaw) raw.push(file);
  }
  return raw;
}

/** Whether `name` (a file name in a checkpoints dir) is a form of the state `base` ("v3.state"). */
export function isFormOf(name: string, base: string): boolean {
  return name === base || COMPRESSED_FORMS.some((x) => name === base + x);
}
