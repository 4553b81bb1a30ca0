/**
 * Sprites coming and going: create and fork (both "a new machine from a saved state": one routine;
 * a create takes a warm spare when one of its shape is ready), a cold boot from the disk, stop and
 * destroy — and `launch`, the one way a machine starts (admitted against the memory limit, its
 * runtime file written, adopted as a live machine), with `startRestored`, how a machine restored
 * from a saved state is let run: the guest agent's HELLO goes out before the guest runs, so the
 * agent answers the instant it does.
 */
import fs from 'node:fs';
import path from 'node:path';
import { checkpointOrThrow, cloneCheckpoint } from '../checkpoints/checkpoint-ops.ts';
import { removeState } from '../checkpoints/state-files.ts';
import type { MachineShape } from '../driver/driver.ts';
import { SpritelyError, toSpritelyError } from '../errors.ts';
import { ensureGolden, type GoldenRequest } from '../images/golden.ts';
import type { ImageRecord } from '../images/image-store.ts';
import { assertSpriteName } from '../names.ts';
import { DEFAULT_NETWORK, type NetworkPolicy } from '../net/egress-policy.ts';
import { spritePaths, type SpritePaths } from '../paths.ts';
import { writeRuntime, type Manifest, type Runtime } from '../store/sprite-manifest.ts';
import { bootFiles, coldBootTimeoutMs, mustImage, withAwakePeriodClosed, type EngineContext } from './context.ts';
import { applyIdentity, growDisk, growFilesystem, syncGuest } from './guest-setup.ts';
import type { LiveMachine } from './live-machines.ts';
import type { SpriteView } from './sprite-view.ts';
import type { Spare } from './warm-spares.ts';

const GiB = 1024 ** 3;

export const DEFAULTS = { memoryMiB: 512, cpus: 1, diskGiB: 100 } as const;

export interface CreateRequest {
  name: string;
  image?: string;
  memoryMiB?: number;
  cpus?: number;
  diskGiB?: number;
  network?: NetworkPolicy;
}

export interface Timings {
  totalMs: number;
  [phase: string]: number;
}

export interface Started {
  sprite: SpriteView;
  timings: Timings;
}

/** Where a new machine comes from: a disk prepared in its dir, and the RAM state to restore (or none: boot). */
interface Source {
  image: ImageRecord;
  restoreFrom: string | null;
  /** Virtual size of the prepared disk (it is grown when the sprite asks for more). */
  diskBytes: number;
  /** A file to remove once the machine runs (a hard link to the state it restored). */
  consumed?: string;
  /** Snapshot views the restored state was saved with. */
  attached?: string[];
}

type NewManifest = Omit<Manifest, 'name' | 'createdAt' | 'hostKeyPub' | 'status' | 'lastError' | 'sleep' | 'usage'>;

interface NewMachinePlan {
  /** Prefix of the error when it fails ("Could not create "x""). */
  what: string;
  manifest: NewManifest;
  /** A warm spare to take instead of preparing and launching (create only). */
  spare?: () => Spare | null;
  prepare(p: SpritePaths, m: Manifest, lap: (key: string, since: number) => void): Promise<Source>;
}

export function alreadyExists(name: string): SpritelyError {
  return new SpritelyError('already_exists', `A sprite named "${name}" already exists.`);
}

function intInRange(field: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new SpritelyError('invalid_argument', `${field} must be a whole number from ${min} to ${max} (got ${JSON.stringify(value)}).`);
  }
  return value;
}

export function shapeOf(m: Pick<Manifest, 'memoryMiB' | 'cpus'>): MachineShape {
  return { memoryMiB: m.memoryMiB, cpus: m.cpus };
}

export class Lifecycle {
  constructor(private readonly ctx: EngineContext) {}

  /**
   * Admits `name` against the memory limit (or throws, naming what to sleep); the RAM stays
   * reserved until the returned function is called.
   */
  admit(name: string, memoryMiB: number): () => void {
    const { live, registry, config, admission, spares } = this.ctx;
    const awake = () => [...live.names().map((n) => ({ name: n, memoryMiB: registry.find(n)?.memoryMiB ?? 0 })), ...spares.reserved()];
    try {
      return admission.reserve(name, memoryMiB, config.memoryLimitMiB, awake());
    } catch (err) {
      // warm spares are the first to go: a sprite that needs the RAM gets it
      if (!spares.reserved().length) throw err;
      spares.discardAll(`"${name}" needs the memory`);
      return admission.reserve(name, memoryMiB, config.memoryLimitMiB, awake());
    }
  }

  /**
   * Lets a machine restored from a saved state (or a paused spare) run: the agent's HELLO goes out
   * first, so it is waiting in the port when the guest runs; then the agent's answer (a resume of
   * its sessions, after a sleep). Records `restoreMs` (the hypervisor's part), `runningMs` (since
   * `t0`) and `agentMs`.
   */
  async startRestored(entry: LiveMachine, timings: Record<string, number>, t0: number, start: () => Promise<void> = () => entry.machine.waitRunning(this.ctx.timeouts.restoreMs)): Promise<void> {
    let t = Date.now();
    let ran!: () => void;
    let failed!: (e: Error) => void;
    const running = new Promise<void>((resolve, reject) => ((ran = resolve), (failed = reject)));
    running.catch(() => {});
    const hello = new Promise<void>((resolve) => {
      entry.agent.once('hello', resolve);
      setTimeout(resolve, 250).unref();
    });
    const ready = entry.agent.ready(this.ctx.timeouts.restoreMs + this.ctx.timeouts.guestAfterRestoreMs, { after: running });
    ready.catch(() => {});
    await hello;
    try {
      await start();
      ran();
    } catch (err) {
      failed(err as Error);
      throw err;
    }
    timings.restoreMs = Date.now() - t;
    timings.runningMs = Date.now() - t0;
    t = Date.now();
    await ready;
    timings.agentMs = Date.now() - t;
  }

  /**
   * Starts a machine for a sprite (booting, or restoring `restoreFrom`, saved with the snapshot
   * views `restoreAttached` attached) and takes ownership of it.
   */
  async launch(name: string, m: Manifest, image: ImageRecord, restoreFrom?: string, restoreAttached?: string[]): Promise<LiveMachine> {
    const { driver, io, live, layout } = this.ctx;
    const release = this.admit(name, m.memoryMiB);
    try {
      const p = spritePaths(layout, name);
      const accel = await driver.accelerator(bootFiles(image));
      const sshPort = await io.freePort();
      const urlHostPort = await io.freePort();
      const machine = await driver.launch({
        id: name,
        dir: p.dir,
        disk: p.disk,
        shape: shapeOf(m),
        boot: bootFiles(image),
        forwards: [
          { hostPort: sshPort, guestPort: 22 },
          { hostPort: urlHostPort, guestPort: m.urlPort },
        ],
        egressSocket: p.egressSocket,
        restoreFrom,
        ...(restoreFrom && restoreAttached?.length ? { restoreAttached } : {}),
      });
      const runtime: Runtime = { startedAt: new Date(io.now()).toISOString(), accel: accel.name, sshPort, urlHostPort, machine: machine.handle };
      try {
        await writeRuntime(p.runtime, runtime);
      } catch (err) {
        await machine.kill();
        throw err;
      }
      return live.adopt(name, machine, runtime);
    } finally {
      release();
    }
  }

  /**
   * A warm spare becomes sprite `name`: its disk and files move into the sprite's dir, its runtime
   * file is written, and it is adopted (still paused). Admitted like a launch: the spare's RAM
   * was counted as a spare's until now.
   */
  private async adoptSpare(name: string, m: Manifest, spare: Spare): Promise<LiveMachine> {
    const { io, live, layout } = this.ctx;
    const release = this.admit(name, m.memoryMiB);
    try {
      const p = spritePaths(layout, name);
      await spare.machine.rehome({ id: name, dir: p.dir, disk: p.disk });
      fs.rmSync(spare.dir, { recursive: true, force: true });
      const runtime: Runtime = {
        startedAt: new Date(io.now()).toISOString(),
        accel: spare.accel,
        sshPort: spare.sshPort,
        urlHostPort: spare.urlHostPort,
        machine: spare.machine.handle,
        egressSocket: spare.egressSocket,
      };
      try {
        await writeRuntime(p.runtime, runtime);
      } catch (err) {
        await spare.machine.kill();
        throw err;
      }
      return live.adopt(name, spare.machine, runtime);
    } finally {
      release();
    }
  }

  async ensureImage(id?: string, opts: { force?: boolean } = {}): Promise<ImageRecord> {
    return this.ctx.images.ensure(id, (p) => this.ctx.imageProgress(p), opts);
  }

  goldenRequest(image: ImageRecord, shape: MachineShape): GoldenRequest {
    const { driver, layout, log } = this.ctx;
    return {
      driver,
      imageId: image.id,
      imageDir: image.dir,
      baseDisk: image.baseDisk,
      boot: bootFiles(image),
      diskVirtualBytes: DEFAULTS.diskGiB * GiB,
      shape,
      runDir: layout.runDir,
      log,
      onProgress: (p) => this.ctx.imageProgress({ image: image.id, ...p }),
    };
  }

  async create(req: CreateRequest): Promise<Started> {
    const { registry, layout, io, images, driver, spares } = this.ctx;
    const name = req.name;
    assertSpriteName(name);
    const memoryMiB = intInRange('memoryMiB', req.memoryMiB ?? DEFAULTS.memoryMiB, 128, 65536);
    const cpus = intInRange('cpus', req.cpus ?? DEFAULTS.cpus, 1, 64);
    // Sprites share the golden disk, whose filesystem already spans the default size (sparse).
    const diskGiB = intInRange('diskGiB', req.diskGiB ?? DEFAULTS.diskGiB, DEFAULTS.diskGiB, 16384);
    if (registry.has(name) || fs.existsSync(spritePaths(layout, name).dir)) throw alreadyExists(name);
    const cores = io.cpuCores();
    if (cpus > cores) throw new SpritelyError('invalid_argument', `This computer has ${cores} CPU cores; a sprite can have at most ${cores} (asked for ${cpus}).`);
    const imageId = req.image ?? images.defaultImageId();
    const shape = { image: imageId, memoryMiB, cpus };
    this.admit(name, memoryMiB)(); // refuse now, before anything is made; launch checks again
    const started = await this.newMachine(name, {
      what: `Could not create "${name}"`,
      manifest: { version: 1, image: imageId, memoryMiB, cpus, diskGiB, fsGrown: true, idleTimeoutSec: null, urlPort: 8080, network: req.network ?? DEFAULT_NETWORK },
      spare: () => spares.take(shape),
      prepare: async (p, m, lap) => {
        let t = Date.now();
        const image = await this.ensureImage(req.image);
        lap('imageMs', t);
        t = Date.now();
        const golden = await ensureGolden(this.goldenRequest(image, shapeOf(m)));
        lap('goldenMs', t);
        t = Date.now();
        await driver.disks.createOverlay({ file: p.disk, backing: golden.disk, virtualBytes: golden.diskVirtualBytes });
        fs.chmodSync(p.disk, 0o600);
        lap('overlayMs', t);
        return { image, restoreFrom: golden.stateFile, diskBytes: golden.diskVirtualBytes };
      },
    });
    // the next create of this shape finds a machine waiting (made in the background, when there is room)
    spares.want(shape);
    return started;
  }

  /** A new, independent sprite from checkpoint `id` of `source`, with its own identity. */
  async fork(source: string, id: string, name: string): Promise<Started> {
    const { registry, layout, locks, driver } = this.ctx;
    const src = registry.must(source);
    assertSpriteName(name);
    const sp = spritePaths(layout, source);
    checkpointOrThrow(source, sp.dir, id);
    if (registry.has(name) || fs.existsSync(spritePaths(layout, name).dir)) throw alreadyExists(name);
    const { name: _n, createdAt: _c, hostKeyPub: _h, status: _s, lastError: _l, sleep: _z, usage: _u, ...inherited } = src;
    return this.newMachine(name, {
      what: `Could not fork ${source}@${id} into "${name}"`,
      manifest: inherited,
      prepare: async (p, m, lap) => {
        const t = Date.now();
        const ram = path.join(p.dir, 'fork-source.state');
        const cloned = await locks.run(source, 'forking', () => cloneCheckpoint(driver.disks, { name: source, dir: sp.dir, disk: sp.disk }, id, { disk: p.disk, ram }));
        lap('diskMs', t);
        const image = mustImage(this.ctx, m);
        // a state saved under another device set would not load: the fork boots the copied disk instead
        const fits = !!cloned && (!cloned.signature || cloned.signature === (await driver.signature(shapeOf(m), bootFiles(image))));
        return { image, restoreFrom: fits ? cloned!.state : null, diskBytes: m.diskGiB * GiB, consumed: cloned?.state, attached: cloned?.attached };
      },
    });
  }

  /**
   * Create and fork: a new sprite dir and manifest, a disk and a state from `plan.prepare`, a machine
   * restored from it (or booted), its own identity, and, when asked for, a bigger disk. A failure
   * anywhere removes every trace: a sprite that never finished promised nothing to anyone.
   */
  private newMachine(name: string, plan: NewMachinePlan): Promise<Started> {
    const { registry, layout, io, locks, log } = this.ctx;
    return locks.run(name, 'creating', async () => {
      // Checked again under the lock: a create or fork of the same name queued behind another one
      // finds the name taken (409) and never touches what the other made.
      const p = spritePaths(layout, name);
      if (registry.has(name)) throw alreadyExists(name);
      try {
        fs.mkdirSync(p.dir, { mode: 0o700 });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw alreadyExists(name);
        throw toSpritelyError(err);
      }
      const t0 = Date.now();
      const timings: Record<string, number> = {};
      const lap = (key: string, since: number) => (timings[key] = Date.now() - since);
      const hostKey = io.hostKey(`root@${name}`);
      let m: Manifest = {
        ...plan.manifest,
        name,
        createdAt: new Date(io.now()).toISOString(),
        hostKeyPub: hostKey.publicKey,
        status: 'creating',
        lastError: null,
        sleep: null,
        usage: { awakeSeconds: 0, cpuSeconds: 0, lastActiveAt: null },
      };
      try {
        await registry.save(m);
        const spare = plan.spare?.() ?? null;
        let entry: LiveMachine;
        let diskBytes: number;
        let consumed: string | undefined;
        let restoredViews: string[] | undefined;
        if (spare) {
          // a machine restored from the golden state ahead of time, paused: it only needs its identity
          let t = Date.now();
          entry = await this.adoptSpare(name, m, spare);
          lap('spareMs', t);
          await this.startRestored(entry, timings, t0, () => entry.machine.resume());
          diskBytes = spare.diskBytes;
          timings.spare = 1;
        } else {
          const source = await plan.prepare(p, m, lap);
          let t = Date.now();
          entry = await this.launch(name, m, source.image, source.restoreFrom ?? undefined, source.attached);
          lap('launchMs', t);
          if (source.restoreFrom) restoredViews = source.attached;
          if (source.restoreFrom) await this.startRestored(entry, timings, t0);
          else {
            timings.runningMs = Date.now() - t0;
            t = Date.now();
            await entry.agent.ready(await coldBootTimeoutMs(this.ctx, source.image));
            lap('agentMs', t);
          }
          diskBytes = source.diskBytes;
          consumed = source.consumed;
        }
        timings.readyMs = Date.now() - t0;
        const wanted = m.diskGiB * GiB;
        let t = Date.now();
        if (wanted > diskBytes) {
          await growDisk(entry.machine, wanted);
          lap('resizeMs', t);
          t = Date.now();
        }
        const applied = await applyIdentity(entry.agent, { name, hostKey, authorizedKey: this.ctx.clientKey().publicKey, nowMs: io.now(), diskBytes: wanted > diskBytes ? wanted : undefined });
        lap('identityMs', t);
        timings.identityGuestMs = Math.round(applied.ms);
        this.ctx.browse.afterRestore(name, restoredViews);
        if (consumed) fs.rmSync(consumed, { force: true });
        m = { ...m, status: 'running' };
        await registry.save(m);
      } catch (err) {
        throw await this.discardUnfinished(name, err, plan.what);
      }
      timings.totalMs = Date.now() - t0;
      log(`sprite ${name}: created in ${timings.totalMs} ms (${JSON.stringify(timings)})`);
      return { sprite: registry.view(name), timings: timings as Timings };
    });
  }

  /** A create or fork that failed promised nothing: remove every trace and say why. */
  private async discardUnfinished(name: string, err: unknown, what: string): Promise<SpritelyError> {
    const { live, registry, layout, driver } = this.ctx;
    await live.teardown(name, 'kill', { why: 'the sprite could not be made' });
    registry.forget(name);
    fs.rmSync(spritePaths(layout, name).dir, { recursive: true, force: true });
    driver.release(name);
    this.ctx.removed(name);
    const e = toSpritelyError(err);
    return new SpritelyError(e.code, `${what}: ${e.message}`);
  }

  /** Boots a sprite from its disk (a cold boot). Runs under the sprite's lock. */
  async bootLocked(name: string): Promise<Started> {
    const { registry, live, layout, activity } = this.ctx;
    const t0 = Date.now();
    let m = registry.must(name);
    if (m.status === 'running' && live.get(name)) return { sprite: registry.view(name), timings: { totalMs: 0 } };
    const image = mustImage(this.ctx, m);
    const p = spritePaths(layout, name);
    if (!fs.existsSync(p.disk)) throw new SpritelyError('failed_precondition', `The disk of sprite "${name}" is missing (${p.disk}).`);
    const entry = await this.launch(name, m, image);
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
      driver.release(name);
      registry.forget(name);
      this.ctx.removed(name);
    });
  }
}
