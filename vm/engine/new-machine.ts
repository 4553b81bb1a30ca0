/**
 * New sprites: create and fork, both "a new machine from a saved state", one routine
 * (`newMachine`) with a plan per verb — a create restores the image's golden state onto a new
 * overlay (or takes a warm spare of its shape when one is ready), a fork clones a checkpoint's disk
 * and RAM state — then the machine's own identity, a bigger disk when asked for, and on any failure
 * no trace left. Apart from lifecycle.ts (boot, stop, destroy of sprites that exist) because making
 * a sprite is the longest path in the engine and the one benchmarks time.
 */
import fs from 'node:fs';
import path from 'node:path';
import { checkpointOrThrow, cloneCheckpoint } from '../checkpoints/checkpoint-ops.ts';
import type { MachineShape } from '../driver/driver.ts';
import { SpritelyError, toSpritelyError } from '../errors.ts';
import { ensureGolden, type GoldenRequest } from '../images/golden.ts';
import { bootFiles, type ImageRecord } from '../images/image-store.ts';
import { assertSpriteName } from '../names.ts';
import { DEFAULT_NETWORK, type NetworkPolicy } from '../net/egress-policy.ts';
import { spritePaths, type SpritePaths } from '../paths.ts';
import type { Manifest } from '../store/sprite-manifest.ts';
import { coldBootTimeoutMs, mustImage, type EngineContext } from './context.ts';
import { applyIdentity, growDisk } from './guest-setup.ts';
import type { Started, Timings } from './lifecycle.ts';
import type { LiveMachine } from './live-machines.ts';
import { shapeOf, type MachineLaunch } from './machine-launch.ts';
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

export class NewMachines {
  constructor(
    private readonly ctx: EngineContext,
    private readonly launcher: MachineLaunch,
  ) {}

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
    this.launcher.admit(name, memoryMiB)(); // refuse now, before anything is made; launch checks again
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
          entry = await this.launcher.adoptSpare(name, m, spare);
          lap('spareMs', t);
          await this.launcher.startRestored(entry, timings, t0, () => entry.machine.resume());
          diskBytes = spare.diskBytes;
          timings.spare = 1;
        } else {
          const source = await plan.prepare(p, m, lap);
          let t = Date.now();
          entry = await this.launcher.launch(name, m, source.image, source.restoreFrom ?? undefined, source.attached);
          lap('launchMs', t);
          if (source.restoreFrom) restoredViews = source.attached;
          if (source.restoreFrom) await this.launcher.startRestored(entry, timings, t0);
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
}
