/**
 * Where a sprite's checkpoints live: disk state as snapshots inside its disk (the disk is the
 * truth for which exist), RAM + device state as separate files beside it (`checkpoints/vN.state`),
 * and the tree in `checkpoints.json`. RAM lives outside the disk because LAB.md measured that
 * vmstate inside a qcow2 is never given back when deleted, while a file can be deleted (pruned) or
 * compressed on its own and costs 0.6 s to write vs 5 s for snapshot-save.
 */
import fs from 'node:fs';
import path from 'node:path';
import { readJson, writeJsonAtomic } from '../store/atomic-json.ts';
import { EMPTY_TIMELINE, type Timeline } from './checkpoint-tree.ts';
import { isFormOf } from './state-files.ts';

export function timelineFile(spriteDir: string): string {
  return path.join(spriteDir, 'checkpoints.json');
}

export function ramFile(spriteDir: string, id: string): string {
  return path.join(spriteDir, 'checkpoints', `${id}.state`);
}

export function readTimeline(spriteDir: string): Timeline {
  return readJson<Timeline>(timelineFile(spriteDir)) ?? EMPTY_TIMELINE;
}

export async function writeTimeline(spriteDir: string, t: Timeline): Promise<void> {
  await writeJsonAtomic(timelineFile(spriteDir), t);
}

/** The RAM state files (raw names; state-files.ts finds their compressed forms) of the entries that have one. */
export function ramStates(spriteDir: string, t: Timeline): string[] {
  return t.checkpoints.filter((c) => c.memory).map((c) => ramFile(spriteDir, c.id));
}

/** Removes RAM files that no entry owns any more and half-written ones (raw or compressed). */
export function removeStrayRamFiles(spriteDir: string, t: Timeline): string[] {
  const dir = path.join(spriteDir, 'checkpoints');
  if (!fs.existsSync(dir)) return [];
  const keep = t.checkpoints.filter((c) => c.memory).map((c) => `${c.id}.state`);
  const removed: string[] = [];
  for (const f of fs.readdirSync(dir)) {
    if (keep.some((k) => isFormOf(f, k))) continue;
    fs.rmSync(path.join(dir, f), { force: true });
    removed.push(f);
  }
  return removed;
}
