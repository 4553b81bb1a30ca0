/**
 * The power of sprites that exist: a cold boot from the disk, stop (a guest shutdown, or a sync and
 * the end), and destroy. Making a sprite (create, fork) is in new-machine.ts; how any machine
 * starts (admission, launch, warm-spare adoption, letting a restored one run) in machine-launch.ts.
 */
import fs from 'node:fs';
import { removeState } from '../checkpoints/state-files.ts';
import { SpritelyError } from '../errors.ts';
import { spritePaths } from '../paths.ts';
import { coldBootTimeoutMs, mustImage, withAwakePeriodClosed, type EngineContext } from './context.ts';
import { growFilesystem, syncGuest } from './guest-setup.ts';
import type { MachineLaunch } from './machine-launch.ts';
import type { SpriteView } from './sprite-view.ts';

const GiB = 1024 ** 3;

export interface Timings {
  totalMs: number;
  [phase: string]: number;
}

export interface Started {
  sprite: SpriteView;
  timings: Timings;
}

export class Lifecycle {
  constructor(
    private readonly ctx: EngineContext,
    private readonly launcher: MachineLaunch,
  ) {}

  /** Boots a sprite from its disk (a cold boot). Runs under the sprite's lock. */
  async bootLocked(name: string): Promise<Started> {
    const { registry, live, layout, activity } = this.ctx;
    const t0 = Date.now();
    let m = registry.must(name);
    if (m.status === 'running' && live.get(name)) return { sprite: registry.view(name), timings: { totalMs: 0 } };
    const image = mustImage(this.ctx, m);
    const p = spritePaths(layout, name);
    if (!fs.existsSync(p.disk)) throw new SpritelyError('failed_precondition', `The disk of sprite "${name}" is missing (${p.disk}).`);
    const entry = await this.launcher.launch(name, m, image);
    try {
      await entry.agent.ready(await coldBootTimeoutMs(this.ctx, image));
      if (!m.fsGrown) await growFilesystem(entry.agent, m.diskGiB * GiB);
    } catch (err) {
      await live.teardown(name, 'kill', { why: 'the sprite did not come up' });
      throw new SpritelyError('internal', `Sprite "${name}" did not come up: ${(err as Error).message}. Its logs are in ${p.dir}.`);
    }
    m = { ...m, status: 'running', lastError: null, fsGrown: true };
    await registry.save(m);
    activity.touch(name);
    return { sprite: registry.view(name), timings: { bootMs: Date.now() - t0, totalMs: Date.now() - t0 } };
  }

  /** Powers a sprite off: a guest shutdown (or, with `force` or after the timeout, a sync and the end). */
  async stop(name: string, opts: { force?: boolean; timeoutMs?: number } = {}): Promise<SpriteView> {
    const { registry, live, locks, log } = this.ctx;
    registry.must(name);
    return locks.run(name, 'stopping', async () => {
      const entry = live.get(name);
      if (!entry) {
        const m = registry.must(name);
        live.dropAgent(name, 'the sprite was stopped');
        if (m.sleep) {
          this.ctx.compressor.cancel(m.sleep.file);
          removeState(m.sleep.file);
        }
        if (m.status !== 'stopped') await registry.save({ ...m, status: 'stopped', sleep: null });
        return registry.view(name);
      }
      if (!opts.force) {
        const off = entry.machine.waitPowerOff(opts.timeoutMs ?? this.ctx.timeouts.powerOffMs);
        off.catch(() => {});
        try {
          (await entry.guest.ready(5000)).shutdown();
        } catch {
          await entry.machine.powerDown().catch(() => {});
        }
        try {
          await off;
        } catch {
          log(`sprite ${name}: the guest did not power off in time; syncing and stopping it`);
          await syncGuest(entry.guest.ready(3000));
        }
      } else {
        await syncGuest(entry.guest.ready(3000));
      }
      await this.finishStop(name);
      return registry.view(name);
    });
  }

  /** Ends the sprite's machine and records it as stopped (its awake period metered). Under the lock. */
  async finishStop(name: string): Promise<void> {
    const m = this.ctx.registry.find(name);
    const closed = m ? withAwakePeriodClosed(this.ctx, m) : null;
    await this.ctx.live.teardown(name, 'quit', { why: 'the sprite was stopped' });
    if (closed) await this.ctx.registry.save({ ...closed, status: 'stopped', lastError: null });
  }

  async destroy(name: string): Promise<void> {
    const { registry, live, locks, layout, driver } = this.ctx;
    registry.must(name);
    await locks.run(name, 'destroying', async () => {
      await live.teardown(name, 'kill', { why: 'the sprite was destroyed' });
      const p = spritePaths(layout, name);
      this.ctx.compressor.cancelUnder(p.dir);
      fs.rmSync(p.dir, { recursive: true, force: true });
      fs.rmSync(p.egressSocket, { force: true });
      fs.rmSync(p.netSocket, { force: true });
      driver.release(name);
      registry.forget(name);
      this.ctx.removed(name);
    });
  }
}
