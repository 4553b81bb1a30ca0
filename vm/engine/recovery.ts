/**
 * Carries out the recovery plan (recovery-plan.ts) for each sprite dir a starting daemon finds:
 * gathers the facts (manifest, runtime file, the machine it names), then runs the steps.
 */
import fs from 'node:fs';
import { reconcileCheckpoints } from '../checkpoints/checkpoint-ops.ts';
import { settleStates, stateExists } from '../checkpoints/state-files.ts';
import type { Machine } from '../driver/driver.ts';
import { spritePaths } from '../paths.ts';
import { readManifest, readRuntime } from '../store/sprite-manifest.ts';
import { markCrashed, type EngineContext } from './context.ts';
import { COMPRESS_SLEEP_STATES } from './sleep-wake.ts';
import { planRecovery, type RecoveryFacts } from './recovery-plan.ts';

export async function recoverSprite(ctx: EngineContext, name: string): Promise<void> {
  const { driver, registry, live, log } = ctx;
  const p = spritePaths(ctx.layout, name);
  const m = readManifest(p.manifest);
  if (!m) return;
  const rt = readRuntime(p.runtime);
  const machine: Machine | null = rt ? await driver.attach(rt.machine).catch(() => null) : null;
  const facts: RecoveryFacts = {
    status: m.status,
    machine: !rt ? 'none' : !machine ? 'gone' : await machine.state(),
    sleepStateOk: !!m.sleep && stateExists(m.sleep.file),
  };
  const say = (msg: string) => log(`sprite ${name}: ${msg}`);
  for (const step of planRecovery(facts, driver.displayName)) {
    switch (step.kind) {
      case 'kill':
        await machine?.kill();
        break;
      case 'quit':
        await machine?.quit();
        break;
      case 'repair':
        await machine?.repair().catch((err: Error) => say(`could not resume: ${err.message}`));
        break;
      case 'adopt':
        if (machine && rt) {
          live.adopt(name, machine, rt);
          say(`re-attached to ${driver.displayName} pid ${machine.pid}`);
          await ctx.browse.adopt(name);
        }
        break;
      case 'remove-runtime':
        fs.rmSync(p.runtime, { force: true });
        break;
      case 'remove-sprite':
        fs.rmSync(p.dir, { recursive: true, force: true });
        break;
      case 'register':
        registry.load(m);
        break;
      case 'reconcile-checkpoints': {
        // (raw states a killed daemon had not compressed yet are queued again once the sprite is loaded)
        await reconcileCheckpoints(driver.disks, { name, dir: p.dir, disk: p.disk, machine: step.live ? machine : null, sleepState: null }, say);
        // a sleep state settles to one complete form
        if (m.sleep && settleStates([m.sleep.file]).length && COMPRESS_SLEEP_STATES) ctx.compressor.enqueue(m.sleep.file, name);
        break;
      }
      case 'record':
        if (step.status === 'crashed') await markCrashed(ctx, name, step.lastError ?? 'it stopped unexpectedly');
        else {
          const current = registry.must(name);
          await registry.save({ ...current, status: step.status, ...(step.lastError ? { lastError: step.lastError } : {}), ...(step.dropSleep ? { sleep: null } : {}) });
        }
        break;
      case 'log':
        say(step.message);
        break;
    }
  }
}
