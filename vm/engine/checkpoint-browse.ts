/**
 * Checkpoints shown inside a running sprite, read-only, at /.spritely/checkpoints/ID, so `diff`,
 * `cp` and an agent's own tools work on them. Mounting = the driver attaches the checkpoint as a
 * disk (`Machine.attachSnapshot`), then the guest mounts it (vm/checkpoints/guest-view-script.ts,
 * through its control channel). At most `max` at once (SPRITELY_MAX_MOUNTS, default 4): one more
 * unmounts the least recently used one that nothing inside uses.
 *
 * The rules around the rest of the machine's life:
 * - a mounted checkpoint cannot be deleted (its disk is being read), and says so;
 * - a checkpoint, a sleep or a fork of a machine with checkpoints mounted keeps working: the saved
 *   state records the views (`attached`) and every restore of it re-creates their devices without
 *   a backend and unplugs them before the guest runs; the guest's stale mounts are then lazily
 *   unmounted (`afterRestore`), so after a restore, a wake or a fork nothing is mounted;
 * - the live machine keeps its mounts through a checkpoint (nothing in it changes);
 * - stop, restore and sleep end the machine, and the driver ends its views with it.
 */
import { checkpointOrThrow } from '../checkpoints/checkpoint-ops.ts';
import { VIEW_ROOT, viewCommand } from '../checkpoints/guest-view-script.ts';
import type { Machine } from '../driver/driver.ts';
import { SpritelyError } from '../errors.ts';
import { spritePaths } from '../paths.ts';
import type { CheckpointViews, EngineContext } from './context.ts';
import { DEFAULT_MAX_MOUNTS } from './daemon-config.ts';


export function mountPath(id: string): string {
  return `${VIEW_ROOT}/${id}`;
}

export class CheckpointBrowse implements CheckpointViews {
  /** Per sprite: the machine the mounts belong to and their ids, least recently used first. */
  private readonly mounts = new Map<string, { machine: Machine; ids: string[] }>();

  constructor(
    private readonly ctx: EngineContext,
    /** How many may be mounted at once (the daemon's setting, read at each mount). */
    private readonly maxMounts: () => number = () => DEFAULT_MAX_MOUNTS,
  ) {}

  /** The checkpoints mounted in `name`'s running machine (none once that machine is gone). */
  mounted(name: string): string[] {
    const m = this.mounts.get(name);
    const machine = this.ctx.live.get(name)?.machine;
    return m && machine && m.machine === machine ? [...m.ids] : [];
  }

  private set(name: string, machine: Machine, ids: string[]): void {
    if (ids.length) this.mounts.set(name, { machine, ids });
    else this.mounts.delete(name);
    this.ctx.checkpointsChanged(name);
  }

  /** A re-attached machine (daemon restart): what it has attached is what is mounted. */
  async adopt(name: string): Promise<void> {
    const machine = this.ctx.live.get(name)?.machine;
    if (!machine) return;
    const ids = await machine.attachedSnapshots().catch(() => []);
    if (ids.length) this.set(name, machine, ids);
  }

  private async guestRun(name: string, args: string[]): Promise<{ exitCode: number; stdout: string; stderr: string }> {
    const guest = await this.ctx.live.guest(name, 15_000);
    const cmd = viewCommand(...args);
    const r = await guest.exec(cmd.path, cmd.args, { timeoutMs: 60_000 });
    return { exitCode: r.exitCode, stdout: r.stdout.toString('utf8', 0, 4096), stderr: r.stderr.toString('utf8', 0, 4096).trim() };
  }

  /** Mounts checkpoint `id` inside the running sprite (wake it first). Returns where. */
  async mount(name: string, id: string): Promise<{ path: string; mounted: string[] }> {
    this.ctx.registry.must(name);
    checkpointOrThrow(name, spritePaths(this.ctx.layout, name).dir, id);
    return this.ctx.locks.run(name, 'mounting a checkpoint', () => this.mountLocked(name, id));
  }

  async mountLocked(name: string, id: string): Promise<{ path: string; mounted: string[] }> {
    checkpointOrThrow(name, spritePaths(this.ctx.layout, name).dir, id);
    const entry = this.ctx.live.get(name);
    if (!entry) throw new SpritelyError('failed_precondition', `Sprite "${name}" is ${this.ctx.registry.view(name).state}; checkpoints are shown inside a running sprite (start or wake it first).`);
    const machine = entry.machine;
    let ids = this.mounted(name).filter((x) => x !== id);
    while (ids.length >= this.maxMounts()) {
      let evicted = false;
      for (const old of ids) {
        const r = await this.guestRun(name, ['umount', old]);
        if (r.exitCode === 16) continue;
        await machine.detachSnapshot(old);
        ids = ids.filter((x) => x !== old);
        this.ctx.log(`sprite ${name}: unmounted ${old} to make room for ${id} (at most ${this.maxMounts()} at once)`);
        evicted = true;
        break;
      }
      if (!evicted) {
        throw new SpritelyError('resource_exhausted', `${ids.length} checkpoints are mounted in "${name}" (the most at once) and each is in use inside it; unmount one first: spritely checkpoint unmount ${name} ${ids[0]}`);
      }
    }
    const { serial } = await machine.attachSnapshot(id);
    const r = await this.guestRun(name, ['mount', id, serial]).catch((err: Error) => ({ exitCode: -1, stdout: '', stderr: err.message }));
    if (r.exitCode !== 0) {
      await machine.detachSnapshot(id).catch(() => {});
      this.set(name, machine, ids);
      throw new SpritelyError('internal', `Could not mount ${id} inside "${name}": ${r.stderr || `exit ${r.exitCode}`}`);
    }
    ids.push(id);
    this.set(name, machine, ids);
    return { path: mountPath(id), mounted: [...ids] };
  }

  /** Unmounts `id` inside the sprite and unplugs it. `force`: even while in use (it goes once nothing uses it). */
  async unmount(name: string, id: string, opts: { force?: boolean } = {}): Promise<{ mounted: string[] }> {
    this.ctx.registry.must(name);
    return this.ctx.locks.run(name, 'unmounting a checkpoint', () => this.unmountLocked(name, id, opts));
  }

  async unmountLocked(name: string, id: string, opts: { force?: boolean } = {}): Promise<{ mounted: string[] }> {
    const entry = this.ctx.live.get(name);
    if (!entry) return { mounted: [] };
    const attached = await entry.machine.attachedSnapshots();
    if (!attached.includes(id)) return { mounted: this.mounted(name) };
    const r = await this.guestRun(name, ['umount', id, ...(opts.force ? ['lazy'] : [])]).catch((err: Error) => ({ exitCode: -1, stdout: '', stderr: err.message }));
    if (r.exitCode === 16) throw new SpritelyError('failed_precondition', `Checkpoint ${id} is in use inside "${name}" (something has files open or its working directory under ${mountPath(id)}); close it, or unmount with --force (it is detached at once and goes away when nothing uses it).`);
    if (r.exitCode !== 0 && !opts.force) throw new SpritelyError('internal', `Could not unmount ${id} inside "${name}": ${r.stderr || `exit ${r.exitCode}`}`);
    await entry.machine.detachSnapshot(id);
    const ids = this.mounted(name).filter((x) => x !== id);
    this.set(name, entry.machine, ids);
    return { mounted: ids };
  }

  /** Refuses to delete a checkpoint the running machine is reading. */
  async assertNotMounted(name: string, id: string): Promise<void> {
    const machine = this.ctx.live.get(name)?.machine;
    if (!machine) return;
    const attached = await machine.attachedSnapshots().catch(() => this.mounted(name));
    if (attached.includes(id)) {
      throw new SpritelyError('failed_precondition', `Checkpoint ${id} of "${name}" is mounted inside the sprite at ${mountPath(id)}, so it cannot be deleted now. Unmount it first: spritely checkpoint unmount ${name} ${id} (inside: spritely-env checkpoint unmount ${id}).`);
    }
  }

  /**
   * After a machine was restored from a state saved with views attached (restore, wake, fork): the
   * driver already unplugged their devices; the guest still lists the mounts. Unmounted lazily, in
   * the background (nothing waits on it).
   */
  afterRestore(name: string, attached: string[] | undefined): void {
    this.mounts.delete(name);
    if (!attached?.length) return;
    this.guestRun(name, ['reset'])
      .then((r) => this.ctx.log(`sprite ${name}: ${r.exitCode === 0 ? `unmounted the checkpoints its saved state had mounted (${attached.join(', ')})` : `could not clear the old mounts: ${r.stderr}`}`))
      .catch((err: Error) => this.ctx.log(`sprite ${name}: could not clear the old mounts: ${err.message}`));
  }
}
