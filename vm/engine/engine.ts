/**
 * The engine: the one owner of sprites, and the only thing the API, the URL proxy and the relay
 * link talk to. This class is the facade: it builds the engine's parts around a driver and routes
 * each public verb to the module that owns it. Every change to a sprite runs under that sprite's
 * lock, ends in an atomically written manifest, and is announced as an event.
 *
 * docs/architecture.md has the module map: which file owns which concept.
 */
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import type { CheckpointView } from '../checkpoints/checkpoint-ops.ts';
import type { Accelerator, Driver, Machine } from '../driver/driver.ts';
import { SpritelyError } from '../errors.ts';
import { ImageStore, type ImageProgress, type ImageRecord } from '../images/image-store.ts';
import type { NetworkPolicy } from '../net/egress-policy.ts';
import { ensureLayout, type Layout } from '../paths.ts';
import type { KeyPair } from '../ssh/keys.ts';
import { SpriteLocks } from '../store/sprite-lock.ts';
import { Admission } from './admission.ts';
import { CheckpointVerbs } from './checkpoint-verbs.ts';
import { bootFiles, DEFAULT_TIMEOUTS, type EngineContext, type EngineTimeouts } from './context.ts';
import { DaemonConfig, type ConfigView } from './daemon-config.ts';
import { realIo, type EngineIo, type SshChannels } from './engine-io.ts';
import { Activity, idleSprites } from './idle.ts';
import { Lifecycle, type CreateRequest, type Started, type Timings } from './lifecycle.ts';
import { LiveMachines } from './live-machines.ts';
import { recoverSprite } from './recovery.ts';
import { MachineWatch } from './machine-watch.ts';
import { SleepWake } from './sleep-wake.ts';
import { SpriteSettings } from './sprite-settings.ts';
import { SpriteRegistry } from './sprite-registry.ts';
import type { SpriteView } from './sprite-view.ts';

export type { CheckpointView, CreateRequest, SpriteView, Timings };
export type { SpriteState } from './sprite-view.ts';
export type { SpriteUsage } from './metering.ts';
export { DEFAULTS } from './lifecycle.ts';

export interface EngineEvents {
  sprite: [SpriteView];
  checkpoints: [string, CheckpointView[]];
  removed: [string];
  imageProgress: [ImageProgress];
  log: [string];
}

export interface EngineOptions {
  driver: Driver;
  /** The engine's other I/O; the real one unless a spec passes fakes. */
  io?: EngineIo;
  images?: ImageStore;
  timeouts?: Partial<EngineTimeouts>;
}

export class Engine extends EventEmitter<EngineEvents> {
  readonly locks: SpriteLocks;
  readonly images: ImageStore;
  readonly driver: Driver;
  private readonly ctx: EngineContext;
  private readonly registry: SpriteRegistry;
  private readonly live: LiveMachines;
  private readonly activity: Activity;
  private readonly config: DaemonConfig;
  private readonly lifecycle: Lifecycle;
  private readonly sleepWake: SleepWake;
  private readonly checkpoints: CheckpointVerbs;
  private readonly settings: SpriteSettings;
  private readonly watch: MachineWatch;
  private stopIdleLoop: (() => void) | null = null;
  private clientKeyPair: KeyPair | null = null;

  constructor(
    readonly layout: Layout,
    opts: EngineOptions,
  ) {
    super();
    const io = opts.io ?? realIo;
    this.driver = opts.driver;
    this.images = opts.images ?? new ImageStore(layout.imagesDir, (m) => this.log(m), opts.driver.disks);
    this.locks = new SpriteLocks((name) => this.registry.announce(name));
    this.activity = new Activity(() => io.now());
    this.config = new DaemonConfig(layout.configFile, () => io.hostMemoryMiB());
    this.live = new LiveMachines(layout, io, () => this.clientKey(), {
      exited: (name, reason, detail) => void this.watch.exited(name, reason, detail),
      poweredOff: (name, machine) => this.watch.poweredOff(name, machine),
      sshStuck: (name) => this.watch.sshStuck(name),
      envHandler: (name) => this.checkpoints.envHandler(name),
      policy: (name) => this.registry.find(name)?.network ?? { mode: 'none', allow: [] },
      touch: (name) => this.activity.touch(name),
      log: (msg) => this.log(msg),
    });
    this.registry = new SpriteRegistry({ layout, disks: this.driver.disks, live: this.live, locks: this.locks, activity: this.activity, now: () => io.now(), changed: (v) => this.emit('sprite', v) });
    this.ctx = {
      timeouts: { ...DEFAULT_TIMEOUTS, ...opts.timeouts },
      layout,
      driver: this.driver,
      io,
      images: this.images,
      locks: this.locks,
      registry: this.registry,
      live: this.live,
      activity: this.activity,
      config: this.config,
      admission: new Admission(),
      diskMarks: new Map(),
      clientKey: () => this.clientKey(),
      log: (msg) => this.log(msg),
      removed: (name) => this.emit('removed', name),
      checkpointsChanged: (name) => this.emit('checkpoints', name, this.checkpoints.list(name)),
      imageProgress: (p) => this.emit('imageProgress', p),
    };
    this.lifecycle = new Lifecycle(this.ctx);
    this.sleepWake = new SleepWake(this.ctx, this.lifecycle);
    this.checkpoints = new CheckpointVerbs(this.ctx, this.lifecycle);
    this.settings = new SpriteSettings(this.ctx);
    this.watch = new MachineWatch(this.ctx, this.lifecycle);
  }

  log(msg: string): void {
    this.emit('log', msg);
  }

  private clientKey(): KeyPair {
    this.clientKeyPair ??= this.ctx.io.clientKey(this.layout.keysDir);
    return this.clientKeyPair;
  }

  /** Loads every sprite from disk, re-attaches to the machines still running, and finishes what a killed daemon left half-done. */
  async init(): Promise<void> {
    ensureLayout(this.layout);
    this.config.load();
    this.clientKey();
    for (const name of fs.readdirSync(this.layout.spritesDir)) {
      if (name.startsWith('.')) continue;
      try {
        await recoverSprite(this.ctx, name);
      } catch (err) {
        this.log(`sprite ${name}: could not be loaded: ${(err as Error).message}`);
      }
    }
  }

  // ---------------------------------------------------------------- views and activity

  list(): SpriteView[] {
    return this.registry.list();
  }

  get(name: string): SpriteView {
    return this.registry.view(name);
  }

  /** Something used the sprite now (API call, exec, terminal input, proxied request). */
  touch(name: string): void {
    this.activity.touch(name);
  }

  /** Keeps the sprite awake until the returned function is called (an open terminal, a running exec). */
  hold(name: string): () => void {
    return this.activity.hold(name);
  }

  /** Sprites that are awake, unheld and untouched for longer than their idle timeout. */
  idleSprites(now = this.ctx.io.now()): string[] {
    return idleSprites(
      this.live.names().map((name) => ({
        name,
        timeoutSec: this.settings.idleTimeoutOf(name),
        holds: this.activity.holds(name),
        busy: this.locks.operation(name) !== null,
        lastActivityMs: this.activity.lastActivity(name),
        startedAtMs: Date.parse(this.live.get(name)!.runtime.startedAt),
      })),
      now,
    );
  }

  /** Puts idle sprites to sleep (the idle loop runs this every few seconds). */
  sleepIdle(): void {
    for (const name of this.idleSprites()) {
      this.log(`sprite ${name}: idle for ${this.settings.idleTimeoutOf(name)} s; going to sleep`);
      this.sleep(name).catch((err) => this.log(`sprite ${name}: idle sleep failed: ${err.message}`));
    }
  }

  startIdleLoop(everyMs = 2000): void {
    this.stopIdleLoop?.();
    this.stopIdleLoop = this.ctx.io.every(everyMs, () => this.sleepIdle());
  }

  // ---------------------------------------------------------------- settings

  setIdleTimeout(seconds: number, sprite?: string | null): Promise<void> {
    return this.settings.setIdleTimeout(seconds, sprite);
  }

  setMemoryLimit(mib: number): Promise<void> {
    return this.config.setMemoryLimit(mib);
  }

  configView(): ConfigView {
    return this.config.view();
  }

  setNetwork(name: string, policy: NetworkPolicy): Promise<SpriteView> {
    return this.settings.setNetwork(name, policy);
  }

  setUrlPort(name: string, port: number): Promise<void> {
    return this.settings.setUrlPort(name, port);
  }

  /** Where the local URL proxy should connect for `name` (waking it first). */
  async urlTarget(name: string): Promise<{ host: string; port: number }> {
    await this.ensureAwake(name);
    const entry = this.live.get(name);
    if (!entry) throw new SpritelyError('unavailable', `Sprite "${name}" is not running.`);
    return { host: '127.0.0.1', port: entry.runtime.urlHostPort };
  }

  // ---------------------------------------------------------------- the hypervisor and images

  /** The hypervisor's version (`daemon.info`). */
  hypervisorVersion(): Promise<string> {
    return this.driver.version();
  }

  async accelerator(image: ImageRecord): Promise<Accelerator> {
    return this.driver.accelerator(bootFiles(image));
  }

  get knownAccelerator(): Accelerator | null {
    return this.driver.knownAccelerator;
  }

  ensureImage(id?: string, opts: { force?: boolean } = {}): Promise<ImageRecord> {
    return this.lifecycle.ensureImage(id, opts);
  }

  // ---------------------------------------------------------------- lifecycle, sleep and wake

  create(req: CreateRequest): Promise<Started> {
    return this.lifecycle.create(req);
  }

  fork(source: string, id: string, name: string): Promise<Started> {
    return this.lifecycle.fork(source, id, name);
  }

  /** Boots a stopped or crashed sprite from its disk; wakes a sleeping one. */
  async start(name: string): Promise<Started> {
    this.registry.must(name);
    return this.locks.run(name, 'starting', async () => (this.registry.must(name).status === 'sleeping' ? this.sleepWake.wakeLocked(name) : this.lifecycle.bootLocked(name)));
  }

  stop(name: string, opts: { force?: boolean; timeoutMs?: number } = {}): Promise<SpriteView> {
    return this.lifecycle.stop(name, opts);
  }

  destroy(name: string): Promise<void> {
    return this.lifecycle.destroy(name);
  }

  sleep(name: string): Promise<Started> {
    return this.sleepWake.sleep(name);
  }

  wake(name: string): Promise<Started> {
    return this.sleepWake.wake(name);
  }

  ensureAwake(name: string): Promise<void> {
    return this.sleepWake.ensureAwake(name);
  }

  sleepAll(): Promise<void> {
    return this.sleepWake.sleepAll();
  }

  // ---------------------------------------------------------------- checkpoints

  listCheckpoints(name: string): CheckpointView[] {
    return this.checkpoints.list(name);
  }

  createCheckpoint(name: string, opts: { comment?: string; auto?: boolean } = {}): Promise<{ checkpoint: CheckpointView; timings: Timings }> {
    return this.checkpoints.create(name, opts);
  }

  restoreCheckpoint(name: string, id: string, opts: { backup?: boolean } = {}): Promise<{ sprite: SpriteView; backup: string | null; timings: Timings }> {
    return this.checkpoints.restore(name, id, opts);
  }

  deleteCheckpoint(name: string, id: string): Promise<void> {
    return this.checkpoints.delete(name, id);
  }

  // ---------------------------------------------------------------- the machines themselves

  /** The SSH link of a running sprite (terminals and exec ride on it). */
  ssh(name: string): SshChannels {
    const v = this.registry.view(name);
    const entry = this.live.get(name);
    if (v.state !== 'running' || !entry) {
      throw new SpritelyError('failed_precondition', `Sprite "${name}" is ${v.state}; start it first (spritely start ${name}).`);
    }
    return entry.ssh;
  }

  /** The SSH link of a sprite, waking it first if it sleeps. */
  async sshAwake(name: string): Promise<SshChannels> {
    await this.ensureAwake(name);
    return this.ssh(name);
  }

  /** The SSH host key the engine made for the sprite and pins (an OpenSSH public key line). */
  hostKey(name: string): string {
    return this.registry.must(name).hostKeyPub;
  }

  /** The machine of an awake sprite (benchmarks reach below the engine through it). */
  machine(name: string): Machine | undefined {
    return this.live.get(name)?.machine;
  }

  /** Lets go of every machine (they keep running) and closes their links: the daemon is exiting. */
  detachAll(): void {
    this.stopIdleLoop?.();
    this.stopIdleLoop = null;
    this.live.detachAll();
  }
}
