/**
 * What changed between two filesystems (two checkpoints, or one and now): every path added,
 * removed or modified, with what about it changed (type, content, size, mode, owner, symlink
 * target). It walks both trees at once from the root and reads as little as it can: where both
 * sides store an inode in the same place (a cluster two snapshots share, `Ext4Volume.inodeWhere`)
 * the inode is the same and is not even decoded; a directory both sides store in the same place is
 * parsed once; file contents are compared by where their blocks live first and byte by byte only
 * when that cannot tell. So the cost follows the directory skeleton plus what changed, not the
 * size of the disk or of the files.
 *
 * Both trees come from the guest's disk: names are arbitrary bytes (kept as bytes here; made safe
 * only when shown), and every walk is bounded (changes listed, inodes visited, depth, bytes
 * compared). Directory cycles a hostile filesystem may contain are cut. A damaged part is reported
 * as a problem and skipped; it never stops the rest.
 */
import { Ext4Error, type Ext4Volume, type FileType, type Inode } from './ext4-volume.ts';

export interface FileMeta {
  type: FileType;
  size: number;
  /** Permission bits (07777). */
  perm: number;
  uid: number;
  gid: number;
  mtimeNs: bigint;
  /** A symlink's target (bytes, as stored). */
  target: Buffer | null;
}

export type ChangeKind = 'added' | 'removed' | 'modified';
export type ChangeField = 'type' | 'content' | 'size' | 'mode' | 'owner' | 'target';

export interface TreeChange {
  /** Absolute path as bytes ("/etc/hostname"). */
  path: Buffer;
  change: ChangeKind;
  before: FileMeta | null;
  after: FileMeta | null;
  /** For `modified`: what differs. */
  fields: ChangeField[];
}

export interface TreeDiffLimits {
  /** Changes listed before the result is cut (`truncated`). */
  maxChanges: number;
  /** Inodes and directories looked at before the walk gives up (`truncated`). */
  maxVisited: number;
  maxDepth: number;
  /** File bytes compared byte by byte, in all; beyond it a file whose inode changed counts as changed. */
  contentBudget: number;
}

export const DEFAULT_TREE_LIMITS: TreeDiffLimits = { maxChanges: 20_000, maxVisited: 5_000_000, maxDepth: 256, contentBudget: 256 * 2 ** 20 };

export interface TreeDiffResult {
  changes: TreeChange[];
  truncated: boolean;
  /** Parts that could not be read (damaged or hostile), at most 20. */
  problems: string[];
  visited: number;
}

/** Which paths a diff is about: everything, or the given paths and what is below them. */
export class PathScope {
  private readonly roots: Buffer[];

  constructor(paths: (string | Buffer)[] = []) {
    this.roots = paths.map((p) => normalizePath(typeof p === 'string' ? Buffer.from(p) : p));
  }

  get all(): boolean {
    return this.roots.length === 0 || this.roots.some((r) => r.equals(ROOT));
  }

  /** `in`: listed; `descend`: above a scoped path (walked, not listed); `out`: skipped. */
  decide(path: Buffer): 'in' | 'descend' | 'out' {
    if (this.all) return 'in';
    let descend = false;
    for (const r of this.roots) {
      if (r.equals(path) || isBelow(path, r)) return 'in';
      if (path.equals(ROOT) || isBelow(r, path)) descend = true;
    }
    return descend ? 'descend' : 'out';
  }
}

const ROOT = Buffer.from('/');
const SLASH = 0x2f;

/** "/a//b/" → "/a/b"; relative paths are taken from the root. */
export function normalizePath(p: Buffer): Buffer {
  const parts: Buffer[] = [];
  let start = 0;
  for (let i = 0; i <= p.length; i++) {
    if (i === p.length || p[i] === SLASH) {
      const part = p.subarray(start, i);
      if (part.length && !(part.length === 1 && part[0] === 0x2e)) parts.push(part);
      start = i + 1;
    }
  }
  if (!parts.length) return ROOT;
  return Buffer.concat(parts.flatMap((x) => [ROOT, x]));
}

function isBelow(path: Buffer, dir: Buffer): boolean {
  if (dir.equals(ROOT)) return !path.equals(ROOT);
  return path.length > dir.length && path[dir.length] === SLASH && path.subarray(0, dir.length).equals(dir);
}

function join(dir: Buffer, name: Buffer): Buffer {
  return dir.equals(ROOT) ? Buffer.concat([ROOT, name]) : Buffer.concat([dir, ROOT, name]);
}

class Stop extends Error {}

export async function diffTrees(a: Ext4Volume, b: Ext4Volume, opts: { scope?: PathScope; limits?: Partial<TreeDiffLimits> } = {}): Promise<TreeDiffResult> {
  const limits = { ...DEFAULT_TREE_LIMITS, ...opts.limits };
  const scope = opts.scope ?? new PathScope();
  const out: TreeDiffResult = { changes: [], truncated: false, problems: [], visited: 0 };
  let budget = limits.contentBudget;
  const seenPairs = new Set<string>();

  const problem = (path: Buffer, err: unknown) => {
    if (err instanceof Stop) throw err;
    if (out.problems.length < 20) out.problems.push(`${path.toString('utf8')}: ${(err as Error).message}`);
  };
  const visit = async () => {
    if (++out.visited > limits.maxVisited) {
      out.truncated = true;
      throw new Stop();
    }
    if (out.visited % 2000 === 0) await new Promise((r) => setImmediate(r));
  };
  const emit = (c: TreeChange) => {
    if (scope.decide(c.path) !== 'in') return;
    if (out.changes.length >= limits.maxChanges) {
      out.truncated = true;
      throw new Stop();
    }
    out.changes.push(c);
  };

  const meta = (v: Ext4Volume, i: Inode): FileMeta => ({
    type: i.type,
    size: i.type === 'dir' ? 0 : i.size,
    perm: i.perm,
    uid: i.uid,
    gid: i.gid,
    mtimeNs: i.mtimeNs,
    target: i.type === 'symlink' ? v.readLink(i) : null,
  });

  const sameInode = (x: Inode, y: Inode) =>
    x.type === y.type && x.perm === y.perm && x.uid === y.uid && x.gid === y.gid && x.size === y.size && x.mtimeNs === y.mtimeNs && x.ctimeNs === y.ctimeNs && x.flags === y.flags && x.iBlock.equals(y.iBlock) && x.generation === y.generation;

  const sameContent = (x: Inode, y: Inode): boolean => {
    if (x.size !== y.size) return false;
    if (x.mtimeNs === y.mtimeNs && x.ctimeNs === y.ctimeNs && x.iBlock.equals(y.iBlock)) return true;
    const wx = a.dataWhere(x);
    const wy = b.dataWhere(y);
    if (wx && wy && wx.length === wy.length && wx.every((w, i) => w === wy[i])) return true;
    if (x.size > budget) return x.mtimeNs === y.mtimeNs; // cannot afford to look: trust the times
    budget -= x.size;
    return a.readData(x, x.size).equals(b.readData(y, y.size));
  };

  /** Lists a subtree that exists on one side only. */
  const oneSide = async (v: Ext4Volume, path: Buffer, inode: Inode, change: 'added' | 'removed', depth: number, seen: Set<number>) => {
    const s = scope.decide(path);
    if (s === 'out') return;
    await visit();
    const m = meta(v, inode);
    emit({ path, change, before: change === 'removed' ? m : null, after: change === 'added' ? m : null, fields: [] });
    if (inode.type !== 'dir' || depth >= limits.maxDepth || seen.has(inode.ino)) return;
    seen.add(inode.ino);
    await children(v, path, inode, change, depth, seen);
  };

  const pair = async (path: Buffer, ia: Inode, ib: Inode, depth: number) => {
    const s = scope.decide(path);
    if (s === 'out') return;
    await visit();
    if (ia.type !== ib.type) {
      emit({ path, change: 'modified', before: meta(a, ia), after: meta(b, ib), fields: ['type'] });
      if (ia.type === 'dir') await children(a, path, ia, 'removed', depth);
      if (ib.type === 'dir') await children(b, path, ib, 'added', depth);
      return;
    }
    if (!sameInode(ia, ib)) {
      const fields: TreeDiffResult['changes'][number]['fields'] = [];
      const ma = meta(a, ia);
      const mb = meta(b, ib);
      if (ma.perm !== mb.perm) fields.push('mode');
      if (ma.uid !== mb.uid || ma.gid !== mb.gid) fields.push('owner');
      if (ia.type === 'symlink' && !ma.target!.equals(mb.target!)) fields.push('target');
      if (ia.type === 'file') {
        if (ia.size !== ib.size) fields.push('content', 'size');
        else if (!sameContent(ia, ib)) fields.push('content');
      }
      if ((ia.type === 'char' || ia.type === 'block') && !ia.iBlock.subarray(0, 8).equals(ib.iBlock.subarray(0, 8))) fields.push('content');
      if (fields.length) emit({ path, change: 'modified', before: ma, after: mb, fields });
    }
    if (ia.type === 'dir' && depth < limits.maxDepth) await dirPair(path, ia, ib, depth);
  };

  /** Lists every entry of a directory that exists on one side only (`seen`: the directories on the way, hard-link loops). */
  const children = async (v: Ext4Volume, path: Buffer, dir: Inode, change: 'added' | 'removed', depth: number, seen = new Set<number>([dir.ino])) => {
    let entries;
    try {
      entries = v.readDir(dir);
    } catch (err) {
      return problem(path, err);
    }
    entries.sort((x, y) => Buffer.compare(x.name, y.name));
    for (const e of entries) {
      const p = join(path, e.name);
      try {
        await oneSide(v, p, v.inode(e.ino), change, depth + 1, seen);
      } catch (err) {
        problem(p, err);
      }
    }
  };

  const dirPair = async (path: Buffer, ia: Inode, ib: Inode, depth: number) => {
    const key = `${ia.ino}:${ib.ino}`;
    if (seenPairs.has(key)) return; // a directory reached twice (hostile hard links): once is enough
    seenPairs.add(key);
    let ea, eb;
    try {
      ea = a.readDir(ia);
      const wa = a.dirWhere(ia);
      eb = wa !== null && ia.ino === ib.ino && sameInode(ia, ib) && wa === b.dirWhere(ib) ? ea : b.readDir(ib);
    } catch (err) {
      return problem(path, err);
    }
    const byName = new Map<string, { a?: number; b?: number; name: Buffer }>();
    for (const e of ea) byName.set(e.name.toString('latin1'), { a: e.ino, name: e.name });
    for (const e of eb) {
      const k = e.name.toString('latin1');
      const had = byName.get(k);
      if (had) had.b = e.ino;
      else byName.set(k, { b: e.ino, name: e.name });
    }
    const names = [...byName.values()].sort((x, y) => Buffer.compare(x.name, y.name));
    for (const n of names) {
      const p = join(path, n.name);
      if (scope.decide(p) === 'out') continue;
      try {
        if (n.a !== undefined && n.b !== undefined) {
          if (n.a === n.b) {
            const wa = a.inodeWhere(n.a);
            if (wa !== null && wa === b.inodeWhere(n.b)) {
              // the very same stored inode: unchanged; only a directory can hide changes below it
              const ia2 = a.inode(n.a);
              if (ia2.type === 'dir') await pair(p, ia2, b.inode(n.b), depth + 1);
              else await visit();
              continue;
            }
          }
          await pair(p, a.inode(n.a), b.inode(n.b), depth + 1);
        } else if (n.a !== undefined) await oneSide(a, p, a.inode(n.a), 'removed', depth + 1, new Set([ia.ino]));
        else await oneSide(b, p, b.inode(n.b!), 'added', depth + 1, new Set([ib.ino]));
      } catch (err) {
        problem(p, err);
      }
    }
  };

  try {
    const ra = a.inode(2);
    const rb = b.inode(2);
    if (ra.type !== 'dir' || rb.type !== 'dir') throw new Ext4Error('the root is not a directory');
    await pair(ROOT, ra, rb, 0);
  } catch (err) {
    if (!(err instanceof Stop)) throw err;
  }
  return out;
}

/** Counts by kind. */
export function countChanges(changes: TreeChange[]): { added: number; removed: number; modified: number } {
  const c = { added: 0, removed: 0, modified: 0 };
  for (const x of changes) c[x.change]++;
  return c;
}

/** The inode at `path` (no symlink followed), or null when there is none. */
export function lookupPath(v: Ext4Volume, path: Buffer): Inode | null {
  let inode = v.inode(2);
  const parts = normalizePath(path).toString('latin1').split('/').filter(Boolean);
  if (parts.length > 256) return null;
  for (const part of parts) {
    if (inode.type !== 'dir') return null;
    const e = v.readDir(inode).find((x) => x.name.toString('latin1') === part);
    if (!e) return null;
    inode = v.inode(e.ino);
  }
  return inode;
}
