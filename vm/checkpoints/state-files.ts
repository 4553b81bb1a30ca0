/**
 * A saved RAM state as files: written raw (`vN.state`, the fast path while the guest is paused),
 * then compressed in the background (`vN.state.zst.partial` → fsync → renamed `vN.state.zst` → the
 * raw one removed). At every instant one complete state exists: the `.zst` only appears once whole
 * and durable, and the raw one goes only after that. So a daemon killed at any point loses
 * nothing; recovery (`settleStates`) keeps the `.zst` when both exist and drops partial files.
 * Everything that reads, links, sizes or removes a state goes through here, so no caller has to
 * know which form it is in.
 */
import fs from 'node:fs';
import path from 'node:path';

export const COMPRESSED = '.zst';

export function compressedOf(file: string): string {
  return file + COMPRESSED;
}

export function partialOf(file: string): string {
  return file + COMPRESSED + '.partial';
}

/** The complete state saved under `file`: the compressed one when it is done, else the raw one; null when neither exists. */
export function completeState(file: string): string | null {
  if (fs.existsSync(compressedOf(file))) return compressedOf(file);
  return fs.existsSync(file) ? file : null;
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
  for (const f of [file, compressedOf(file), partialOf(file)]) fs.rmSync(f, { force: true });
}

/**
 * Hard-links the complete state `src` to `dest` (`dest` + `.zst` when it is compressed), copying
 * when a link is impossible. Returns the file made, or null when `src` has no complete state.
 */
export function linkState(src: string, dest: string, fsync: (file: string) => void): string | null {
  const from = completeState(src);
  if (!from) return null;
  const to = from === src ? dest : compressedOf(dest);
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
    fs.rmSync(partialOf(file), { force: true });
    const hasRaw = fs.existsSync(file);
    if (hasRaw && fs.existsSync(compressedOf(file))) fs.rmSync(file, { force: true });
    else if (hasRaw) raw.push(file);
  }
  return raw;
}

/** Whether `name` (a file name in a checkpoints dir) is a form of the state `base` ("v3.state"). */
export function isFormOf(name: string, base: string): boolean {
  return name === base || name === base + COMPRESSED;
}
