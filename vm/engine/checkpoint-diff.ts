/**
 * `checkpoint diff`: what changed between two checkpoints of a sprite, or a checkpoint and now —
 * computed on the host from the disk snapshots themselves (the driver's `DiskReader`, the ext4
 * reader and tree diff in vm/checkpoints/), never by running anything in the guest: it works on a
 * sleeping or stopped sprite too, costs no guest CPU, and the guest cannot make it lie about which
 * blocks changed (it can only choose what its files contain). The driver's `changedBytes` answers
 * "nothing changed" without reading a single inode.
 *
 * "now" of a running sprite: its caches flushed (best effort), then a temporary disk snapshot taken
 * in a pause of a few milliseconds — a consistent, unchanging view — and deleted afterwards (a
 * daemon killed before that finds and removes it: TEMP_SNAPSHOT_PREFIX). Of a sleeping or stopped
 * sprite: its disk as it is.
 */
import crypto from 'node:crypto';
import { checkpointOrThrow, TEMP_SNAPSHOT_PREFIX } from '../checkpoints/checkpoint-ops.ts';
import { entryView, type DiffReport } from '../checkpoints/diff-report.ts';
import { Ext4Volume } from '../checkpoints/ext4-volume.ts';
import { diffText, TEXT_DIFF_LIMITS } from '../checkpoints/text-diff.ts';
import { countChanges, diffTrees, lookupPath, PathScope } from '../checkpoints/tree-diff.ts';
import type { DiskReader } from '../driver/driver.ts';
import { SpritelyError } from '../errors.ts';
import { spritePaths } from '../paths.ts';
import type { EngineContext } from './context.ts';
import { syncGuest } from './guest-setup.ts';

export interface DiffRequest {
  from: string;
  /** A checkpoint id, or "now" (the default). */
  to?: string;
  /** Only these paths and what is below them. */
  paths?: string[];
  /** Line diffs of changed text files. */
  patch?: boolean;
  maxEntries?: number;
}

export const DIFF_LIMITS = { maxEntries: 100_000, defaultEntries: 10_000, maxPatches: 500, patchBytes: 16 * 2 ** 20 };

export class CheckpointDiff {
  constructor(private readonly ctx: EngineContext) {}

  async diff(name: string, req: DiffRequest): Promise<DiffReport> {
    const { registry, locks, layout } = this.ctx;
    registry.must(name);
    const p = spritePaths(layout, name);
    const to = req.to ?? 'now';
    checkpointOrThrow(name, p.dir, req.from);
    if (to !== 'now') checkpointOrThrow(name, p.dir, to);
    return locks.run(name, 'comparing checkpoints', () => this.diffLocked(name, { ...req, to }));
  }

  private async diffLocked(name: string, req: DiffRequest & { to: string }): Promise<DiffReport> {
    const { driver, live, log } = this.ctx;
    const t0 = Date.now();
    const p = spritePaths(this.ctx.layout, name);
    checkpointOrThrow(name, p.dir, req.from);
    const timings: DiffReport['timings'] = { totalMs: 0 };
    const machine = live.get(name)?.machine ?? null;
    let temp: string | null = null;
    const readers: DiskReader[] = [];
    try {
      let snapB: string | null = req.to === 'now' ? null : req.to;
      if (req.to === 'now' && machine) {
        const t = Date.now();
        await syncGuest(live.guest(name, 3000));
        temp = `${TEMP_SNAPSHOT_PREFIX}${crypto.randomBytes(4).toString('hex')}`;
        await machine.pause();
        try {
          await machine.snapshotDisk(temp);
        } finally {
          await machine.resume().catch(() => {});
        }
        snapB = temp;
        timings.snapshotMs = Date.now() - t;
      }
      const report: DiffReport = { name, from: req.from, to: req.to, entries: [], counts: { added: 0, removed: 0, modified: 0 }, truncated: false, changedBytes: null, problems: [], timings };
      let t = Date.now();
      report.changedBytes = await driver.disks.changedBytes(p.disk, req.from, snapB).catch(() => null);
      timings.compareMs = Date.now() - t;
      if (report.changedBytes === 0) return finish(report, t0);
      t = Date.now();
      readers.push(await driver.disks.openReader(p.disk, req.from), await driver.disks.openReader(p.disk, snapB));
      let a: Ext4Volume, b: Ext4Volume;
      try {
        a = Ext4Volume.open(readers[0]);
        b = Ext4Volume.open(readers[1]);
      } catch (err) {
        throw new SpritelyError('failed_precondition', `Could not read the filesystem of "${name}" (${(err as Error).message}); only an ext4 filesystem on the whole disk can be compared.`);
      }
      const maxEntries = Math.min(req.maxEntries ?? DIFF_LIMITS.defaultEntries, DIFF_LIMITS.maxEntries);
      const r = await diffTrees(a, b, { scope: new PathScope(req.paths ?? []), limits: { maxChanges: maxEntries } });
      timings.walkMs = Date.now() - t;
      report.entries = r.changes.map(entryView);
      report.counts = countChanges(r.changes);
      report.truncated = r.truncated;
      report.problems = r.problems;
      if (req.patch) {
        t = Date.now();
        let budget = DIFF_LIMITS.patchBytes;
        let n = 0;
        r.changes.forEach((c, i) => {
          const isFile = (c.before?.type ?? c.after?.type) === 'file' && (c.before?.type ?? 'file') === 'file' && (c.after?.type ?? 'file') === 'file';
          if (!isFile || (c.change === 'modified' && !c.fields.includes('content')) || n >= DIFF_LIMITS.maxPatches || budget <= 0) return;
          const read = (v: Ext4Volume, side: unknown) => {
            if (!side) return null;
            const inode = lookupPath(v, c.path);
            return inode && inode.type === 'file' ? v.readData(inode, TEXT_DIFF_LIMITS.maxBytes + 1) : null;
          };
          try {
            const before = read(a, c.before);
            const after = read(b, c.after);
            budget -= (before?.length ?? 0) + (after?.length ?? 0);
            report.entries[i].patch = diffText(before, after);
            n++;
          } catch (err) {
            if (report.problems.length < 20) report.problems.push(`${report.entries[i].path}: ${(err as Error).message}`);
          }
        });
        timings.patchMs = Date.now() - t;
      }
      return finish(report, t0);
    } finally {
      for (const r of readers) r.close();
      if (temp && machine) await machine.deleteDiskSnapshot(temp).catch((err: Error) => log(`sprite ${name}: could not delete the diff's temporary snapshot ${temp}: ${err.message}`));
    }
  }
}

function finish(r: DiffReport, t0: number): DiffReport {
  r.timings.totalMs = Date.now() - t0;
  return r;
}
