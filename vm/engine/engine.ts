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
import type { DiffReport } from '../checkpoints/diff-report.ts';
import { RamCompressor } from '../checkpoints/ram-compressor.ts';
import type { Accelerator, Driver, Machine } from '../driver/driver.ts';
import { SpritelyError } from '../errors.ts';
import { ImageStore, type ImageProgress, type ImageRecord } from '../images/image-store.ts';
import type { NetworkPolicy } from '../net/egress-policy.ts';
import { ensureLayout, type Layout } from '../paths.ts';
import type { KeyPair } from '../ssh/keys.ts';
import { SpriteLocks } from '../store/sprite-lock.ts';
import { Admission } from './admission.ts';
import { CheckpointBrowse } from './checkpoint-browse.ts';
import type { DiffRequest } from './checkpoint-diff.ts';
import { CheckpointVerbs } from './checkpoint-verbs.ts';
import { bootFiles, DEFAULT_TIMEOUTS, type EngineContext, type EngineTimeouts } from './context.ts';
import { DaemonConfig, type ConfigView } from './daemon-config.ts';
import { realIo, type EngineIo } from './engine-io.ts';
import { Activity, idleSprites } from './idle.ts';
import { Lifecycle, type CreateRequest, type Started, type Timings } from './lifecycle.ts';
import { LiveMachines } from './live-machines.ts';
import { recoverSprite } from './recovery.ts';
import { MachineWatch } from './machine-watch.ts';
import { SleepWake } from './sleep-wake.ts';
import { SpriteSettings } from './sprite-settings.ts';
import { SpriteRegistry } from './sprite-registry.ts';
import type { SpriteView } from './sprite-view.ts';
import { WarmSpares, type SpareView } from './warm-spares.ts';
import type { AgentChannel } from '../guest/agent-channel.ts';
import type { AgentClient } from '../guest/agent-client.ts';
import type { ExecRequest, PtyRequest } from '../guest/agent-protocol.ts';
import { findGolden } from '../images/golden.ts';

export type { CheckpointView, CreateRequest, DiffReport, DiffRequest, SpriteView, Timings };
export type { SpriteState } from './sprite-view.ts';
export type { SpriteUsage } from './metering.ts';
export { DEFAULTS } from './lifecycle.ts';
import { DEFAULTS } from './lifecycle.ts';

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
  /** How long after a create the next warm spare is made (default 3 s; specs: 0). */
  spareDelayMs?: number;
  /** Compress checkpoints' RAM states in the background (default: yes, unless SPRITELY_COMPRESS_RAM=0). */
  compressRam?: boolean;
  /** How many of each sprite's newest checkpoint RAM states stay raw (default 2, SPRITELY_RAW_RECENT). */
  keepRecentRaw?: number;
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
  private readonly browse: CheckpointBrowse;
  readonly compressor: RamCompressor;
  private readonly settings: SpriteSettings;
  private readonly watch: MachineWatch;
  private readonly spares: WarmSpares;
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
    const timeouts = { ...DEFAULT_TIMEOUTS, ...opts.timeouts };
    const browse = () => this.browse;
    this.live = new LiveMachines(layout, io, {
      exited: (name, reason, detail) => void this.watch.exited(name, reason, detail),
      poweredOff: (name, machine) => this.watch.poweredOff(name, machine),
      agentStuck: (name, why) => this.watch.agentStuck(name, why),
      envHandler: (name) => this.checkpoints.envHandler(name),
      policy: (name) => this.registry.find(name)?.network ?? { mode: 'none', allow: [] },
      touch: (name) => this.activity.touch(name),
      log: (msg) => this.log(msg),
    }, timeouts.agentStuckMs);
    this.compressor = new RamCompressor(io.compress, (m) => this.log(m), (name) => this.registry.find(name) && this.ctx.checkpointsChanged(name), opts.compressRam ?? process.env.SPRITELY_COMPRESS_RAM !== '0', opts.keepRecentRaw);
    this.registry = new SpriteRegistry({ layout, disks: this.driver.disks, live: this.live, locks: this.locks, activity: this.activity, now: () => io.now(), changed: (v) => this.emit('sprite', v) });
    this.spares = new WarmSpares({
      layout,
      driver: this.driver,
      io,
      enabled: () => this.config.warmSpare,
      image: (id) => this.images.get(id) ?? undefined,
      golden: (image, shape) => findGolden(this.lifecycle.goldenRequest(image, shape)),
      memory: () => ({ usedMiB: this.live.names().reduce((sum, n) => sum + (this.registry.find(n)?.memoryMiB ?? 0), 0), limitMiB: this.config.memoryLimitMiB }),
      accel: async (image) => (await this.driver.accelerator(bootFiles(image))).name,
      restoreMs: timeouts.restoreMs,
      log: (msg) => this.log(msg),
      fillDelayMs: opts.spareDelayMs,
    });
    this.ctx = {
      timeouts,
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
      spares: this.spares,
      diskMarks: new Map(),
      compressor: this.compressor,
      get browse() {
        return browse();
      },
      clientKey: () => this.clientKey(),
      log: (msg) => this.log(msg),
      removed: (name) => this.emit('removed', name),
      checkpointsChanged: (name) => this.emit('checkpoints', name, this.checkpoints.list(name)),
      imageProgress: (p) => this.emit('imageProgress', p),
    };
    this.browse = new CheckpointBrowse(this.ctx);
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
        if (this.registry.find(name)) this.checkpoints.compressOlder(name);
      } catch (err) {
        this.log(`sprite ${name}: could not be loaded: ${(err as Error).message}`);
      }
    }
    await this.spares.recover().catch((err: Error) => this.log(`warm spares: ${err.message}`));
    // the first create after a start finds a machine waiting too (when the default image's golden state exists)
    this.spares.want({ image: this.images.defaultImageId(), memoryMiB: DEFAULTS.memoryMiB, cpus: DEFAULTS.cpus });
  }

  // ---------------------------------------------------------------- views and activity

  list(): SpriteView[] {
    return this.registry.list();
  }

  get(name: string): SpriteView {
    return this.registry.view(name);
  }

  /** Whether the sprite sleeps (cheap: no view is built; for hot paths such as terminal input). */
  isAsleep(name: string): boolean {
    return this.registry.find(name)?.status === 'sleeping' && !this.live.get(name);
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

  setIdleTimeout(seconds: number | null, sprite?: string | null): Promise<void> {
    return this.settings.setIdleTimeout(seconds, sprite);
  }

  setMemoryLimit(mib: number): Promise<void> {
    return this.config.setMemoryLimit(mib);
  }

  async setWarmSpare(on: boolean): Promise<void> {
    await this.config.setWarmSpare(on);
    this.spares.setEnabled(on);
  }

  configView(): ConfigView & { spares: SpareView[] } {
    return { ...this.config.view(), spares: this.spares.view() };
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

  /** Daemon shutdown: every awake sprite sleeps, warm spares end. */
  async sleepAll(): Promise<void> {
    await Promise.all([this.sleepWake.sleepAll(), this.spares.shutdown()]);
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

  /** What changed between checkpoint `from` and `to` (a checkpoint or "now"). */
  diffCheckpoints(name: string, req: DiffRequest): Promise<DiffReport> {
    return this.checkpoints.differ.diff(name, req);
  }

  /** Shows checkpoint `id` inside the sprite at /.spritely/checkpoints/ID (waking it first). */
  async mountCheckpoint(name: string, id: string): Promise<{ path: string; mounted: string[] }> {
    await this.ensureAwake(name);
    return this.browse.mount(name, id);
  }

  unmountCheckpoint(name: string, id: string, opts: { force?: boolean } = {}): Promise<{ mounted: string[] }> {
    return this.browse.unmount(name, id, opts);
  }

  // ---------------------------------------------------------------- the machines themselves

  /** The guest agent of a running sprite (exec and terminals ride on it), ready. */
  async agent(name: string): Promise<AgentClient> {
    const v = this.registry.view(name);
    const entry = this.live.get(name);
    if (v.state !== 'running' || !entry) {
      throw new SpritelyError('failed_precondition', `Sprite "${name}" is ${v.state}; start it first (spritely start ${name}).`);
    }
    try {
      await entry.agent.ready(this.ctx.timeouts.agentMs);
    } catch (err) {
      throw new SpritelyError('unavailable', `The guest agent in sprite "${name}" does not answer (${(err as Error).message}). The daemon asked the guest to restart it; try again in a few seconds.`);
    }
    return entry.agent;
  }

  /** The guest agent of a sprite, waking it first if it sleeps (and waiting for an operation on it to end: a restore, a create). */
  async agentAwake(name: string): Promise<AgentClient> {
    await this.ensureAwake(name);
    await this.locks.idle(name);
    return this.agent(name);
  }

  /** A command in the sprite (woken first) as an agent session; a guest agent that fails is a clear `unavailable`. */
  async exec(name: string, req: ExecRequest): Promise<AgentChannel> {
    const agent = await this.agentAwake(name);
    return agent.exec(req, this.ctx.timeouts.agentMs).catch((err: Error) => {
      throw new SpritelyError('unavailable', `The guest agent in sprite "${name}" could not start the command: ${err.message}.`);
    });
  }

  /** A program on a new pty in the sprite (woken first): a terminal, or `exec -t`. */
  async pty(name: string, req: PtyRequest): Promise<AgentChannel> {
    const agent = await this.agentAwake(name);
    return agent.pty(req, this.ctx.timeouts.agentMs).catch((err: Error) => {
      throw new SpritelyError('unavailable', `The guest agent in sprite "${name}" could not open a terminal: ${err.message}.`);
    });
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
    this.spares.detachAll();
    this.compressor.stop();
    this.live.detachAll();
  }
}
