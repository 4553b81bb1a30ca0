/**
 * Checkpoint operations on one sprite's files, through the driver: take one (disk snapshot + RAM
 * state at one paused instant when awake; the sleep state when asleep; the disk alone when
 * stopped), delete one, copy one into a new disk (fork), and reconcile the tree with the disk after
 * a daemon died half-way. RAM states may be stored compressed (state-files.ts): every step here
 * takes whichever form is complete. The engine decides when (under the sprite's lock) and what the machine
 * does around them (vm/engine/checkpoint-verbs.ts).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { DiskOps, Machine } from '../driver/driver.ts';
import { SpritelyError, toSpritelyError } from '../errors.ts';
import { quoteName } from '../safe-text.ts';
import { fsyncFile, fsyncFileAsync } from '../store/atomic-json.ts';
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
import { ramFile, ramStates, readTimeline, removeStrayRamFiles, writeTimeline } from './checkpoint-store.ts';
import { completeState, isCompressed, linkState, removeState, settleStates, stateBytes } from './state-files.ts';

/**
 * A checkpoint as clients see it: its bytes summed (the RAM state as it is on disk now, compressed
 * or not), whether the machine descends from it, whether it is mounted in the guest, and what
 * deleting it would give back.
 */
export type CheckpointView = Omit<Checkpoint, 'envRequest' | 'byGuest' | 'signature' | 'attached'> & {
  bytes: number;
  current: boolean;
  /** Shown inside the sprite now (/.spritely/checkpoints/ID). */
  mounted: boolean;
  /** Its RAM state is stored compressed. */
  compressed: boolean;
  /** Bytes deleting it would free (its RAM state and the disk clusters only it holds); null until known. */
  freeBytes: number | null;
};

/** Temporary disk snapshots a diff of "now" takes; any left over (a daemon killed mid-diff) are removed. */
export const TEMP_SNAPSHOT_PREFIX = 'diff-';

/** One sprite as checkpoint operations see it. */
export interface CheckpointSubject {
  name: string;
  dir: string;
  disk: string;
  /** The running machine, when awake. */
  machine: Machine | null;
  /** The saved RAM state, when asleep. */
  sleepState: string | null;
  /** Snapshot views the sleep state was saved with. */
  sleepAttached?: string[];
  /** Flushes the guest's caches to its disk (best effort) so the disk snapshot holds what the guest sees. */
  sync?: () => Promise<void>;
}

export function checkpointViews(spriteDir: string, extra: { mounted?: string[]; costs?: Map<string, number> | null } = {}): CheckpointView[] {
  const t = readTimeline(spriteDir);
  return t.checkpoints.map(({ envRequest: _e, byGuest: _g, signature: _s, attached: _a, ...c }) => {
    const file = ramFile(spriteDir, c.id);
    const ramBytes = c.memory ? stateBytes(file) || c.ramBytes : 0;
    const own = extra.costs?.get(c.id);
    const ramOwned = c.memory && linkCount(file) <= 1 ? ramBytes : 0;
    return {
      ...c,
      ramBytes,
      bytes: ramBytes + c.diskBytes,
      current: c.id === t.head,
      mounted: extra.mounted?.includes(c.id) ?? false,
      compressed: c.memory && isCompressed(completeState(file) ?? ''),
      freeBytes: own === undefined ? null : own + ramOwned,
    };
  });
}

/** Hard links of a state (a fork or a sleep state may share it: deleting one then frees nothing). */
function linkCount(file: string): number {
  const f = completeState(file);
  try {
    return f ? fs.statSync(f).nlink : 0;
  } catch {
    return 0;
  }
}

/** The checkpoint `id` of `sprite`, or a clear invalid_argument / not_found. */
export function checkpointOrThrow(sprite: string, spriteDir: string, id: string): Checkpoint {
  if (!CHECKPOINT_ID.test(id)) throw new SpritelyError('invalid_argument', `${quoteName(id, 40)} is not a checkpoint id (they look like v1, v2, …).`);
  const c = find(readTimeline(spriteDir), id);
  if (!c) throw new SpritelyError('not_found', `Sprite "${sprite}" has no checkpoint ${id}. \`spritely checkpoint list ${sprite}\` shows them.`);
  return c;
}

export interface TakeOptions {
  comment: string;
  auto: boolean;
  /** The spritely-env request that asked for it (answered again after a restore to it). */
  envRequest?: string;
  /** The guest asked for it (directly, or as the undo checkpoint of a restore it asked for). */
  byGuest?: boolean;
  /** Allocated bytes of the disk at the previous checkpoint, if known. */
  diskMark: number | undefined;
  /** RAM states kept (newest first); older checkpoints keep their disk state only. */
  keepRam: number;
  createdAt: string;
  /** The device signature a RAM state saved now needs. */
  signature: string;
  /** Stops background work on a state file about to be removed (compression). */
  cancel: (file: string) => void;
  /**
   * The machine is ended right after (a restore's undo checkpoint): once its state is saved it stays
   * paused (resumed only when the checkpoint fails), and the RAM state's fsync runs on while the
   * restore goes on (`Taken.durable`) instead of being waited for before the checkpoint is recorded.
   */
  endingMachine?: boolean;
}

export interface Taken {
  checkpoint: Checkpoint;
  /** Allocated bytes of the disk now (the next checkpoint's mark). */
  diskNow: number;
  pruned: string[];
  /** Settles once the RAM state is on stable storage (at once unless `endingMachine`); rejects when the fsync failed. */
  durable: Promise<void>;
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
  let attached: string[] = [];
  let durable = Promise.resolve();
  try {
    if (s.sleepState) {
      const made = linkState(s.sleepState, ram, fsyncFile);
      ramBytes = made ? fs.statSync(made).size : 0;
      attached = s.sleepAttached ?? [];
    }
    if (s.machine) {
      fs.mkdirSync(path.dirname(ram), { recursive: true, mode: 0o700 });
      // What the guest wrote but has not flushed is in its RAM, not yet on its disk: flushed first,
      // a browsed or compared checkpoint shows the files as the guest saw them.
      await s.sync?.().catch(() => {});
      const paused = Date.now();
      await s.machine.pause();
      let saved = false;
      try {
        await s.machine.snapshotDisk(id);
        try {
          attached = await s.machine.attachedSnapshots();
          ramBytes = await s.machine.saveState(ram, { fsync: false });
          saved = true;
        } catch (err) {
          await s.machine.deleteDiskSnapshot(id).catch(() => {});
          throw err;
        }
      } finally {
        if (!saved || !o.endingMachine) await s.machine.resume().catch(() => {});
        pauseMs = Date.now() - paused;
      }
      // (off the event loop: a few hundred MiB take tens of ms to reach the disk)
      durable = fsyncFileAsync(ram);
      if (!o.endingMachine) await durable;
      else durable.catch(() => {});
    } else {
      await disks.createSnapshot(s.disk, id);
    }
  } catch (err) {
    removeState(ram);
    fs.rmSync(`${ram}.partial`, { force: true });
    const e = toSpritelyError(err);
    throw new SpritelyError(e.code === 'internal' && /space|full/i.test(e.message) ? 'resource_exhausted' : e.code, `Could not checkpoint "${s.name}": ${e.message}. The sprite is unchanged.`);
  }
  const memory = s.machine !== null || s.sleepState !== null;
  const added = addCheckpoint(t, {
    comment: o.comment,
    createdAt: o.createdAt,
    auto: o.auto,
    memory,
    ramBytes,
    diskBytes,
    pauseMs,
    ...(o.envRequest ? { envRequest: o.envRequest } : {}),
    ...(o.byGuest ? { byGuest: true } : {}),
    ...(memory ? { signature: o.signature, attached } : {}),
  });
  t = added.timeline;
  const pruned = ramToPrune(t, o.keepRam);
  t = markRamGone(t, pruned);
  await writeTimeline(s.dir, t);
  for (const old of pruned) {
    o.cancel(ramFile(s.dir, old));
    removeState(ramFile(s.dir, old));
  }
  return { checkpoint: added.checkpoint, diskNow, pruned, durable };
}

/** Deletes checkpoint `id`: its disk snapshot (live or offline), its RAM file, its entry (children move up). */
export async function deleteCheckpoint(disks: DiskOps, s: CheckpointSubject, id: string, cancel: (file: string) => void): Promise<void> {
  if (s.machine) await s.machine.deleteDiskSnapshot(id);
  else await disks.deleteSnapshot(s.disk, id);
  await writeTimeline(s.dir, removeCheckpoint(readTimeline(s.dir), id));
  cancel(ramFile(s.dir, id));
  removeState(ramFile(s.dir, id));
}

/**
 * Copies checkpoint `id` of `source` into a new disk at `disk` (only what the snapshot holds beyond
 * the shared backing disk is copied) and hard-links its RAM state to `ram` (or `ram`.lz4) when it
 * has one. Returns that state file and the snapshot views it was saved with, or null.
 */
export async function cloneCheckpoint(disks: DiskOps, source: { name: string; dir: string; disk: string }, id: string, dest: { disk: string; ram: string }): Promise<{ state: string; attached: string[]; signature: string | null } | null> {
  const c = checkpointOrThrow(source.name, source.dir, id);
  await disks.cloneAt(source.disk, id, dest.disk);
  fs.chmodSync(dest.disk, 0o600);
  if (!c.memory) return null;
  const state = linkState(ramFile(source.dir, id), dest.ram, fsyncFile);
  return state ? { state, attached: c.attached ?? [], signature: c.signature ?? null } : null;
}

/**
 * The disk is the truth: drop tree entries whose disk snapshot is gone, delete snapshots a
 * checkpoint left half-made (taken, never recorded), mark entries whose RAM file is gone as
 * disk-only, and remove RAM files nobody owns.
 */
export async function reconcileCheckpoints(disks: DiskOps, s: CheckpointSubject, log: (msg: string) => void): Promise<string[]> {
  if (!fs.existsSync(s.disk)) return [];
  const t = readTimeline(s.dir);
  const snapshots = await disks.snapshots(s.disk);
  const r = reconcileWithDisk(t, snapshots);
  const leftovers = [...snapshots].filter((x) => x.startsWith(TEMP_SNAPSHOT_PREFIX));
  for (const orphan of [...r.orphans, ...leftovers]) {
    if (s.machine) await s.machine.deleteDiskSnapshot(orphan).catch(() => {});
    else await disks.deleteSnapshot(s.disk, orphan).catch(() => {});
    log(orphan.startsWith(TEMP_SNAPSHOT_PREFIX) ? `removed a diff's temporary snapshot ${orphan}` : `removed an unfinished checkpoint ${orphan}`);
  }
  for (const id of r.dropped) log(`checkpoint ${id} has no disk snapshot any more; dropped it`);
  // a daemon killed mid-compression: settle each state into one complete form first
  const raw = settleStates(ramStates(s.dir, r.timeline));
  const fixed = { ...r.timeline, checkpoints: r.timeline.checkpoints.map((c) => (c.memory && !completeState(ramFile(s.dir, c.id)) ? { ...c, memory: false, ramBytes: 0 } : c)) };
  if (JSON.stringify(fixed) !== JSON.stringify(t)) await writeTimeline(s.dir, fixed);
  removeStrayRamFiles(s.dir, fixed);
  return raw.filter((f) => fs.existsSync(f));
}
