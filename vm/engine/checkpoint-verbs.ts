/**
 * The checkpoint verbs as the engine runs them: under the sprite's lock, on whatever the sprite is
 * (awake, asleep, stopped), announced when done. Taking, deleting and copying checkpoints is in
 * vm/checkpoints/checkpoint-ops.ts; restoring is here, because it replaces the machine: an undo
 * checkpoint first, the old machine ended, the disk reverted, a machine restored from the RAM state
 * (or booted from the disk when that state no longer fits, saying so), its clock set. Also what a
 * guest may ask over spritely-env, and what each checkpoint costs on disk.
 */
import { checkpointOrThrow, checkpointViews, deleteCheckpoint, takeCheckpoint, type CheckpointSubject, type CheckpointView } from '../checkpoints/checkpoint-ops.ts';
import { ramFile, readTimeline, writeTimeline } from '../checkpoints/checkpoint-store.ts';
import { cleanComment, moveHead, ramToCompress, type Checkpoint } from '../checkpoints/checkpoint-tree.ts';
import { formatReport, terminalSafeJson } from '../checkpoints/diff-report.ts';
import { formatReply, type EnvHandler } from '../checkpoints/env-channel.ts';
import { recentAsks, refuseGuestAsk, type GuestAsk } from '../checkpoints/guest-checkpoint-limits.ts';
import { completeState, removeState, stateExists } from '../checkpoints/state-files.ts';
import { formatTimeline } from '../checkpoints/timeline-text.ts';
import { SpritelyError } from '../errors.ts';
import { spritePaths } from '../paths.ts';
import { CheckpointDiff } from './checkpoint-diff.ts';
import { coldBootTimeoutMs, markCrashed, mustImage, withAwakePeriodClosed, type EngineContext } from './context.ts';
import { setGuestClock, syncGuestQuickly } from './guest-setup.ts';
import type { Timings } from './lifecycle.ts';
import { shapeOf, type MachineLaunch } from './machine-launch.ts';
import type { SpriteView } from './sprite-view.ts';
import { bootFiles } from '../images/image-store.ts';

/** How long what a checkpoint would free is trusted before it is counted again (the guest keeps writing). */
const COSTS_FRESH_MS = 30_000;

/** RAM states kept per sprite (newest first); older checkpoints keep their disk state only. */
export const DEFAULT_KEEP_RAM = Number(process.env.SPRITELY_KEEP_RAM ?? 8);

export class CheckpointVerbs {
  /** When each sprite's guest last asked for a checkpoint or a restore (the last minute's). */
  private readonly guestAsks = new Map<string, number[]>();
  readonly differ: CheckpointDiff;
  private readonly costs = new Map<string, { at: number; costs: Map<string, number> }>();
  private readonly counting = new Set<string>();

  constructor(
    private readonly ctx: EngineContext,
    private readonly launcher: MachineLaunch,
  ) {
    this.differ = new CheckpointDiff(ctx);
  }

  private subject(name: string): CheckpointSubject {
    const p = spritePaths(this.ctx.layout, name);
    const m = this.ctx.registry.must(name);
    const entry = this.ctx.live.get(name);
    const machine = entry?.machine ?? null;
    const sleepState = !machine && m.status === 'sleeping' && m.sleep && stateExists(m.sleep.file) ? m.sleep.file : null;
    return { name, dir: p.dir, disk: p.disk, machine, sleepState, sleepAttached: m.sleep?.attached, sync: entry ? () => syncGuestQuickly(entry.agent, () => this.ctx.live.guest(name, 3000)) : undefined };
  }

  list(name: string): CheckpointView[] {
    this.ctx.registry.must(name);
    const cached = this.costs.get(name);
    if (!cached || this.ctx.io.now() - cached.at > COSTS_FRESH_MS) this.countCosts(name);
    return checkpointViews(spritePaths(this.ctx.layout, name).dir, { mounted: this.ctx.browse.mounted(name), costs: cached?.costs ?? null });
  }

  /** Counts (in the background) what deleting each checkpoint would free; announces when it changed. */
  private countCosts(name: string): void {
    if (this.counting.has(name)) return;
    this.counting.add(name);
    const disk = spritePaths(this.ctx.layout, name).disk;
    this.ctx.driver.disks
      .snapshotCosts(disk)
      .then((costs) => {
        const before = this.costs.get(name)?.costs;
        this.costs.set(name, { at: this.ctx.io.now(), costs });
        const same = before && before.size === costs.size && [...costs].every(([k, v]) => before.get(k) === v);
        if (!same && this.ctx.registry.find(name)) this.announce(name);
      })
      .catch(() => {})
      .finally(() => this.counting.delete(name));
  }

  private announce(name: string): void {
    this.ctx.checkpointsChanged(name);
  }

  /** Queues the RAM states that are no longer among the newest few for compression. */
  compressOlder(name: string): void {
    const dir = spritePaths(this.ctx.layout, name).dir;
    for (const id of ramToCompress(readTimeline(dir), this.ctx.compressor.keepRecentRaw)) {
      const file = ramFile(dir, id);
      if (completeState(file) === file) this.ctx.compressor.enqueue(file, name);
    }
  }

  /** The checkpoints changed: what they cost is counted again. */
  private changed(name: string): void {
    this.costs.delete(name);
    this.announce(name);
  }

  private find(name: string, id: string): Checkpoint {
    return checkpointOrThrow(name, spritePaths(this.ctx.layout, name).dir, id);
  }

  /** Captures the machine (disk + RAM + devices when awake, disk when stopped) at one instant. */
  async create(name: string, opts: { comment?: string; auto?: boolean } = {}): Promise<{ checkpoint: CheckpointView; timings: Timings }> {
    this.ctx.registry.must(name);
    return this.ctx.locks.run(name, 'checkpointing', async () => {
      const t0 = Date.now();
      const { checkpoint: c } = await this.takeLocked(name, cleanComment(opts.comment), opts.auto ?? false);
      return { checkpoint: this.list(name).find((x) => x.id === c.id)!, timings: { pauseMs: c.pauseMs, totalMs: Date.now() - t0 } };
    });
  }

  private async takeLocked(name: string, comment: string, auto: boolean, guest?: { envRequest?: string }, endingMachine = false): Promise<{ checkpoint: Checkpoint; durable: Promise<void> }> {
    const s = this.subject(name);
    const m = this.ctx.registry.must(name);
    const signature = s.sleepState && m.sleep ? m.sleep.signature : await this.ctx.driver.signature(shapeOf(m), bootFiles(mustImage(this.ctx, m)));
    const { checkpoint: c, diskNow, durable } = await takeCheckpoint(this.ctx.driver.disks, s, {
      comment,
      auto,
      envRequest: guest?.envRequest,
      byGuest: guest !== undefined,
      diskMark: this.ctx.diskMarks.get(name),
      keepRam: DEFAULT_KEEP_RAM,
      createdAt: new Date(this.ctx.io.now()).toISOString(),
      signature,
      cancel: (file) => this.ctx.compressor.cancel(file),
      endingMachine,
    });
    this.ctx.diskMarks.set(name, diskNow);
    this.compressOlder(name);
    const how = s.machine ? ` (paused ${c.pauseMs} ms, RAM ${(c.ramBytes / 2 ** 20).toFixed(0)} MiB)` : s.sleepState ? ' (asleep: its sleep state is the RAM)' : ' (disk only)';
    this.ctx.log(`sprite ${name}: checkpoint ${c.id}${how}${guest ? ', asked from inside' : ''}`);
    this.changed(name);
    return { checkpoint: c, durable };
  }

  /**
   * Brings the machine back to checkpoint `id`: first an automatic checkpoint of the current state
   * (unless `backup` is false), then the disk is reverted and the RAM state restored (or, without
   * one, the machine boots from the restored disk).
   */
  async restore(name: string, id: string, opts: { backup?: boolean; byGuest?: boolean } = {}): Promise<{ sprite: SpriteView; backup: string | null; timings: Timings }> {
    const { registry, live, locks, driver, io, layout, log } = this.ctx;
    registry.must(name);
    this.find(name, id);
    return locks.run(name, 'restoring', async () => {
      const t0 = Date.now();
      const timings: Record<string, number> = {};
      const c = this.find(name, id);
      const p = spritePaths(layout, name);
      // The undo checkpoint leaves the machine paused (it is ended next) and its RAM state's fsync
      // running while the disk is reverted and the checkpoint restored (awaited before returning).
      let backup: Checkpoint | null = null;
      let durable = Promise.resolve();
      if (opts.backup !== false) {
        try {
          ({ checkpoint: backup, durable } = await this.takeLocked(name, cleanComment(`before restoring ${id}`), true, opts.byGuest ? {} : undefined, true));
        } catch (err) {
          // nothing was restored: a machine a failed undo checkpoint left paused runs on
          await live.get(name)?.machine.resume().catch(() => {});
          throw err;
        }
      }
      timings.backupMs = Date.now() - t0;
      registry.replace(withAwakePeriodClosed(this.ctx, registry.must(name)));
      await live.teardown(name, 'quit', { why: `the sprite was restored to ${id}` });
      let t = Date.now();
      await driver.disks.applySnapshot(p.disk, id);
      timings.diskMs = Date.now() - t;
      t = Date.now();
      const m = registry.must(name);
      const image = mustImage(this.ctx, m);
      // A compression of this state finishing now would remove the raw file the restore was given
      // (QEMU reads it only once it runs): it is called off first, so the form chosen stays.
      if (c.memory) this.ctx.compressor.cancel(ramFile(p.dir, id));
      const state = c.memory ? completeState(ramFile(p.dir, id)) : null;
      // A state saved under another device set (an older hypervisor, a sprite made before the
      // machine changed) would not load: the restored disk is booted instead, and the sprite says so.
      const fits = !!state && (!c.signature || c.signature === (await driver.signature(shapeOf(m), bootFiles(image))));
      let note: string | null = state && !fits ? `the RAM state of ${id} does not fit this ${driver.displayName} or device set any more; booted its disk instead (programs that were running are gone, files are kept)` : null;
      let withRam = fits;
      let entry = await this.launcher.launch(name, m, image, withRam ? state! : undefined, withRam ? c.attached : undefined);
      try {
        if (withRam) {
          try {
            await this.launcher.startRestored(entry, timings, t);
            await setGuestClock(entry.agent, io.now());
          } catch (err) {
            await live.teardown(name, 'kill', { why: `the sprite was restored to ${id}` });
            note = `the RAM state of ${id} could not be restored (${(err as Error).message}); booted its disk instead`;
            withRam = false;
            entry = await this.launcher.launch(name, m, image);
          }
        }
        if (!withRam) {
          timings.runningMs = Date.now() - t;
          await entry.agent.ready(await coldBootTimeoutMs(this.ctx, image));
        }
      } catch (err) {
        await live.teardown(name, 'kill');
        await markCrashed(this.ctx, name, `restoring ${id} failed: ${(err as Error).message}`);
        throw new SpritelyError('internal', `Restoring ${id} of "${name}" failed: ${(err as Error).message}`);
      }
      if (note) log(`sprite ${name}: ${note}`);
      this.ctx.browse.afterRestore(name, withRam ? c.attached : undefined);
      // A guest that asked for this checkpoint itself was waiting for the answer at that instant.
      if (withRam && c.envRequest) entry.env.write(formatReply(c.envRequest, { ok: true, text: c.id }));
      this.ctx.diskMarks.set(name, driver.disks.allocatedBytes(p.disk));
      await writeTimeline(p.dir, moveHead(readTimeline(p.dir), id));
      await registry.save({ ...m, status: 'running', lastError: note ? `Restored ${id} without its RAM: ${note}.` : null, sleep: null });
      // restored while asleep: that sleep state is no longer the machine's (a backup keeps its own link)
      if (m.sleep) {
        this.ctx.compressor.cancel(m.sleep.file);
        removeState(m.sleep.file);
      }
      this.changed(name);
      await durable.catch((err: Error) => log(`sprite ${name}: the RAM state of the undo checkpoint ${backup?.id} could not be flushed to disk (${err.message}); it is kept, but a power loss could damage it`));
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
      await this.ctx.browse.assertNotMounted(name, id);
      await deleteCheckpoint(this.ctx.driver.disks, this.subject(name), id, (file) => this.ctx.compressor.cancel(file));
      this.changed(name);
    });
  }

  /**
   * Whether the guest may have what it asks (guest-checkpoint-limits.ts): refused with a sentence
   * for its `=ERR` line and the log; accepted asks are counted.
   */
  private admitGuest(name: string, ask: GuestAsk): void {
    const now = this.ctx.io.now();
    const times = recentAsks(this.guestAsks.get(name) ?? [], now);
    const refusal = refuseGuestAsk(ask, readTimeline(spritePaths(this.ctx.layout, name).dir), times, now, this.ctx.config.guestCheckpointLimits, name);
    if (refusal) {
      this.ctx.log(`sprite ${name}: refused a ${ask.op === 'create' ? 'checkpoint' : 'restore'} asked from inside: ${refusal}`);
      throw new SpritelyError('resource_exhausted', refusal);
    }
    this.guestAsks.set(name, [...times, now]);
  }

  /** What a sprite may ask of the daemon from inside (spritely-env): only about itself, and within its limits. */
  envHandler(name: string): EnvHandler {
    return async (req) => {
      if (req.op === 'checkpoint.create') {
        const c = await this.ctx.locks.run(name, 'checkpointing', async () => {
          this.admitGuest(name, { op: 'create' });
          return (await this.takeLocked(name, cleanComment(req.comment), false, { envRequest: req.id })).checkpoint;
        });
        const view = this.list(name).find((x) => x.id === c.id)!;
        return { text: req.json ? JSON.stringify(view) : c.id };
      }
      if (req.op === 'checkpoint.list') {
        const cps = this.list(name);
        return { text: req.json ? JSON.stringify(cps) : formatTimeline(cps) };
      }
      if (req.op === 'checkpoint.mount') {
        this.find(name, req.checkpoint);
        const r = await this.ctx.locks.run(name, 'mounting a checkpoint', () => this.ctx.browse.mountLocked(name, req.checkpoint));
        return { text: r.path };
      }
      if (req.op === 'checkpoint.unmount') {
        this.find(name, req.checkpoint);
        await this.ctx.locks.run(name, 'unmounting a checkpoint', () => this.ctx.browse.unmountLocked(name, req.checkpoint, { force: req.force }));
        return { text: '' };
      }
      if (req.op === 'checkpoint.diff') {
        const r = await this.differ.diff(name, { from: req.from, to: req.to, paths: req.paths, patch: req.patch });
        return { text: req.json ? terminalSafeJson(r) : formatReport(r) };
      }
      this.find(name, req.checkpoint);
      this.admitGuest(name, { op: 'restore', backup: req.backup !== false });
      return {
        text: `restoring ${req.checkpoint}…`,
        after: () => void this.restore(name, req.checkpoint, { backup: req.backup, byGuest: true }).catch((err) => this.ctx.log(`sprite ${name}: restore from inside failed: ${err.message}`)),
      };
    };
  }
}
