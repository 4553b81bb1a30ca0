/**
 * The engine: the one owner of sprites, and the only thing the API, the URL proxy and the relay
 * link talk to. This class is the facade: it routes each public verb to the module that owns it
 * (engine-parts.ts builds and wires those modules around a driver). Every change to a sprite runs
 * under that sprite's lock, ends in an atomically written manifest, and is announced as an event.
 *
 * docs/architecture.md has the module map: which file owns which concept.
 */
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import type { CheckpointView } from '../checkpoints/checkpoint-ops.ts';
import type { DiffReport } from '../checkpoints/diff-report.ts';
import type { RamCompressor } from '../checkpoints/ram-compressor.ts';
import type { Accelerator, Driver, Machine } from '../driver/driver.ts';
import { SpritelyError } from '../errors.ts';
import type { AgentChannel } from '../guest/agent-channel.ts';
import type { AgentClient } from '../guest/agent-client.ts';
import type { ExecRequest, PtyRequest } from '../guest/agent-protocol.ts';
import { bootFiles, type ImageRecord, type ImageStore } from '../images/image-store.ts';
import type { NetworkPolicy } from '../net/egress-policy.ts';
import type { RefusedDestination } from '../net/refusal-log.ts';
import { ensureLayout, type Layout } from '../paths.ts';
import type { SpriteLocks } from '../store/sprite-lock.ts';
import type { DiffRequest } from './checkpoint-diff.ts';
import type { ConfigView } from './daemon-config.ts';
import { assembleEngine, type EngineEvents, type EngineOptions, type EngineParts } from './engine-parts.ts';
import type { Started, Timings } from './lifecycle.ts';
import { DEFAULTS, type CreateRequest } from './new-machine.ts';
import { recoverSprite } from './recovery.ts';
import type { SpriteView } from './sprite-view.ts';
import type { SpareView } from './warm-spares.ts';

export type { CheckpointView, CreateRequest, DiffReport, DiffRequest, EngineEvents, EngineOptions, SpriteView, Timings };
export type { SpriteState } from './sprite-view.ts';
export type { SpriteUsage } from './metering.ts';
export { DEFAULTS };

export class Engine extends EventEmitter<EngineEvents> {
  readonly locks: SpriteLocks;
  readonly images: ImageStore;
  readonly driver: Driver;
  readonly compressor: RamCompressor;
  private readonly parts: EngineParts;

  constructor(
    readonly layout: Layout,
    opts: EngineOptions,
  ) {
    super();
    this.driver = opts.driver;
    this.parts = assembleEngine(layout, opts, this);
    ({ locks: this.locks, images: this.images, compressor: this.compressor } = this.parts);
  }

  log(msg: string): void {
    this.emit('log', msg);
  }

  /** Loads every sprite from disk, re-attaches to the machines still running, and finishes what a killed daemon left half-done. */
  async init(): Promise<void> {
    const { ctx, config, registry, checkpoints, spares } = this.parts;
    ensureLayout(this.layout);
    config.load();
    ctx.clientKey();
    for (const name of fs.readdirSync(this.layout.spritesDir)) {
      if (name.startsWith('.')) continue;
      try {
        await recoverSprite(ctx, name);
        if (registry.find(name)) checkpoints.compressOlder(name);
      } catch (err) {
        this.log(`sprite ${name}: could not be loaded: ${(err as Error).message}`);
      }
    }
    await spares.recover().catch((err: Error) => this.log(`warm spares: ${err.message}`));
    // the first create after a start finds a machine waiting too (when the default image's golden state exists)
    spares.want({ image: this.images.defaultImageId(), memoryMiB: DEFAULTS.memoryMiB, cpus: DEFAULTS.cpus });
  }

  // ---------------------------------------------------------------- views and activity

  list(): SpriteView[] {
    return this.parts.registry.list();
  }

  get(name: string): SpriteView {
    return this.parts.registry.view(name);
  }

  /** Whether the sprite sleeps (cheap: no view is built; for hot paths such as terminal input). */
  isAsleep(name: string): boolean {
    return this.parts.registry.find(name)?.status === 'sleeping' && !this.parts.live.get(name);
  }

  /** Something used the sprite now (API call, exec, terminal input, proxied request). */
  touch(name: string): void {
    this.parts.activity.touch(name);
  }

  /** Keeps the sprite awake until the returned function is called (an open terminal, a running exec). */
  hold(name: string): () => void {
    return this.parts.activity.hold(name);
  }

  /** Sprites that are awake, unheld and untouched for longer than their idle timeout. */
  idleSprites(now?: number): string[] {
    return this.parts.idle.idleSprites(now);
  }

  /** Puts idle sprites to sleep (the idle loop runs this every few seconds). */
  sleepIdle(): void {
    this.parts.idle.sleepIdle();
  }

  startIdleLoop(everyMs = 2000): void {
    this.parts.idle.start(everyMs);
  }

  // ---------------------------------------------------------------- settings

  setIdleTimeout(seconds: number | null, sprite?: string | null): Promise<void> {
    return this.parts.settings.setIdleTimeout(seconds, sprite);
  }

  setMemoryLimit(mib: number): Promise<void> {
    return this.parts.config.setMemoryLimit(mib);
  }

  async setWarmSpare(on: boolean): Promise<void> {
    await this.parts.config.setWarmSpare(on);
    this.parts.spares.setEnabled(on);
  }

  /** How many checkpoints a sprite may have mounted at once (the next mount past it unmounts the least recently used). */
  setCheckpointMounts(n: number): Promise<void> {
    return this.parts.config.setCheckpointMounts(n);
  }

  configView(): ConfigView & { spares: SpareView[] } {
    return { ...this.parts.config.view(), spares: this.parts.spares.view() };
  }

  setNetwork(name: string, policy: NetworkPolicy): Promise<SpriteView> {
    return this.parts.settings.setNetwork(name, policy);
  }

  /** The sprite's network policy and what it was last refused, newest first (`spritely net show`). */
  networkView(name: string): { name: string; network: string; refused: RefusedDestination[] } {
    return { name, network: this.parts.registry.view(name).network, refused: this.parts.live.refused(name) };
  }

  setUrlPort(name: string, port: number): Promise<void> {
    return this.parts.settings.setUrlPort(name, port);
  }

  /** Where the local URL proxy should connect for `name` (waking it first). */
  async urlTarget(name: string): Promise<{ host: string; port: number }> {
    await this.ensureAwake(name);
    const entry = this.parts.live.get(name);
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
    return this.parts.newMachines.ensureImage(id, opts);
  }

  // ---------------------------------------------------------------- lifecycle, sleep and wake

  create(req: CreateRequest): Promise<Started> {
    return this.parts.newMachines.create(req);
  }

  fork(source: string, id: string, name: string): Promise<Started> {
    return this.parts.newMachines.fork(source, id, name);
  }

  /** Boots a stopped or crashed sprite from its disk; wakes a sleeping one. */
  async start(name: string): Promise<Started> {
    this.parts.registry.must(name);
    return this.locks.run(name, 'starting', async () => (this.parts.registry.must(name).status === 'sleeping' ? this.parts.sleepWake.wakeLocked(name) : this.parts.lifecycle.bootLocked(name)));
  }

  stop(name: string, opts: { force?: boolean; timeoutMs?: number } = {}): Promise<SpriteView> {
    return this.parts.lifecycle.stop(name, opts);
  }

  destroy(name: string): Promise<void> {
    return this.parts.lifecycle.destroy(name);
  }

  sleep(name: string): Promise<Started> {
    return this.parts.sleepWake.sleep(name);
  }

  wake(name: string): Promise<Started> {
    return this.parts.sleepWake.wake(name);
  }

  ensureAwake(name: string): Promise<void> {
    return this.parts.sleepWake.ensureAwake(name);
  }

  /** Daemon shutdown: every awake sprite sleeps, warm spares end. */
  async sleepAll(): Promise<void> {
    await Promise.all([this.parts.sleepWake.sleepAll(), this.parts.spares.shutdown()]);
  }

  // ---------------------------------------------------------------- checkpoints

  listCheckpoints(name: string): CheckpointView[] {
    return this.parts.checkpoints.list(name);
  }

  createCheckpoint(name: string, opts: { comment?: string; auto?: boolean } = {}): Promise<{ checkpoint: CheckpointView; timings: Timings }> {
    return this.parts.checkpoints.create(name, opts);
  }

  restoreCheckpoint(name: string, id: string, opts: { backup?: boolean } = {}): Promise<{ sprite: SpriteView; backup: string | null; timings: Timings }> {
    return this.parts.checkpoints.restore(name, id, opts);
  }

  deleteCheckpoint(name: string, id: string): Promise<void> {
    return this.parts.checkpoints.delete(name, id);
  }

  /** What changed between checkpoint `from` and `to` (a checkpoint or "now"). */
  diffCheckpoints(name: string, req: DiffRequest): Promise<DiffReport> {
    return this.parts.checkpoints.differ.diff(name, req);
  }

  /** Shows checkpoint `id` inside the sprite at /.spritely/checkpoints/ID (waking it first). */
  async mountCheckpoint(name: string, id: string): Promise<{ path: string; mounted: string[] }> {
    await this.ensureAwake(name);
    return this.parts.browse.mount(name, id);
  }

  unmountCheckpoint(name: string, id: string, opts: { force?: boolean } = {}): Promise<{ mounted: string[] }> {
    return this.parts.browse.unmount(name, id, opts);
  }

  // ---------------------------------------------------------------- the machines themselves

  /** The guest agent of a running sprite (exec and terminals ride on it), ready. */
  agent(name: string): Promise<AgentClient> {
    return this.parts.guests.agent(name);
  }

  /** The guest agent of a sprite, waking it first if it sleeps (and waiting for an operation on it to end: a restore, a create). */
  agentAwake(name: string): Promise<AgentClient> {
    return this.parts.guests.agentAwake(name);
  }

  /** A command in the sprite (woken first) as an agent session; a guest agent that fails is a clear `unavailable`. */
  exec(name: string, req: ExecRequest): Promise<AgentChannel> {
    return this.parts.guests.exec(name, req);
  }

  /** A program on a new pty in the sprite (woken first): a terminal, or `exec -t`. */
  pty(name: string, req: PtyRequest): Promise<AgentChannel> {
    return this.parts.guests.pty(name, req);
  }

  /** The SSH host key the engine made for the sprite and pins (an OpenSSH public key line). */
  hostKey(name: string): string {
    return this.parts.registry.must(name).hostKeyPub;
  }

  /** The machine of an awake sprite (benchmarks reach below the engine through it). */
  machine(name: string): Machine | undefined {
    return this.parts.live.get(name)?.machine;
  }

  /** Lets go of every machine (they keep running) and closes their links: the daemon is exiting. */
  detachAll(): void {
    this.parts.idle.stop();
    this.parts.spares.detachAll();
    this.compressor.stop();
    this.parts.live.detachAll();
  }
}
