/**
 * `spritely cp SRC DST` as decisions: which side is a sprite, what a path's spelling asks for, and
 * `docker cp`'s rules turned into a plan for the two tars. No I/O here: cp-to-sprite.ts and
 * cp-from-sprite.ts run the plans, agent-cp.ts is the command.
 */
import path from 'node:path';
import { SpritelyError } from '../errors.ts';
import { spriteNameProblem } from '../names.ts';
import { safeText } from '../safe-text.ts';

/** Where relative paths in a sprite start: exec runs as root in root's home. */
export const GUEST_HOME = '/root';

/** One side of a copy as written on the command line: `NAME:PATH` (a sprite) or a local path. */
export interface CpArg {
  sprite: string | null;
  path: string;
}

export function parseCpArg(arg: string): CpArg {
  if (arg === '') throw new SpritelyError('invalid_argument', 'An empty path is not a path.');
  const colon = arg.indexOf(':');
  const slash = arg.indexOf('/');
  // Like docker cp: absolute and ./relative paths are local, and so is anything whose first ":"
  // comes after a "/" (write ./a:b for a local file named "a:b").
  if (arg.startsWith('/') || arg.startsWith('.') || colon < 0 || (slash >= 0 && slash < colon)) return { sprite: null, path: arg };
  const name = arg.slice(0, colon);
  const problem = spriteNameProblem(name);
  if (problem) throw new SpritelyError('invalid_argument', `"${arg}" does not start with a sprite name (${problem}). A local path with a ":" in it is written ./${arg}.`);
  return { sprite: name, path: arg.slice(colon + 1) };
}

/** A path's meaning: its absolute form and what its spelling asks for (trailing "/" or "/."). */
export interface PathSpec {
  /** As the user wrote it (with `NAME:` for a sprite), for messages. */
  shown: string;
  /** `NAME:` for a path in a sprite, else empty. */
  prefix: string;
  abs: string;
  dir: string;
  base: string;
  /** Ends with "/" or "/." (or is "."): the path must be a directory. */
  trailingSlash: boolean;
  /** Ends with "/." (or is "."): for a source, its contents rather than itself. */
  contentsOnly: boolean;
}

export function pathSpec(p: string, cwd: string, shownPrefix = ''): PathSpec {
  const contentsOnly = p === '.' || p.endsWith('/.') || p === '/';
  const trailingSlash = contentsOnly || p.endsWith('/');
  const abs = path.posix.resolve(cwd, p);
  return { shown: `${shownPrefix}${p}`, prefix: shownPrefix, abs, dir: path.posix.dirname(abs), base: abs === '/' ? '' : path.posix.basename(abs), trailingSlash, contentsOnly: contentsOnly || abs === '/' };
}

/** A path in a sprite: empty means root's home, "~" and "~/…" are root's home too. */
export function guestPathSpec(sprite: string, p: string): PathSpec {
  const expanded = p === '' || p === '~' ? GUEST_HOME : p.startsWith('~/') ? GUEST_HOME + p.slice(1) : p;
  const spec = pathSpec(expanded, GUEST_HOME, `${sprite}:`);
  return { ...spec, shown: `${sprite}:${p}` };
}

export type PathKind = 'dir' | 'file' | 'none';

export interface CopyPlan {
  /** The source side's tar runs here (`-C`) and archives `member` (`.` = the directory's contents). */
  archiveDir: string;
  member: string;
  /** The destination side's tar extracts here. */
  extractDir: string;
  /** The archive's top-level name becomes this (null: keep it). */
  rename: { from: string; to: string } | null;
}

/**
 * docker cp's rules. A file goes into an existing directory under its own name, onto an existing
 * file, or to a new name whose parent exists. A directory goes into an existing directory (its
 * contents only if the source ends with "/."), or becomes a new directory whose parent exists.
 */
export function planCopy(src: PathSpec, srcKind: PathKind, dst: PathSpec, dstKind: PathKind, dstParentKind: PathKind): CopyPlan {
  if (srcKind === 'none') throw new SpritelyError('not_found', `The source ${src.shown} does not exist.`);
  if (srcKind === 'file' && src.trailingSlash) throw new SpritelyError('invalid_argument', `The source ${src.shown} is not a directory.`);
  const parentMustExist = () => {
    if (dstParentKind !== 'dir') throw new SpritelyError('not_found', `The destination's parent directory ${dst.prefix}${dst.dir} does not exist${dstParentKind === 'file' ? ' (it is a file)' : ''}; create it first.`);
  };
  const renamed = (): CopyPlan => ({
    archiveDir: src.dir,
    member: src.base,
    extractDir: dst.dir,
    rename: src.base === dst.base ? null : { from: src.base, to: dst.base },
  });
  if (srcKind === 'file') {
    if (dstKind === 'dir') return { archiveDir: src.dir, member: src.base, extractDir: dst.abs, rename: null };
    if (dstKind === 'file') {
      if (dst.trailingSlash) throw new SpritelyError('invalid_argument', `The destination ${dst.shown} is not a directory.`);
      return renamed();
    }
    if (dst.trailingSlash) throw new SpritelyError('not_found', `The destination directory ${dst.shown} does not exist.`);
    parentMustExist();
    return renamed();
  }
  if (dstKind === 'file') throw new SpritelyError('invalid_argument', `Cannot copy the directory ${src.shown} onto the file ${dst.shown}.`);
  if (dstKind === 'dir') {
    if (src.contentsOnly) return { archiveDir: src.abs, member: '.', extractDir: dst.abs, rename: null };
    return { archiveDir: src.dir, member: src.base, extractDir: dst.abs, rename: null };
  }
  parentMustExist();
  if (src.contentsOnly) {
    // "/." or "/" to a new directory: extract into the new directory, made by the archive's "."
    // entry under the new name.
    return { archiveDir: src.abs, member: '.', extractDir: dst.dir, rename: { from: '.', to: dst.base } };
  }
  return renamed();
}

/** A GNU tar `--transform` that renames the top-level entry (and hard links to it; never symlink targets). */
export function transformArg(from: string, to: string): string {
  if (from.includes('/') || to.includes('/') || /[\n\r]/.test(from + to)) throw new SpritelyError('invalid_argument', 'A file name to copy cannot contain "/" or a line break.');
  // The delimiter: a character in neither name (the pattern itself uses "/", "$", "|" and "\\").
  const delim = [...',#%!@:;~=+'].find((c) => !from.includes(c) && !to.includes(c));
  if (!delim) throw new SpritelyError('invalid_argument', `Cannot rename ${JSON.stringify(from)} to ${JSON.stringify(to)}: copy it under its own name instead.`);
  const bre = from.replace(/[\\.*[\]^$]/g, (c) => `\\${c}`);
  const repl = to.replace(/[\\&]/g, (c) => `\\${c}`);
  // "." (a directory's contents) is archived as "./", "./a", …: rename the "." component only.
  return `--transform=s${delim}^${bre}\\($\\|/\\)${delim}${repl}\\1${delim}rhS`;
}

/**
 * The guest's tar reads and writes records of BLOCKING_FACTOR × 512 bytes (128 KiB, with `-B` to
 * put together the short reads of a pipe): under emulation each pipe read or write is expensive,
 * and GNU tar's default 10 KiB records made the unpacking half as fast as the stream (and packing
 * 20 MiB into a pipe took 0.49 s of the guest's CPU instead of 0.32 s). When unpacking it reports
 * its progress every ACK_RECORDS records (1 MiB).
 */
export const BLOCKING_FACTOR = 256;
export const RECORD_BYTES = BLOCKING_FACTOR * 512;
export const ACK_RECORDS = 8;
export const ACK_MARK = '@spritely-ack';
/** Bytes sent to the guest beyond what its tar has read. */
export const CREDIT_WINDOW = 8 * 1024 * 1024;

/** The guest's tar that unpacks what this computer sends (files owned by root, modes and mtimes kept). */
export function guestExtractArgv(plan: CopyPlan): string[] {
  return [
    'tar', '-x', '-p', '--no-same-owner', '--warning=no-unknown-keyword', '-f', '-', '-b', String(BLOCKING_FACTOR), '-B',
    `--checkpoint=${ACK_RECORDS}`, `--checkpoint-action=echo=${ACK_MARK} %u`,
    '-C', plan.extractDir, ...(plan.rename ? [transformArg(plan.rename.from, plan.rename.to)] : []),
  ];
}

/**
 * The guest's tar that packs what is copied to this computer: `member` under its own name (the
 * host renames it; nothing the guest sends chooses a path here, see tar-extract.ts).
 */
export function guestCreateArgv(plan: CopyPlan): string[] {
  return ['tar', '-c', '-f', '-', '-b', String(BLOCKING_FACTOR), '-C', plan.archiveDir, '--', plan.member];
}

/**
 * Sprite → here: the path on this computer that the copy becomes (or, when it is an existing
 * directory, merges into). `typed`: it is the destination as the user wrote it.
 */
export function hostTarget(plan: CopyPlan, dst: PathSpec): { path: string; typed: boolean } {
  const p = plan.rename ? path.posix.join(plan.extractDir, plan.rename.to) : plan.member === '.' ? plan.extractDir : path.posix.join(plan.extractDir, plan.member);
  return { path: p, typed: p === dst.abs };
}

/** This computer's tar (GNU or bsdtar): only flags both understand. */
export function hostCreateArgv(plan: CopyPlan): string[] {
  return ['-c', '-f', '-', '-C', plan.archiveDir, '--', plan.member];
}

/** Reads the guest's tar progress lines out of its stderr; everything else is kept as the error text. */
export class AckParser {
  private partial = '';
  private readonly other: string[] = [];
  constructor(private readonly onAck: (recordsRead: number) => void) {}

  push(chunk: Buffer | string): void {
    const lines = (this.partial + chunk.toString()).split('\n');
    this.partial = lines.pop() ?? '';
    for (const line of lines) this.line(line);
  }

  end(): void {
    if (this.partial) this.line(this.partial);
    this.partial = '';
  }

  text(): string {
    return this.other.join('\n').trim();
  }

  private line(line: string): void {
    const at = line.indexOf(`${ACK_MARK} `);
    if (at >= 0) {
      const n = Number(line.slice(at + ACK_MARK.length + 1).trim());
      if (Number.isInteger(n)) return this.onAck(n);
    }
    if (line.trim()) this.other.push(line);
  }
}

/** A tar that failed, here or in the sprite; its stderr and exit signal name (from a guest: chosen by it) are made inert. */
export function tarFailed(where: string, detail: string, code: number | string | null): SpritelyError {
  return new SpritelyError('internal', `tar ${where} failed (${safeText(String(code), { maxChars: 40 })}): ${safeText(detail, { multiline: true, maxChars: 2000 }) || 'no message'}`);
}

export interface CopyResult {
  bytes: number;
  ms: number;
}
