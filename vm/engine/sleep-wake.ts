/**
 * Sleep and wake. Sleep = RAM + devices to `sleep.state`, the manifest says `sleeping` (with the
 * signature the state needs) *before* the machine goes — so a daemon killed in between finds a
 * complete state — then the machine quits: no process, no RAM. Wake = a machine restored from that
 * file, its clock set, the file deleted; when the state no longer fits (another hypervisor version
 * or device set) or fails to load, the sprite boots from its disk instead and `lastError` says so.
 */
import fs from 'node:fs';
import path from 'node:path';
import { SpritelyError } from '../errors.ts';
import { spritePaths } from '../paths.ts';
import { bootFiles, mustImage, withAwakePeriodClosed, type EngineContext } from './context.ts';
import { setGuestClock } from './guest-setup.ts';
import { shapeOf, type Lifecycle, type Started } from './lifecycle.ts';

export class SleepWake {
  constructor(
    private readonly ctx: EngineContext,
    private readonly lifecycle: Lifecycle,
  ) {}

  /** RAM + devices to a file, the machine gone: 0 CPU, 0 RAM. `wake` resumes the exact moment. */
  async sleep(name: string): Promise<Started> {
    const { registry, live, locks, layout, driver, io } = this.ctx;
    registry.must(name);
    return locks.run(name, 'sleeping', async (): Promise<Started> => {
      const t0 = Date.now();
      const entry = live.get(name);
      const m = registry.must(name);
      if (!entry) {
        if (m.status === 'sleeping') return { sprite: registry.view(name), timings: { totalMs: 0 } };
        throw new SpritelyError('failed_precondition', `Sprite "${name}" is ${registry.view(name).state}; only a running sprite can sleep.`);
      }
      const file = path.join(spritePaths(layout, name).dir, 'sleep.state');
      try {
        await entry.machine.saveState(file);
      } catch (err) {
        await entry.machine.resume().catch(() => {});
        throw new SpritelyError('internal', `Could not put "${name}" to sleep: ${(err as Error).message}. It keeps running.`);
      }
      const saveMs = Date.now() - t0;
      // Durable before the machine goes: a daemon killed here finds a complete state and a sleeping sprite.
      const signature = await driver.signature(shapeOf(m), bootFiles(mustImage(this.ctx, m)));
      await registry.save({ ...withAwakePeriodClosed(this.ctx, m), status: 'sleeping', sleep: { file, signature, savedAt: new Date(io.now()).toISOString() } });
      await live.teardown(name, 'quit');
      registry.announce(name);
      return { sprite: registry.view(name), timings: { saveMs, totalMs: Date.now() - t0 } };
    });
  }

  async wake(name: string): Promise<Started> {
    this.ctx.registry.must(name);
    return this.ctx.locks.run(name, 'waking', () => this.wakeLocked(name));
  }

  /** Restores a sleeping sprite's RAM state; if it no longer fits, boots from disk and says so. Under the lock. */
  async wakeLocked(name: string): Promise<Started> {
    const { registry, live, driver, io, activity, log } = this.ctx;
    const t0 = Date.now();
    const m = registry.must(name);
    if (live.get(name)) return { sprite: registry.view(name), timings: { totalMs: 0 } };
    if (m.status !== 'sleeping' || !m.sleep) throw new SpritelyError('failed_precondition', `Sprite "${name}" is not sleeping (it is ${registry.view(name).state}).`);
    const image = mustImage(this.ctx, m);
    this.lifecycle.admit(name, m.memoryMiB)(); // refuse before anything of the sleep state is touched
    const signature = await driver.signature(shapeOf(m), bootFiles(image));
    const fits = signature === m.sleep.signature && fs.existsSync(m.sleep.file);
    let note: string;
    if (fits) {
      const entry = await this.lifecycle.launch(name, m, image, m.sleep.file);
      try {
        await entry.machine.waitRunning(this.ctx.timeouts.restoreMs);
        const runningMs = Date.now() - t0;
        await setGuestClock(await entry.guest.ready(this.ctx.timeouts.guestAfterRestoreMs), io.now());
        fs.rmSync(m.sleep.file, { force: true });
        await registry.save({ ...m, status: 'running', sleep: null, lastError: null });
        activity.touch(name);
        entry.ssh.ready(60_000).catch(() => {});
        return { sprite: registry.view(name), timings: { runningMs, totalMs: Date.now() - t0 } };
      } catch (err) {
        await live.teardown(name, 'kill');
        note = `its saved RAM state could not be restored (${(err as Error).message}); booted it from its disk instead`;
      }
    } else {
      note = `its saved RAM state does not fit this ${driver.displayName} or device set any more; booted it from its disk instead (processes that were running are gone, files are kept)`;
    }
    log(`sprite ${name}: ${note}`);
    await registry.save({ ...m, status: 'stopped', sleep: null });
    fs.rmSync(m.sleep.file, { force: true });
    const started = await this.lifecycle.bootLocked(name);
    await registry.save({ ...registry.must(name), lastError: `Woke without its RAM: ${note}.` });
    return { sprite: registry.view(name), timings: { ...started.timings, totalMs: Date.now() - t0 } };
  }

  /** Wakes a sleeping sprite (everything that needs the machine does this first: exec, terminals, URLs). */
  async ensureAwake(name: string): Promise<void> {
    const v = this.ctx.registry.view(name);
    this.ctx.activity.touch(name);
    if (v.state === 'sleeping') await this.wake(name);
  }

  /** Daemon shutdown: every awake sprite goes to sleep so nothing running is lost. */
  async sleepAll(): Promise<void> {
    await Promise.all(this.ctx.live.names().map((name) => this.sleep(name).catch((err) => this.ctx.log(`sprite ${name}: could not sleep: ${err.message}`))));
  }
}
