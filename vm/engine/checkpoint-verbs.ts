/**
 * The checkpoint verbs as the engine runs them: under the sprite's lock, on whatever the sprite is
 * (awake, asleep, stopped), announced when done. Taking, deleting and copying checkpoints is in
 * vm/checkpoints/checkpoint-ops.ts; restoring is here, because it replaces the machine: an undo
 * checkpoint first, the old machine ended, the disk reverted, a machine restored from the RAM state
 * (or booted from the disk), its clock set. Also what a guest may ask over spritely-env.
 */
import fs from 'node:fs';
import { checkpointOrThrow, checkpointViews, deleteCheckpoint, takeCheckpoint, type CheckpointSubject, type CheckpointView } from '../checkpoints/checkpoint-ops.ts';
import { ramFile, readTimeline, writeTimeline } from '../checkpoints/checkpoint-store.ts';
import { cleanComment, moveHead, type Checkpoint } from '../checkpoints/checkpoint-tree.ts';
import { formatReply, type EnvHandler } from '../checkpoints/env-channel.ts';
import { formatTimeline } from '../checkpoints/timeline-text.ts';
import { SpritelyError } from '../errors.ts';
import { spritePaths } from '../paths.ts';
import { coldBootTimeoutMs, markCrashed, mustImage, withAwakePeriodClosed, type EngineContext } from './context.ts';
import { setGuestClock } from './guest-setup.ts';
import type { Lifecycle, Timings } from './lifecycle.ts';
import type { SpriteView } from './sprite-view.ts';

/** RAM states kept per sprite (newest first); older checkpoints keep their disk state only. */
export const DEFAULT_KEEP_RAM = Number(process.env.SPRITELY_KEEP_RAM ?? 8);

export class CheckpointVerbs {
  constructor(
    private readonly ctx: EngineContext,
    private readonly lifecycle: Lifecycle,
  ) {}

  private subject(name: string): CheckpointSubject {
    const p = spritePaths(this.ctx.layout, name);
    const m = this.ctx.registry.must(name);
    const machine = this.ctx.live.get(name)?.machine ?? null;
    const sleepState = !machine && m.status === 'sleeping' && m.sleep && fs.existsSync(m.sleep.file) ? m.sleep.file : null;
    return { name, dir: p.dir, disk: p.disk, machine, sleepState };
  }

  list(name: string): CheckpointView[] {
    this.ctx.registry.must(name);
    return checkpointViews(spritePaths(this.ctx.layout, name).dir);
  }

  private announce(name: string): void {
    this.ctx.checkpointsChanged(name);
  }

  private find(name: string, id: string): Checkpoint {
    return checkpointOrThrow(name, spritePaths(this.ctx.layout, name).dir, id);
  }

  /** Captures the machine (disk + RAM + devices when awake, disk when stopped) at one instant. */
  async create(name: string, opts: { comment?: string; auto?: boolean } = {}): Promise<{ checkpoint: CheckpointView; timings: Timings }> {
    this.ctx.registry.must(name);
    return this.ctx.locks.run(name, 'checkpointing', async () => {
      const t0 = Date.now();
      const c = await this.takeLocked(name, cleanComment(opts.comment), opts.auto ?? false);
      return { checkpoint: this.list(name).find((x) => x.id === c.id)!, timings: { pauseMs: c.pauseMs, totalMs: Date.now() - t0 } };
    });
  }

  private async takeLocked(name: string, comment: string, auto: boolean, envRequest?: string): Promise<Checkpoint> {
    const s = this.subject(name);
    const { checkpoint: c, diskNow } = await takeCheckpoint(this.ctx.driver.disks, s, {
      comment,
      auto,
      envRequest,
      diskMark: this.ctx.diskMarks.get(name),
      keepRam: DEFAULT_KEEP_RAM,
      createdAt: new Date(this.ctx.io.now()).toISOString(),
    });
    this.ctx.diskMarks.set(name, diskNow);
    const how = s.machine ? ` (paused ${c.pauseMs} ms, RAM ${(c.ramBytes / 2 ** 20).toFixed(0)} MiB)` : s.sleepState ? ' (asleep: its sleep state is the RAM)' : ' (disk only)';
    this.ctx.log(`sprite ${name}: checkpoint ${c.id}${how}`);
    this.announce(name);
    return c;
  }

  /**
   * Brings the machine back to checkpoint `id`: first an automatic checkpoint of the current state
   * (unless `backup` is false), then the disk is reverted and the RAM state restored (or, without
   * one, the machine boots from the restored disk).
   */
  async restore(name: string, id: string, opts: { backup?: boolean } = {}): Promise<{ sprite: SpriteView; backup: string | null; timings: Timings }> {
    const { registry, live, locks, driver, io, layout, log } = this.ctx;
    registry.must(name);
    this.find(name, id);
    return locks.run(name, 'restoring', async () => {
      const t0 = Date.now();
      const timings: Record<string, number> = {};
      const c = this.find(name, id);
      const p = spritePaths(layout, name);
      const backup = opts.backup === false ? null : await this.takeLocked(name, cleanComment(`before restoring ${id}`), true);
      timings.backupMs = Date.now() - t0;
      registry.replace(withAwakePeriodClosed(this.ctx, registry.must(name)));
      await live.teardown(name, 'quit');
      let t = Date.now();
      await driver.disks.applySnapshot(p.disk, id);
      timings.diskMs = Date.now() - t;
      t = Date.now();
      const m = registry.must(name);
      const image = mustImage(this.ctx, m);
      const withRam = c.memory && fs.existsSync(ramFile(p.dir, id));
      const entry = await this.lifecycle.launch(name, m, image, withRam ? ramFile(p.dir, id) : undefined);
      try {
        if (withRam) await entry.machine.waitRunning(this.ctx.timeouts.restoreMs);
        timings.runningMs = Date.now() - t;
        const guest = await entry.guest.ready(withRam ? this.ctx.timeouts.guestAfterRestoreMs : await coldBootTimeoutMs(this.ctx, image));
        if (withRam) await setGuestClock(guest, io.now());
      } catch (err) {
        await live.teardown(name, 'kill');
        await markCrashed(this.ctx, name, `restoring ${id} failed: ${(err as Error).message}`);
        throw new SpritelyError('internal', `Restoring ${id} of "${name}" failed: ${(err as Error).message}`);
      }
      // A guest that asked for this checkpoint itself was waiting for the answer at that instant.
      if (withRam && c.envRequest) entry.env.write(formatReply(c.envRequest, { ok: true, text: c.id }));
      this.ctx.diskMarks.set(name, driver.disks.allocatedBytes(p.disk));
      await writeTimeline(p.dir, moveHead(readTimeline(p.dir), id));
      await registry.save({ ...m, status: 'running', lastError: null, sleep: null });
      // restored while asleep: that sleep state is no longer the machine's (a backup keeps its own link)
      if (m.sleep) fs.rmSync(m.sleep.file, { force: true });
      entry.ssh.ready(60_000).catch(() => {});
      this.announce(name);
      timings.totalMs = Date.now() - t0;
      log(`sprite ${name}: restored ${id} in ${timings.totalMs} ms (${withRam ? 'with RAM' : 'booted from disk'})`);
      return { sprite: registry.view(name), backup: backup?.id ?? null, timings: timings as Timings };
    });
  }

  async delete(name: string, id: string): Promise<void> {
    this.ctx.registry.must(name);
    this.find(name, id);
    await this.ctx.locks.run(name, 'deleting a checkpoint', async () => {
      this.find(name, id);
      await deleteCheckpoint(this.ctx.driver.disks, this.subject(name), id);
      this.announce(name);
    });
  }

  /** What a sprite may ask of the daemon from inside (spritely-env): only about itself. */
  envHandler(name: string): EnvHandler {
    return async (req) => {
      if (req.op === 'checkpoint.create') {
        const c = await this.ctx.locks.run(name, 'checkpointing', () => this.takeLocked(name, cleanComment(req.comment), false, req.id));
        const view = this.list(name).find((x) => x.id === c.id)!;
        return { text: req.json ? JSON.stringify(view) : c.id };
      }
      if (req.op === 'checkpoint.list') {
        const cps = this.list(name);
        return { text: req.json ? JSON.stringify(cps) : formatTimeline(cps) };
      }
      this.find(name, req.checkpoint);
      return {
        text: `restoring ${req.checkpoint}…`,
        after: () => void this.restore(name, req.checkpoint, { backup: req.backup }).catch((err) => this.ctx.log(`sprite ${name}: restore from inside failed: ${err.message}`)),
      };
    };
  }
}
