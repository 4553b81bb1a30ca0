/**
 * Where a sprite's checkpoints live: disk state as internal snapshots in its qcow2 overlay (the
 * qcow2 is the truth for which exist), RAM + device state as separate files beside it
 * (`checkpoints/vN.state`), and the tree in `checkpoints.json`. RAM lives outside the qcow2
 * because LAB.md measured that vmstate inside a qcow2 is never given back when deleted, while a
 * file can be deleted (pruned) or compressed on its own and costs 0.6 s to write vs 5 s for
 * snapshot-save.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { readJson, writeJsonAtomic } from '../store/atomic-json.ts';
import { EMPTY_TIMELINE, type Timeline } from './checkpoint-tree.ts';

const execFileP = promisify(execFile);

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

/** Internal snapshot names in a qcow2 (read with -U: safe while QEMU has the image open). */
export async function diskSnapshotNames(disk: string): Promise<Set<string>> {
  const { stdout } = await execFileP('qemu-img', ['info', '-U', '--output=json', disk]);
  const info = JSON.parse(stdout);
  return new Set((info.snapshots ?? []).map((s: { name: string }) => s.name));
}

/** `qemu-img snapshot` on an image no QEMU has open: -c create, -a apply, -d delete. */
export async function offlineSnapshot(op: 'create' | 'apply' | 'delete', id: string, disk: string): Promise<void> {
  const flag = { create: '-c', apply: '-a', delete: '-d' }[op];
  try {
    await execFileP('qemu-img', ['snapshot', flag, id, disk]);
  } catch (err) {
    const msg = ((err as { stderr?: string }).stderr ?? (err as Error).message).trim();
    throw new Error(`qemu-img snapshot ${flag} ${id} failed: ${msg}`);
  }
}

export function allocatedBytes(file: string): number {
  try {
    return fs.statSync(file).blocks * 512;
  } catch {
    return 0;
  }
}

/** Removes RAM files that no entry owns any more and half-written ones. */
export function removeStrayRamFiles(spriteDir: string, t: Timeline): void {
  const dir = path.join(spriteDir, 'checkpoints');
  if (!fs.existsSync(dir)) return;
  const keep = new Set(t.checkpoints.filter((c) => c.memory).map((c) => `${c.id}.state`));
  for (const f of fs.readdirSync(dir)) if (!keep.has(f)) fs.rmSync(path.join(dir, f), { force: true });
}
