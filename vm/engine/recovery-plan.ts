/**
 * What a starting daemon does about each sprite it finds, as a pure plan from the facts on disk and
 * what the machine named by its runtime file is doing. Every half-finished state a killed daemon can
 * leave has an answer here: a create that never finished is removed (it promised nothing); a sleep
 * whose state was written but whose machine did not quit keeps the state and kills the machine; a
 * sleep without its state file boots from disk next time; a running sprite whose machine is gone is
 * crashed; one the guest powered off is stopped; one paused mid-checkpoint or mid-sleep is repaired
 * and re-attached. Checkpoints are reconciled with the disk in every case that keeps the sprite.
 */
import type { MachineState } from '../driver/driver.ts';
import type { Manifest } from '../store/sprite-manifest.ts';

export interface RecoveryFacts {
  status: Manifest['status'];
  /** What runs under the runtime file: `none` = no runtime file, `gone` = its machine no longer runs. */
  machine: 'none' | 'gone' | MachineState;
  /** The manifest names a sleep state and the file exists. */
  sleepStateOk: boolean;
}

export type RecoveryStep =
  /** End the machine at once (it is redundant, or belongs to something unfinished). */
  | { kind: 'kill' }
  /** End the machine cleanly (its guest powered off while no daemon watched). */
  | { kind: 'quit' }
  /** Abandon a half-made save and let the guest run again. */
  | { kind: 'repair' }
  /** Take the machine over: link to it and watch it. */
  | { kind: 'adopt' }
  | { kind: 'remove-runtime' }
  /** Remove the sprite's dir (an unfinished create). */
  | { kind: 'remove-sprite' }
  /** Keep the sprite (its manifest becomes the registry's). */
  | { kind: 'register' }
  | { kind: 'reconcile-checkpoints'; live: boolean }
  | { kind: 'record'; status: 'stopped' | 'crashed'; lastError?: string; dropSleep?: boolean }
  | { kind: 'log'; message: string };

/** Whether the facts name a machine that is still there (attached, in some state). */
function alive(f: RecoveryFacts): boolean {
  return f.machine !== 'none' && f.machine !== 'gone';
}

export function planRecovery(f: RecoveryFacts, hypervisor: string): RecoveryStep[] {
  if (f.status === 'creating') {
    return [...(alive(f) ? [{ kind: 'kill' } as const] : []), { kind: 'remove-sprite' }, { kind: 'log', message: 'removed an unfinished create' }];
  }
  const steps: RecoveryStep[] = [{ kind: 'register' }];
  if (f.status !== 'running') {
    // Not supposed to run: a machine still there is redundant (a sleep killed between saving its
    // state and quitting: the state is complete) and its runtime file is stale.
    if (alive(f)) steps.push({ kind: 'kill' });
    if (f.machine !== 'none') steps.push({ kind: 'remove-runtime' });
    if (f.status === 'sleeping' && !f.sleepStateOk) {
      steps.push({ kind: 'record', status: 'stopped', lastError: 'Its saved RAM state was missing; it boots from its disk.', dropSleep: true });
    }
    steps.push({ kind: 'reconcile-checkpoints', live: false });
    return steps;
  }
  switch (f.machine) {
    case 'none':
    case 'gone':
      return [...steps, { kind: 'reconcile-checkpoints', live: false }, { kind: 'record', status: 'crashed', lastError: `${hypervisor} is no longer running (it was killed or the host restarted)` }];
    case 'shutdown':
      return [...steps, { kind: 'quit' }, { kind: 'remove-runtime' }, { kind: 'reconcile-checkpoints', live: false }, { kind: 'record', status: 'stopped' }];
    case 'paused':
    case 'saving':
      // A daemon that died mid-checkpoint or mid-sleep leaves the guest paused (or just after its
      // RAM was saved, with the disk inactivated): resume it before anything touches the disk.
      return [...steps, { kind: 'repair' }, { kind: 'reconcile-checkpoints', live: true }, { kind: 'adopt' }];
    case 'running':
    case 'starting':
    case 'other':
      return [...steps, { kind: 'reconcile-checkpoints', live: true }, { kind: 'adopt' }];
  }
}

/** What a starting daemon finds of a warm spare (a machine restored ahead of time, paused, not yet a sprite). */
export interface SpareFacts {
  /** Its record (spare.json) could be read. */
  recordOk: boolean;
  machine: 'none' | 'gone' | MachineState;
  /** Warm spares are on. */
  enabled: boolean;
}

export interface SparePlan {
  /** Back into the pool, as it is. */
  keep: boolean;
  /** End its machine. */
  kill: boolean;
  /** Why it is given up (for the log), when it is. */
  why: string | null;
}

/**
 * A spare is kept only when it is exactly what it was left as: recorded, its machine alive and
 * still paused (never run as anything), and spares wanted. Anything else is given up — it is only
 * a head start, made again on the next create.
 */
export function planSpareRecovery(f: SpareFacts): SparePlan {
  const live = f.machine !== 'none' && f.machine !== 'gone';
  const why = !f.recordOk ? 'its record is missing or unreadable'
    : !live ? 'its machine is gone'
    : f.machine !== 'paused' ? `its machine is ${f.machine}, not paused`
    : !f.enabled ? 'warm spares are off'
    : null;
  return { keep: why === null, kill: why !== null && live, why };
}
