/**
 * Metering: awake time, CPU time, disk bytes and last activity per sprite. Finished awake periods
 * are added to the manifest when a sprite sleeps, stops or crashes (`closeAwakePeriod`); the
 * current one is computed live from the machine's start time and CPU counter, so the figures
 * survive daemon restarts.
 */
import fs from 'node:fs';
import path from 'node:path';
import { completeState } from '../checkpoints/state-files.ts';
import type { DiskOps } from '../driver/driver.ts';
import type { Manifest } from '../store/sprite-manifest.ts';

export interface SpriteUsage {
  awakeSeconds: number;
  cpuSeconds: number;
  diskBytes: number;
  lastActiveAt: string | null;
}

/** The awake period under way: when the machine started, and the CPU seconds it has used. */
export interface AwakePeriod {
  startedAt: string;
  cpuSeconds: number;
}

export function usageOf(m: Manifest, current: AwakePeriod | null, diskBytes: number, lastActivityMs: number | undefined, now: number): SpriteUsage {
  const awake = m.usage.awakeSeconds + (current ? (now - Date.parse(current.startedAt)) / 1000 : 0);
  const cpu = m.usage.cpuSeconds + (current?.cpuSeconds ?? 0);
  return {
    awakeSeconds: Math.round(awake),
    cpuSeconds: Math.round(cpu * 10) / 10,
    diskBytes,
    lastActiveAt: lastActivityMs !== undefined ? new Date(lastActivityMs).toISOString() : m.usage.lastActiveAt,
  };
}

/** Adds the awake period that is ending to the manifest's totals (before the machine goes away). */
export function closeAwakePeriod(m: Manifest, ending: AwakePeriod | null, lastActivityMs: number | undefined, now: number): Manifest {
  if (!ending) return m;
  return {
    ...m,
    usage: {
      awakeSeconds: m.usage.awakeSeconds + (now - Date.parse(ending.startedAt)) / 1000,
      cpuSeconds: m.usage.cpuSeconds + ending.cpuSeconds,
      lastActiveAt: lastActivityMs !== undefined ? new Date(lastActivityMs).toISOString() : m.usage.lastActiveAt,
    },
  };
}

/** Bytes a sprite takes on the host: its disk, its checkpoints' RAM files, and its sleep state. */
export function diskBytesOf(disks: DiskOps, spriteDir: string, disk: string, sleepFile: string | null): number {
  let checkpointBytes = 0;
  try {
    for (const f of fs.readdirSync(path.join(spriteDir, 'checkpoints'))) checkpointBytes += disks.allocatedBytes(path.join(spriteDir, 'checkpoints', f));
  } catch {
    /* none */
  }
  const sleep = sleepFile ? completeState(sleepFile) : null;
  return disks.allocatedBytes(disk) + checkpointBytes + (sleep ? disks.allocatedBytes(sleep) : 0);
}
