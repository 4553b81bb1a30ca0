/**
 * Sprites coming and going: create and fork (both "a new machine from a saved state": one routine),
 * a cold boot from the disk, stop and destroy — and `launch`, the one way a machine starts (admitted
 * against the memory limit, its runtime file written, adopted as a live machine).
 */
import fs from 'node:fs';
import path from 'node:path';
import { checkpointOrThrow, cloneCheckpoint } from '../checkpoints/checkpoint-ops.ts';
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
}

type NewManifest = Omit<Manifest, 'name' | 'createdAt' | 'hostKeyPub' | 'status' | 'lastError' | 'sleep' | 'usage'>;

interface NewMachinePlan {
  /** Prefix of the error when it fails ("Could not create "x""). */
  what: string;
  manifest: NewManifest;
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
    const { live, registry, config, admission } = this.ctx;
    const awake = live.names().map((n) => ({ name: n, memoryMiB: registry.find(n)?.memoryMiB ?? 0 }));
    return admission.reserve(name, memoryMiB, config.memoryLimitMiB, awake);
  }

  /** Starts a machine for a sprite (booting, or restoring `restoreFrom`) and takes ownership of it. */
  async launch(name: string, m: Manifest, image: ImageRecord, restoreFrom?: string): Promise<LiveMachine> {
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
      });
      const runtime: Runtime = { startedAt: new Date(io.now()).toISOString(), accel: accel.name, sshPort, urlHostPort, machine: machine.handle };
      try {
        await writeRuntime(p.runtime, runtime);
      } catch (err) {
        await machine.kill();
        throw err;
      }
      return live.adopt(name, machine, runtime, m.hostKeyPub);
    } finally {
      release();
    }
  }

  async ensureImage(id?: string, opts: { force?: boolean } = {}): Promise<ImageRecord> {
    return this.ctx.images.ensure(id, (p) => this.ctx.imageProgress(p), opts);
  }

  private goldenRequest(image: ImageRecord, shape: MachineShape): GoldenRequest {
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
    const { registry, layout, io, images, driver } = this.ctx;
    const name = req.name;
    assertSpriteName(name);
    const memoryMiB = intInRange('memoryMiB', req.memoryMiB ?? DEFAULTS.memoryMiB, 128, 65536);
    const cpus = intInRange('cpus', req.cpus ?? DEFAULTS.cpus, 1, 64);
    // Sprites share the golden disk, whose filesystem already spans the default size (sparse).
    const diskGiB = intInRange('diskGiB', req.diskGiB ?? DEFAULTS.diskGiB, DEFAULTS.diskGiB, 16384);
    if (registry.has(name) || fs.existsSync(spritePaths(layout, name).dir)) throw alreadyExists(name);
    const cores = io.cpuCores();
    if (cpus > cores) throw new SpritelyError('invalid_argument', `This computer has ${cores} CPU cores; a sprite can have at most ${cores} (asked for ${cpus}).`);
    this.admit(name, memoryMiB)(); // refuse now, before anything is made; launch checks again
    return this.newMachine(name, {
      what: `Could not create "${name}"`,
      manifest: { version: 1, image: req.image ?? images.defaultImageId(), memoryMiB, cpus, diskGiB, fsGrown: true, idleTimeoutSec: null, urlPort: 8080, network: req.network ?? DEFAULT_NETWORK },
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
        const withRam = await locks.run(source, 'forking', () => cloneCheckpoint(driver.disks, { name: source, dir: sp.dir, disk: sp.disk }, id, { disk: p.disk, ram }));
        lap('diskMs', t);
        return { image: mustImage(this.ctx, m), restoreFrom: withRam ? ram : null, diskBytes: m.diskGiB * GiB, consumed: ram };
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
        const source = await plan.prepare(p, m, lap);
        let t = Date.now();
        const entry = await this.launch(name, m, source.image, source.restoreFrom ?? undefined);
        lap('launchMs', t);
        if (source.restoreFrom) {
          t = Date.now();
          await entry.machine.waitRunning(this.ctx.timeouts.restoreMs);
          lap('restoreMs', t);
        }
        timings.runningMs = Date.now() - t0;
        t = Date.now();
        const guest = await entry.guest.ready(source.restoreFrom ? this.ctx.timeouts.guestAfterRestoreMs : await coldBootTimeoutMs(this.ctx, source.image));
        lap('agentMs', t);
        t = Date.now();
        // Start the SSH link now: it pins the new host key, so attempts before apply-identity has
        // installed it are refused and retried, and the handshake overlaps the rest of the fix-ups.
        entry.ssh.ready(90_000).catch(() => {});
        await applyIdentity(guest, { name, hostKey, authorizedKey: this.ctx.clientKey().publicKey, nowMs: io.now() });
        lap('identityMs', t);
        if (m.diskGiB * GiB > source.diskBytes) {
          t = Date.now();
          await growDisk(entry.machine, guest, m.diskGiB * GiB);
          lap('resizeMs', t);
        }
        if (source.consumed) fs.rmSync(source.consumed, { force: true });
        m = { ...m, status: 'running' };
        await registry.save(m);
        entry.ssh.ready(60_000).catch(() => {});
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
    await live.teardown(name, 'kill');
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
      const guest = await entry.guest.ready(await coldBootTimeoutMs(this.ctx, image));
      if (!m.fsGrown) await growFilesystem(guest);
    } catch (err) {
      await live.teardown(name, 'kill');
      throw new SpritelyError('internal', `Sprite "${name}" did not come up: ${(err as Error).message}. Its logs are in ${p.dir}.`);
    }
    m = { ...m, status: 'running', lastError: null, fsGrown: true };
    await registry.save(m);
    activity.touch(name);
    entry.ssh.ready(60_000).catch(() => {});
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
        if (m.sleep) fs.rmSync(m.sleep.file, { force: true });
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
    await this.ctx.live.teardown(name, 'quit');
    if (closed) await this.ctx.registry.save({ ...closed, status: 'stopped', lastError: null });
  }

  async destroy(name: string): Promise<void> {
    const { registry, live, locks, layout, driver } = this.ctx;
    registry.must(name);
    await locks.run(name, 'destroying', async () => {
      await live.teardown(name, 'kill');
      const p = spritePaths(layout, name);
      fs.rmSync(p.dir, { recursive: true, force: true });
      fs.rmSync(p.egressSocket, { force: true });
      driver.release(name);
      registry.forget(name);
      this.ctx.removed(name);
    });
  }
}
