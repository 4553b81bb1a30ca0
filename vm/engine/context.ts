/**
 * What the engine's modules share: the data dir, the driver, injected I/O, the sprites' registry
 * and live machines, locks, activity, settings and admission — plus the few small steps several
 * of them take (find a sprite's image, record a crash, close an awake period).
 */
import type { RamCompressor } from '../checkpoints/ram-compressor.ts';
import type { Driver } from '../driver/driver.ts';
import { SpritelyError } from '../errors.ts';
import { bootFiles, type ImageProgress, type ImageRecord, type ImageStore } from '../images/image-store.ts';
import type { Layout } from '../paths.ts';
import type { KeyPair } from '../ssh/keys.ts';
import type { SpriteLocks } from '../store/sprite-lock.ts';
import type { Manifest } from '../store/sprite-manifest.ts';
import type { Admission } from './admission.ts';
import type { DaemonConfig } from './daemon-config.ts';
import type { EngineIo } from './engine-io.ts';
import type { Activity } from './idle.ts';
import type { LiveMachines } from './live-machines.ts';
import { closeAwakePeriod } from './metering.ts';
import type { SpriteRegistry } from './sprite-registry.ts';
import type { WarmSpares } from './warm-spares.ts';

/** How long the engine waits for machines and guests (tuned for TCG; specs on the fake driver shorten them). */
export interface EngineTimeouts {
  /** A restored machine's saved state to land. */
  restoreMs: number;
  /** The guest agent to answer after a restore (it was running when the state was saved; its HELLO is waiting when the guest runs). */
  guestAfterRestoreMs: number;
  /** The guest agent to answer after a cold boot, with hardware acceleration / under emulation. */
  coldBootMs: number;
  coldBootEmulatedMs: number;
  /** The guest to power off once asked (then it is synced and ended). */
  powerOffMs: number;
  /** An exec or terminal waits this long for the guest agent of a running sprite before it fails. */
  agentMs: number;
  /** After this long without an answer from the guest agent, qemu-guest-agent is asked to restart it. */
  agentStuckMs: number;
}

export const DEFAULT_TIMEOUTS: EngineTimeouts = { restoreMs: 60_000, guestAfterRestoreMs: 30_000, coldBootMs: 90_000, coldBootEmulatedMs: 240_000, powerOffMs: 90_000, agentMs: 20_000, agentStuckMs: 10_000 };

export interface EngineContext {
  readonly timeouts: EngineTimeouts;
  readonly layout: Layout;
  readonly driver: Driver;
  readonly io: EngineIo;
  readonly images: ImageStore;
  readonly locks: SpriteLocks;
  readonly registry: SpriteRegistry;
  readonly live: LiveMachines;
  readonly activity: Activity;
  readonly config: DaemonConfig;
  readonly admission: Admission;
  readonly spares: WarmSpares;
  /** Allocated bytes of each disk at its last checkpoint (per-checkpoint disk estimates). */
  readonly diskMarks: Map<string, number>;
  /** Compresses saved RAM states in the background. */
  readonly compressor: RamCompressor;
  /** Checkpoints shown inside running sprites. */
  readonly browse: CheckpointViews;
  clientKey(): KeyPair;
  log(msg: string): void;
  /** A sprite is gone (destroyed, or an unfinished create removed). */
  removed(name: string): void;
  checkpointsChanged(name: string): void;
  imageProgress(p: ImageProgress): void;
}

/** Checkpoints shown inside running sprites (checkpoint-browse.ts), as the other modules use them. */
export interface CheckpointViews {
  /** What the sprite's running machine has mounted. */
  mounted(name: string): string[];
  /** Learns what a re-attached machine has mounted. */
  adopt(name: string): Promise<void>;
  /** A machine was restored from a state saved with `attached` views: clears the guest's stale mounts. */
  afterRestore(name: string, attached: string[] | undefined): void;
  /** Throws when checkpoint `id` is mounted (it cannot be deleted then). */
  assertNotMounted(name: string, id: string): Promise<void>;
  /** Under the sprite's lock. */
  mountLocked(name: string, id: string): Promise<{ path: string; mounted: string[] }>;
  unmountLocked(name: string, id: string, opts?: { force?: boolean }): Promise<{ mounted: string[] }>;
}

export function mustImage(ctx: EngineContext, m: Manifest): ImageRecord {
  const image = ctx.images.get(m.image);
  if (!image) throw new SpritelyError('failed_precondition', `The image "${m.image}" of sprite "${m.name}" is missing from ${ctx.layout.imagesDir}.`);
  return image;
}

/** How long a cold boot may take before the guest agent answers (much longer under emulation). */
export async function coldBootTimeoutMs(ctx: EngineContext, image: ImageRecord): Promise<number> {
  return (await ctx.driver.accelerator(bootFiles(image))).emulated ? ctx.timeouts.coldBootEmulatedMs : ctx.timeouts.coldBootMs;
}

/**
 * Records a crash: the sprite says why at once (in memory), then the manifest is written. A daemon
 * killed before the write finds a running sprite without its machine: crashed all the same.
 */
export async function markCrashed(ctx: EngineContext, name: string, why: string): Promise<void> {
  const m = ctx.registry.find(name);
  if (!m) return;
  ctx.log(`sprite ${name}: crashed: ${why}`);
  const crashed: Manifest = { ...m, status: 'crashed', lastError: why };
  ctx.registry.replace(crashed);
  await ctx.registry.save(crashed);
}

/** The manifest with the awake period of its machine (if any) added to its usage totals. */
export function withAwakePeriodClosed(ctx: EngineContext, m: Manifest): Manifest {
  const live = ctx.live.get(m.name);
  const ending = live ? { startedAt: live.runtime.startedAt, cpuSeconds: live.machine.cpuSeconds() } : null;
  return closeAwakePeriod(m, ending, ctx.activity.lastActivity(m.name), ctx.io.now());
}
