/**
 * What `spritely cp` accepts from a sprite's tar stream, entry by entry, as pure decisions. Root in
 * the sprite writes that stream, so every header is hostile: this module decides whether an entry
 * may exist at all and where (a path relative to the one top-level entry the host asked for), and
 * never lets the archive choose a path outside it. tar-extract.ts does the I/O.
 *
 * Accepted: regular files, directories, symlinks whose target stays inside the copied tree, and
 * hard links to a file made earlier from the same archive (tar writes those for files with several
 * names; linking to a file the extractor itself just created reaches nothing else). Everything
 * else is refused with a reason that completes "the entry NAME …".
 */
import { quoteName } from '../safe-text.ts';

/** What the extractor has made so far, by relative path ("" is the top-level entry). */
export type Made = Map<string, 'file' | 'dir' | 'symlink'>;

/** The parts of a tar header the decisions read (tar-stream's Header has these). */
export interface EntryHeader {
  name: string;
  type: string | null;
  size: number;
  linkname?: string | null;
}

export interface EntryContext {
  /** The one top-level name the host asked for: the source's base name, or "." for "SRC/.". */
  top: string;
  /** What the source is in the sprite: a directory tree or one file. */
  topKind: 'file' | 'dir';
  made: Made;
  maxFileBytes: number;
}

export type EntryDecision =
  | { kind: 'file' | 'dir' | 'symlink'; rel: string[] }
  | { kind: 'hardlink'; rel: string[]; target: string[] }
  | { refused: string };

/** Longest name accepted (Linux's PATH_MAX); a single component longer than 255 bytes fails at the file system. */
export const MAX_NAME_BYTES = 4096;

/** An archive name → its components below the top-level entry, or why it is refused. */
export function entryPath(name: string, top: string, isDir: boolean): { rel: string[] } | { refused: string } {
  if (name === '') return { refused: 'has an empty name' };
  if (name.includes('\0')) return { refused: 'has a NUL byte in its name' };
  if (Buffer.byteLength(name) > MAX_NAME_BYTES) return { refused: `has a name longer than ${MAX_NAME_BYTES} bytes` };
  if (name.startsWith('/')) return { refused: 'is an absolute path' };
  const parts = (isDir && name.endsWith('/') ? name.slice(0, -1) : name).split('/');
  if (parts.includes('..')) return { refused: 'has a ".." component' };
  if (parts[0] !== top) return { refused: `is not under ${quoteName(top)}, the only top-level entry asked for` };
  const rel = parts.slice(1);
  if (rel.some((p) => p === '' || p === '.')) return { refused: 'has an empty or "." component in its name' };
  return { rel };
}

const TYPE_NAMES: Record<string, string> = {
  'character-device': 'a character device',
  'block-device': 'a block device',
  fifo: 'a FIFO',
  'contiguous-file': 'a contiguous file (a tar type spritely cp does not copy)',
};

/**
 * Why a symlink at `rel` with this target would point outside the copied tree, or null when it
 * stays inside. Resolved lexically from the link's own directory; a ".." is only accepted before
 * the first name, because after a name that is itself a symlink it would climb from wherever that
 * symlink points, not from where the text says. A top-level symlink points outside by definition.
 */
export function symlinkRefusal(rel: string[], target: string): string | null {
  const shown = quoteName(target);
  if (target === '') return 'is a symlink with an empty target';
  if (target.includes('\0')) return 'is a symlink with a NUL byte in its target';
  if (Buffer.byteLength(target) > MAX_NAME_BYTES) return `is a symlink with a target longer than ${MAX_NAME_BYTES} bytes`;
  if (rel.length === 0) return `is a symlink (to ${shown}), and the copied path itself must be a file or a directory`;
  if (target.startsWith('/')) return `is a symlink to the absolute path ${shown} (on this computer that is outside what is copied)`;
  let depth = rel.length - 1;
  let named = false;
  for (const part of target.split('/')) {
    if (part === '' || part === '.') continue;
    if (part !== '..') {
      named = true;
      continue;
    }
    if (named) return `is a symlink to ${shown}, which has a ".." after a name`;
    depth -= 1;
    if (depth < 0) return `is a symlink to ${shown}, which points outside what is copied`;
  }
  return null;
}

/** Whether this entry may be made, and where; `made` is not changed. */
export function decideEntry(h: EntryHeader, ctx: EntryContext): EntryDecision {
  const type = h.type ?? 'unknown';
  if (type in TYPE_NAMES) return { refused: `is ${TYPE_NAMES[type]}` };
  if (!['file', 'directory', 'symlink', 'link'].includes(type)) return { refused: 'is an entry of a type spritely cp does not copy' };
  const p = entryPath(h.name, ctx.top, type === 'directory');
  if ('refused' in p) return p;
  const { rel } = p;
  const key = rel.join('/');
  if (ctx.made.has(key)) return { refused: 'appears twice in the archive' };
  if (rel.length === 0) {
    if (ctx.topKind === 'dir' && type !== 'directory') return { refused: 'is not a directory, but the source is one' };
    if (ctx.topKind === 'file' && type === 'directory') return { refused: 'is a directory, but the source is a file' };
  } else {
    if (ctx.topKind === 'file') return { refused: 'is an extra entry (the source is one file)' };
    const parent = rel.slice(0, -1).join('/');
    const parentKind = ctx.made.get(parent);
    if (parentKind === 'symlink') return { refused: `is under ${quoteName(`${ctx.top}/${parent}`)}, a symlink made earlier from the archive` };
    if (parentKind === 'file') return { refused: `is under ${quoteName(`${ctx.top}/${parent}`)}, which is a file` };
    if (parentKind !== 'dir') return { refused: 'comes before the directory it is in' };
  }
  if (type === 'directory') return { kind: 'dir', rel };
  if (type === 'file') {
    if (!(h.size >= 0)) return { refused: 'has an invalid size' };
    if (h.size > ctx.maxFileBytes) return { refused: `is ${h.size} bytes, over the limit of ${ctx.maxFileBytes} bytes for one file (raise it with --max-file-size)` };
    return { kind: 'file', rel };
  }
  if (h.size !== 0) return { refused: `is a ${type === 'symlink' ? 'symlink' : 'hard link'} that carries data` };
  const linkname = h.linkname ?? '';
  if (type === 'symlink') {
    const refused = symlinkRefusal(rel, linkname);
    return refused ? { refused } : { kind: 'symlink', rel };
  }
  const target = entryPath(linkname, ctx.top, false);
  if ('refused' in target || ctx.made.get(target.rel.join('/')) !== 'file') {
    return { refused: `is a hard link to ${quoteName(linkname)}, which is not a file made earlier from the archive` };
  }
  return { kind: 'hardlink', rel, target: target.rel };
}

/** Permission bits for a file or directory made from the archive: no setuid/setgid/sticky, the user's umask applied. */
export function entryMode(mode: number, umask: number): number {
  return (Number.isInteger(mode) ? mode : 0o644) & 0o777 & ~umask;
}
