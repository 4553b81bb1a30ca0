/**
 * Checkpoint operations on one sprite's files, through the driver: take one (disk snapshot + RAM
 * state at one paused instant when awake; the sleep state when asleep; the disk alone when
 * stopped), delete one, copy one into a new disk (fork), and reconcile the tree with the disk after
 * a daemon died half-way. The engine decides when (under the sprite's lock) and what the machine
 * does around them (vm/engine/checkpoint-verbs.ts).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { DiskOps, Machine } from '../driver/driver.ts';
import { SpritelyError, toSpritelyError } from '../errors.ts';
import { fsyncFile } from '../store/atomic-json.ts';
import {
  addCheckpoint,
  CHECKPOINT_ID,
  find,
  markRamGone,
  ramToPrune,
  reconcileWithDisk,
  removeCheckpoint,
  type Checkpoint,
} from './checkpoint-tree.ts';
import { ramFile, readTimeline, removeStrayRamFiles, writeTimeline } from './checkpoint-store.ts';

/** A checkpoint as clients see it: its bytes summed, and whether the machine descends from it. */
export type CheckpointView = Omit<Checkpoint, 'envRequest'> & { bytes: number; current: boolean };

/** One sprite as checkpoint operations see it. */
export interface CheckpointSubject {
  name: string;
  dir: string;
  disk: string;
  /** The running machine, when awake. */
  machine: Machine | null;
  /** The saved RAM state, when asleep. */
  sleepState: string | null;
}

export function checkpointViews(spriteDir: string): CheckpointView[] {
  const t = readTimeline(spriteDir);
  return t.checkpoints.map(({ envRequest: _, ...c }) => ({ ...c, bytes: c.ramBytes + c.diskBytes, current: c.id === t.head }));
}

/** The checkpoint `id` of `sprite`, or a clear invalid_argument / not_found. */
export function checkpointOrThrow(sprite: string, spriteDir: string, id: string): Checkpoint {
  if (!CHECKPOINT_ID.test(id)) throw new SpritelyError('invalid_argument', `"${id.slice(0, 40)}" is not a checkpoint id (they look like v1, v2, …).`);
  const c = find(readTimeline(spriteDir), id);
  if (!c) throw new SpritelyError('not_found', `Sprite "${sprite}" has no checkpoint ${id}. \`spritely checkpoint list ${sprite}\` shows them.`);
  return c;
}

export interface TakeOptions {
  comment: string;
  auto: boolean;
  /** The spritely-env request that asked for it (answered again after a restore to it). */
  envRequest?: string;
  /** Allocated bytes of the disk at the previous checkpoint, if known. */
  diskMark: number | undefined;
  /** RAM states kept (newest first); older checkpoints keep their disk state only. */
  keepRam: number;
  createdAt: string;
}

export interface Taken {
  checkpoint: Checkpoint;
  /** Allocated bytes of the disk now (the next checkpoint's mark). */
  diskNow: number;
  pruned: string[];
}

/**
 * Captures the machine: a disk snapshot and, when awake, RAM + devices (a state file) at one
 * instant — the guest is paused once, for the snapshot and the RAM write only. A sleeping
 * machine's RAM is already on disk: its checkpoint keeps that state (a hard link).
 */
export async function takeCheckpoint(disks: DiskOps, s: CheckpointSubject, o: TakeOptions): Promise<Taken> {
  let t = readTimeline(s.dir);
  const id = `v${t.nextNumber}`;
  const previous = t.checkpoints.at(-1);
  const diskNow = disks.allocatedBytes(s.disk);
  const diskBytes = Math.max(0, diskNow - (previous ? (o.diskMark ?? 0) : 0));
  const ram = ramFile(s.dir, id);
  let ramBytes = 0;
  let pauseMs = 0;
  try {
    if (s.sleepState) {
      fs.mkdirSync(path.dirname(ram), { recursive: true, mode: 0o700 });
      try {
        fs.linkSync(s.sleepState, ram);
      } catch {
        fs.copyFileSync(s.sleepState, ram);
        fsyncFile(ram);
      }
      ramBytes = fs.statSync(ram).size;
    }
    if (s.machine) {
      fs.mkdirSync(path.dirname(ram), { recursive: true, mode: 0o700 });
      const paused = Date.now();
      await s.machine.pause();
      try {
        await s.machine.snapshotDisk(id);
        try {
          ramBytes = await s.machine.saveState(ram, { fsync: false });
        } catch (err) {
          await s.machine.deleteDiskSnapshot(id).catch(() => {});
          throw err;
        }
      } finally {
        await s.machine.resume().catch(() => {});
        pauseMs = Date.now() - paused;
      }
      fsyncFile(ram);
    } else {
      await disks.createSnapshot(s.disk, id);
    }
  } catch (err) {
    fs.rmSync(ram, { force: true });
    fs.rmSync(`${ram}.partial`, { force: true });
    const e = toSpritelyError(err);
    throw new SpritelyError(e.code === 'internal' && /space|full/i.test(e.message) ? 'resource_exhausted' : e.code, `Could not checkpoint "${s.name}": ${e.message}. The sprite is unchanged.`);
  }
  const memory = s.machine !== null || s.sleepState !== null;
  const added = addCheckpoint(t, { comment: o.comment, createdAt: o.createdAt, auto: o.auto, memory, ramBytes, diskBytes, pauseMs, ...(o.envRequest ? { envRequest: o.envRequest } : {}) });
  t = added.timeline;
  const pruned = ramToPrune(t, o.keepRam);
  t = markRamGone(t, pruned);
  await writeTimeline(s.dir, t);
  for (const old of pruned) fs.rmSync(ramFile(s.dir, old), { force: true });
  return { checkpoint: added.checkpoint, diskNow, pruned };
}

/** Deletes checkpoint `id`: its disk snapshot (live or offline), its RAM file, its entry (children move up). */
export async function deleteCheckpoint(disks: DiskOps, s: CheckpointSubject, id: string): Promise<void> {
  if (s.machine) await s.machine.deleteDiskSnapshot(id);
  else await disks.deleteSnapshot(s.disk, id);
  await writeTimeline(s.dir, removeCheckpoint(readTimeline(s.dir), id));
  fs.rmSync(ramFile(s.dir, id), { force: true });
}

/**
 * Copies checkpoint `id` of `source` into a new disk at `disk` (only what the snapshot holds beyond
 * the shared backing disk is copied) and hard-links its RAM state to `ram` when it has one.
 * Returns whether it did.
 */
export async function cloneCheckpoint(disks: DiskOps, source: { name: string; dir: string; disk: string }, id: string, dest: { disk: string; ram: string }): Promise<boolean> {
  const c = checkpointOrThrow(source.name, source.dir, id);
  await disks.cloneAt(source.disk, id, dest.disk);
  fs.chmodSync(dest.disk, 0o600);
  if (!c.memory || !fs.existsSync(ramFile(source.dir, id))) return false;
  fs.linkSync(ramFile(source.dir, id), dest.ram);
  return true;
}

/**
 * The disk is the truth: drop tree entries whose disk snapshot is gone, delete snapshots a
 * checkpoint left half-made (taken, never recorded), mark entries whose RAM file is gone as
 * disk-only, and remove RAM files nobody owns.
 */
export async function reconcileCheckpoints(disks: DiskOps, s: CheckpointSubject, log: (msg: string) => void): Promise<void> {
  if (!fs.existsSync(s.disk)) return;
  const t = readTimeline(s.dir);
  const r = reconcileWithDisk(t, await disks.snapshots(s.disk));
  for (const orphan of r.orphans) {
    if (s.machine) await s.machine.deleteDiskSnapshot(orphan).catch(() => {});
    else await disks.deleteSnapshot(s.disk, orphan).catch(() => {});
    log(`removed an unfinished checkpoint ${orphan}`);
  }
  for (const id of r.dropped) log(`checkpoint ${id} has no disk snapshot any more; dropped it`);
  const fixed = { ...r.timeline, checkpoints: r.timeline.checkpoints.map((c) => (c.memory && !fs.existsSync(ramFile(s.dir, c.id)) ? { ...c, memory: false, ramBytes: 0 } : c)) };
  if (JSON.stringify(fixed) !== JSON.stringify(t)) await writeTimeline(s.dir, fixed);
  removeStrayRamFiles(s.dir, fixed);
}
