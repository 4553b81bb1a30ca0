import { describe, expect, it } from 'vitest';
import type { Manifest } from '../store/sprite-manifest.ts';
import { planRecovery, planSpareRecovery, type RecoveryFacts, type RecoveryStep } from './recovery-plan.ts';

const STATUSES: Manifest['status'][] = ['creating', 'running', 'sleeping', 'stopped', 'crashed'];
const MACHINES: RecoveryFacts['machine'][] = ['none', 'gone', 'running', 'paused', 'saving', 'shutdown', 'starting', 'other'];
const ALL: RecoveryFacts[] = STATUSES.flatMap((status) => MACHINES.flatMap((machine) => [true, false].map((sleepStateOk) => ({ status, machine, sleepStateOk }))));

const kinds = (steps: RecoveryStep[]) => steps.map((s) => s.kind);
const plan = (f: Partial<RecoveryFacts>) => planRecovery({ status: 'running', machine: 'running', sleepStateOk: false, ...f }, 'Hypervisor');

describe('planRecovery: invariants over every combination', () => {
  it.each(ALL)('%o', (f) => {
    const steps = planRecovery(f, 'Hypervisor');
    const k = kinds(steps);
    const alive = f.machine !== 'none' && f.machine !== 'gone';
    // a machine that is still there is never left unowned: exactly one of kill, quit, adopt
    expect(k.filter((x) => x === 'kill' || x === 'quit' || x === 'adopt')).toHaveLength(alive ? 1 : 0);
    // an unfinished create is removed and never registered; everything else is kept and registered first
    if (f.status === 'creating') {
      expect(k).toContain('remove-sprite');
      expect(k).not.toContain('register');
    } else {
      expect(k[0]).toBe('register');
      expect(k.filter((x) => x === 'reconcile-checkpoints')).toHaveLength(1);
    }
    // checkpoints are reconciled through the machine only when it is adopted (its disk is open)
    const reconcile = steps.find((s) => s.kind === 'reconcile-checkpoints') as Extract<RecoveryStep, { kind: 'reconcile-checkpoints' }> | undefined;
    if (reconcile) expect(reconcile.live).toBe(k.includes('adopt'));
    // repair only comes before an adopt, and the adopted machine was running or paused/saving
    if (k.includes('repair')) expect(k.indexOf('repair')).toBeLessThan(k.indexOf('adopt'));
    // only a sprite that was running can be adopted
    if (k.includes('adopt')) expect(f.status).toBe('running');
  });
});

describe('planRecovery: each half-finished state', () => {
  it('an unfinished create: its machine is killed and its dir removed', () => {
    expect(kinds(plan({ status: 'creating', machine: 'running' }))).toEqual(['kill', 'remove-sprite', 'log']);
    expect(kinds(plan({ status: 'creating', machine: 'gone' }))).toEqual(['remove-sprite', 'log']);
  });

  it('running, its machine there: re-attached (repaired first when paused or saving)', () => {
    expect(kinds(plan({ machine: 'running' }))).toEqual(['register', 'reconcile-checkpoints', 'adopt']);
    expect(kinds(plan({ machine: 'starting' }))).toEqual(['register', 'reconcile-checkpoints', 'adopt']);
    expect(kinds(plan({ machine: 'paused' }))).toEqual(['register', 'repair', 'reconcile-checkpoints', 'adopt']);
    expect(kinds(plan({ machine: 'saving' }))).toEqual(['register', 'repair', 'reconcile-checkpoints', 'adopt']);
  });

  it('running, its machine gone: crashed, saying why in the driver’s name', () => {
    for (const machine of ['none', 'gone'] as const) {
      expect(plan({ machine })).toEqual([
        { kind: 'register' },
        { kind: 'reconcile-checkpoints', live: false },
        { kind: 'record', status: 'crashed', lastError: 'Hypervisor is no longer running (it was killed or the host restarted)' },
      ]);
    }
  });

  it('running, its guest powered off: quit, runtime forgotten, stopped', () => {
    expect(kinds(plan({ machine: 'shutdown' }))).toEqual(['register', 'quit', 'remove-runtime', 'reconcile-checkpoints', 'record']);
    expect(plan({ machine: 'shutdown' }).at(-1)).toEqual({ kind: 'record', status: 'stopped' });
  });

  it('sleeping with its machine still there (killed between save and quit): the machine goes, the sleep stays', () => {
    expect(kinds(plan({ status: 'sleeping', machine: 'saving', sleepStateOk: true }))).toEqual(['register', 'kill', 'remove-runtime', 'reconcile-checkpoints']);
    expect(kinds(plan({ status: 'sleeping', machine: 'gone', sleepStateOk: true }))).toEqual(['register', 'remove-runtime', 'reconcile-checkpoints']);
    expect(kinds(plan({ status: 'sleeping', machine: 'none', sleepStateOk: true }))).toEqual(['register', 'reconcile-checkpoints']);
  });

  it('sleeping without its state file: stopped, told why, the sleep record dropped', () => {
    expect(plan({ status: 'sleeping', machine: 'none', sleepStateOk: false })).toContainEqual({ kind: 'record', status: 'stopped', lastError: 'Its saved RAM state was missing; it boots from its disk.', dropSleep: true });
  });

  it('stopped or crashed: checkpoints reconciled offline; a stray machine is ended', () => {
    for (const status of ['stopped', 'crashed'] as const) {
      expect(kinds(plan({ status, machine: 'none' }))).toEqual(['register', 'reconcile-checkpoints']);
      expect(kinds(plan({ status, machine: 'running' }))).toEqual(['register', 'kill', 'remove-runtime', 'reconcile-checkpoints']);
    }
  });
});

describe('planSpareRecovery', () => {
  const MACHINES = ['none', 'gone', 'running', 'paused', 'saving', 'shutdown', 'starting', 'other'] as const;

  it('keeps a spare only when it is exactly as left: recorded, alive, paused, and spares are on', () => {
    for (const recordOk of [true, false]) {
      for (const machine of MACHINES) {
        for (const enabled of [true, false]) {
          const p = planSpareRecovery({ recordOk, machine, enabled });
          const keep = recordOk && machine === 'paused' && enabled;
          expect(p.keep, JSON.stringify({ recordOk, machine, enabled })).toBe(keep);
          // a live machine that is not kept is ended; a kept one is not; a gone one cannot be
          expect(p.kill).toBe(!keep && machine !== 'none' && machine !== 'gone');
          expect(p.why === null).toBe(keep);
        }
      }
    }
  });

  it('says why it gives one up', () => {
    expect(planSpareRecovery({ recordOk: false, machine: 'paused', enabled: true }).why).toBe('its record is missing or unreadable');
    expect(planSpareRecovery({ recordOk: true, machine: 'gone', enabled: true }).why).toBe('its machine is gone');
    expect(planSpareRecovery({ recordOk: true, machine: 'running', enabled: true }).why).toBe('its machine is running, not paused');
    expect(planSpareRecovery({ recordOk: true, machine: 'paused', enabled: false }).why).toBe('warm spares are off');
  });
});
