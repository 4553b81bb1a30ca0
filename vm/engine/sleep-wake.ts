/**
 * Sleep and wake. Sleep = the guest agent's sessions suspended (everything sent was read), RAM +
 * devices to `sleep.state`, the manifest says `sleeping` (with the signature the state needs and
 * the checkpoint views it was saved with) *before* the machine goes — so a daemon killed in
 * between finds a complete state — then the machine quits: no process, no RAM. Wake = a machine
 * restored from that file, the agent's epoch resumed (open terminals go on where they were), its
 * clock set, the file deleted; when the state no longer fits (another hypervisor version or device
 * set) or fails to load, the sprite boots from its disk instead, its sessions end, and `lastError`
 * says so. Sleep states are compressed in the background like checkpoints' (a wake reads
 * whichever form is complete).
 */
import path from 'node:path';
import { completeState, removeState } from '../checkpoints/state-files.ts';
import { SpritelyError } from '../errors.ts';
import { spritePaths } from '../paths.ts';
import { mustImage, withAwakePeriodClosed, type EngineContext } from './context.ts';
import { setGuestClock } from './guest-setup.ts';
import type { Lifecycle, Started } from './lifecycle.ts';
import { shapeOf, type MachineLaunch } from './machine-launch.ts';
import { bootFiles } from '../images/image-store.ts';

/**
 * Sleep states are compressed too: measured, a wake from one stays within its target (≤ 0.8 s to
 * running; docs/benchmarks.md), and a sleeping sprite then takes ~3.5× less disk.
 */
export const COMPRESS_SLEEP_STATES = process.env.SPRITELY_COMPRESS_SLEEP !== '0';

export class SleepWake {
  constructor(
    private readonly ctx: EngineContext,
    private readonly launcher: MachineLaunch,
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
      // Terminals and commands in the guest live on in its saved RAM: hold what the daemon would
      // send them and make sure the agent has read everything before, so the woken machine resumes them.
      const kept = await entry.agent.suspend();
      const quietMs = Date.now() - t0;
      let attached: string[];
      try {
        // (views change only under this lock: none can come between the listing and the save)
        attached = await entry.machine.attachedSnapshots();
        await entry.machine.saveState(file);
      } catch (err) {
        await entry.machine.resume().catch(() => {});
        entry.agent.unsuspend();
        throw new SpritelyError('internal', `Could not put "${name}" to sleep: ${(err as Error).message}. It keeps running.`);
      }
      const saveMs = Date.now() - t0;
      // Durable before the machine goes: a daemon killed here finds a complete state and a sleeping sprite.
      const signature = await driver.signature(shapeOf(m), bootFiles(mustImage(this.ctx, m)));
      await registry.save({ ...withAwakePeriodClosed(this.ctx, m), status: 'sleeping', sleep: { file, signature, savedAt: new Date(io.now()).toISOString(), ...(attached.length ? { attached } : {}) } });
      await live.teardown(name, 'quit', { keepSessions: kept, why: 'the sprite went to sleep' });
      if (COMPRESS_SLEEP_STATES) this.ctx.compressor.enqueue(file, name);
      registry.announce(name);
      return { sprite: registry.view(name), timings: { quietMs, saveMs, totalMs: Date.now() - t0 } };
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
    this.launcher.admit(name, m.memoryMiB)(); // refuse before anything of the sleep state is touched (spares go first)
    const signature = await driver.signature(shapeOf(m), bootFiles(image));
    this.ctx.compressor.cancel(m.sleep.file); // (the form chosen below stays: see restore)
    const state = completeState(m.sleep.file);
    const fits = signature === m.sleep.signature && state !== null;
    let note: string;
    if (fits) {
      const timings: Record<string, number> = {};
      try {
        const entry = await this.launcher.launch(name, m, image, state, m.sleep.attached);
        await this.launcher.startRestored(entry, timings, t0);
        const t = Date.now();
        await setGuestClock(entry.agent, io.now());
        timings.clockMs = Date.now() - t;
        this.ctx.browse.afterRestore(name, m.sleep.attached);
        this.ctx.compressor.cancel(m.sleep.file);
        removeState(m.sleep.file);
        await registry.save({ ...m, status: 'running', sleep: null, lastError: null });
        activity.touch(name);
        return { sprite: registry.view(name), timings: { ...timings, totalMs: Date.now() - t0 } as Started['timings'] };
      } catch (err) {
        await live.teardown(name, 'kill', { why: 'the sprite could not be woken exactly' });
        note = `its saved RAM state could not be restored (${(err as Error).message}); booted it from its disk instead`;
      }
    } else {
      live.dropAgent(name, 'the sprite was booted from its disk instead of woken');
      note = `its saved RAM state does not fit this ${driver.displayName} or device set any more; booted it from its disk instead (processes that were running are gone, files are kept)`;
    }
    log(`sprite ${name}: ${note}`);
    await registry.save({ ...m, status: 'stopped', sleep: null });
    this.ctx.compressor.cancel(m.sleep.file);
    removeState(m.sleep.file);
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
