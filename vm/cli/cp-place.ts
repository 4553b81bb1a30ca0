/**
 * Sprite → here, the last step: the tree tar-extract.ts made in a fresh directory goes to its
 * destination by `docker cp`'s rules, with renames, touching nothing but the destination path.
 * A new path or an existing file (or symlink) is one rename; a directory that exists already is
 * merged into entry by entry — new names are renamed in, files replace files, directories merge —
 * and an existing symlink is never followed (only the destination the user typed is). Every
 * conflict is found before anything moves, so a refused copy leaves the destination as it was.
 * Directory modes and mtimes are applied last (a directory without write permission cannot be
 * moved); directories that existed keep theirs.
 */
import fs from 'node:fs';
import path from 'node:path';
import { SpritelyError } from '../errors.ts';
import { quoteName, safeText } from '../safe-text.ts';
import type { ExtractedTree } from './tar-extract.ts';

export interface Target {
  /** The destination path, resolved when it is a symlink the user named to a directory. */
  path: string;
  /** It exists as a directory: a directory tree merges into it. */
  merge: boolean;
  /** Where the fresh directory is made: beside the destination, on its file system. */
  tempParent: string;
}

interface Move {
  from: string;
  to: string;
}

export interface Placement {
  target: string;
  moves: Move[];
  /** Directories (relative to the top) that existed and were merged into: their modes are left alone. */
  merged: Set<string>;
}

function lstatOrNull(p: string): fs.Stats | null {
  try {
    return fs.lstatSync(p);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

function what(st: fs.Stats): string {
  return st.isDirectory() ? 'directory' : st.isSymbolicLink() ? 'symlink' : st.isFile() ? 'file' : 'special file';
}

function conflict(message: string): SpritelyError {
  return new SpritelyError('failed_precondition', `${message} Nothing was copied.`);
}

/**
 * What the destination is, before any byte is fetched. `followTarget`: the user typed this path, so
 * a symlink there to a directory is followed (like docker cp); other symlinks are replaced, never
 * written through.
 */
export function checkTarget(kind: 'file' | 'dir', target: string, followTarget: boolean): Target {
  let st = lstatOrNull(target);
  if (st?.isSymbolicLink() && followTarget && fs.statSync(target, { throwIfNoEntry: false })?.isDirectory()) {
    target = fs.realpathSync(target);
    st = fs.lstatSync(target);
  }
  if (st?.isDirectory()) {
    if (kind === 'file') throw conflict(`Cannot replace the directory ${target} with a file.`);
    // Renames need one file system: the fresh directory goes beside the directory, or into it
    // when it is a mount point.
    const parent = path.dirname(target);
    return { path: target, merge: true, tempParent: fs.statSync(parent).dev === st.dev ? parent : target };
  }
  if (st && kind === 'dir') throw conflict(`Cannot copy a directory onto the ${what(st)} ${target}.`);
  return { path: target, merge: false, tempParent: path.dirname(target) };
}

/** Every rename the placement needs, after checking none of them can conflict. Reads only. */
export function planPlacement(tree: ExtractedTree, target: Target): Placement {
  const again = checkTarget(tree.kind, target.path, false);
  const placement: Placement = { target: again.path, moves: [], merged: new Set() };
  if (!again.merge) placement.moves.push({ from: tree.path, to: again.path });
  else mergeInto(tree.path, again.path, [], placement, fs.statSync(tree.path).dev);
  return placement;
}

function mergeInto(from: string, to: string, rel: string[], placement: Placement, dev: number): void {
  placement.merged.add(rel.join('/'));
  const st = fs.statSync(to);
  if (st.dev !== dev) throw conflict(`${to} is on another file system than the directory it is in; copy into ${to} itself.`);
  try {
    fs.accessSync(to, fs.constants.W_OK | fs.constants.X_OK);
  } catch {
    throw conflict(`Cannot write into the directory ${to} (permission denied).`);
  }
  for (const name of fs.readdirSync(from).sort()) {
    const source = fs.lstatSync(path.join(from, name));
    const dest = path.join(to, name);
    const existing = lstatOrNull(dest);
    if (!existing || (!existing.isDirectory() && !source.isDirectory())) placement.moves.push({ from: path.join(from, name), to: dest });
    else if (existing.isDirectory() && source.isDirectory()) mergeInto(path.join(from, name), dest, [...rel, name], placement, dev);
    else throw conflict(`Cannot replace the ${what(existing)} ${quoteName(dest)} with a ${what(source)}.`);
  }
}

/** Moves the tree into place, then gives new directories their modes and mtimes. */
export function applyPlacement(tree: ExtractedTree, placement: Placement, umask: number): void {
  let done = 0;
  try {
    for (const m of placement.moves) {
      fs.renameSync(m.from, m.to);
      done += 1;
    }
  } catch (err) {
    throw new SpritelyError('internal', `Could not move the copy into place (${done} of ${placement.moves.length} entries moved): ${safeText((err as Error).message, { maxChars: 500 })}`);
  }
  for (const d of [...tree.dirs].reverse()) {
    if (placement.merged.has(d.rel.join('/'))) continue;
    const p = path.join(placement.target, ...d.rel);
    fs.chmodSync(p, d.mode ?? 0o777 & ~umask);
    fs.utimesSync(p, d.mtime, d.mtime);
  }
}
