/**
 * The daemon-wide settings (`spritely config`): the idle timeout that sprites without their own use,
 * the memory limit for awake sprites, whether warm spares are kept, and how many checkpoints a
 * sprite may have mounted inside it at once. Kept in the data dir's
 * config.json; per-sprite idle timeouts live in the sprites' manifests. The limits on what a guest
 * may checkpoint from inside (`guestCheckpointsKept`, `guestCheckpointsPerMinute`) are read from the
 * same file (edited by hand; the environment variables SPRITELY_GUEST_CHECKPOINTS_KEPT / _PER_MINUTE
 * set the defaults).
 */
import { DEFAULT_GUEST_CHECKPOINT_LIMITS, type GuestCheckpointLimits } from '../checkpoints/guest-checkpoint-limits.ts';
import { readJson, writeJsonAtomic } from '../store/atomic-json.ts';

export const DEFAULT_IDLE_TIMEOUT_SEC = Number(process.env.SPRITELY_IDLE_TIMEOUT ?? 300);

/** Warm spares are on unless turned off (`spritely config set warm-spare off`; SPRITELY_WARM_SPARE=off changes the default). */
export function defaultWarmSpare(env: string | undefined = process.env.SPRITELY_WARM_SPARE): boolean {
  return !/^(off|0|false|no)$/i.test(env ?? '');
}

/** Checkpoints a sprite may have mounted at once (`spritely config set checkpoint-mounts N`; SPRITELY_MAX_MOUNTS changes the default). */
export const DEFAULT_MAX_MOUNTS = Math.max(1, Number(process.env.SPRITELY_MAX_MOUNTS ?? 4) || 4);
export const MAX_CHECKPOINT_MOUNTS = 16;

export interface EngineConfig {
  /** Seconds without use before an awake sprite sleeps; 0 = never. */
  idleTimeoutSec: number;
  /** Guest RAM (MiB) that awake sprites may add up to; 0 = the default (80% of host RAM). */
  memoryLimitMiB: number;
  /** Keep a warm spare per used machine shape (where memory allows). */
  warmSpare?: boolean;
  /** Checkpoints a sprite may have mounted inside it at once (absent: the default). */
  checkpointMounts?: number;
  /** Checkpoints made from inside a sprite that it may keep (absent: the default). */
  guestCheckpointsKept?: number;
  /** Checkpoint creates and restores a sprite may ask from inside in any minute (absent: the default). */
  guestCheckpointsPerMinute?: number;
}

function envCount(name: string, fallback: number): number {
  const v = Number(process.env[name]);
  return process.env[name] !== undefined && Number.isInteger(v) && v >= 0 ? v : fallback;
}

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0;

export interface ConfigView {
  idleTimeoutSec: number;
  memoryLimitMiB: number;
  memoryLimitDefault: boolean;
  warmSpare: boolean;
  checkpointMounts: number;
}

/** The default memory limit: leaves a fifth of the host's RAM to the host (and the hypervisor's own overhead). */
export function defaultMemoryLimitMiB(hostMemoryMiB: number): number {
  return Math.floor(hostMemoryMiB * 0.8);
}

export class DaemonConfig {
  private config: EngineConfig = { idleTimeoutSec: DEFAULT_IDLE_TIMEOUT_SEC, memoryLimitMiB: 0 };

  constructor(
    private readonly file: string,
    private readonly hostMemoryMiB: () => number,
  ) {}

  /** Reads config.json; missing or partial settings keep their defaults. */
  load(): void {
    const saved = readJson<Partial<EngineConfig>>(this.file);
    if (saved && typeof saved.idleTimeoutSec === 'number') this.config = { ...this.config, idleTimeoutSec: saved.idleTimeoutSec };
    if (saved && typeof saved.memoryLimitMiB === 'number') this.config = { ...this.config, memoryLimitMiB: saved.memoryLimitMiB };
    if (saved && typeof saved.warmSpare === 'boolean') this.config = { ...this.config, warmSpare: saved.warmSpare };
    if (saved && isCount(saved.checkpointMounts) && saved.checkpointMounts >= 1 && saved.checkpointMounts <= MAX_CHECKPOINT_MOUNTS) this.config = { ...this.config, checkpointMounts: saved.checkpointMounts };
    if (saved && isCount(saved.guestCheckpointsKept)) this.config = { ...this.config, guestCheckpointsKept: saved.guestCheckpointsKept };
    if (saved && isCount(saved.guestCheckpointsPerMinute)) this.config = { ...this.config, guestCheckpointsPerMinute: saved.guestCheckpointsPerMinute };
  }

  get warmSpare(): boolean {
    return this.config.warmSpare ?? defaultWarmSpare();
  }

  async setWarmSpare(on: boolean): Promise<void> {
    this.config = { ...this.config, warmSpare: on };
    await writeJsonAtomic(this.file, this.config);
  }

  get checkpointMounts(): number {
    return this.config.checkpointMounts ?? DEFAULT_MAX_MOUNTS;
  }

  async setCheckpointMounts(n: number): Promise<void> {
    this.config = { ...this.config, checkpointMounts: n };
    await writeJsonAtomic(this.file, this.config);
  }

  /** What a guest may checkpoint and restore from inside (spritely-env). */
  get guestCheckpointLimits(): GuestCheckpointLimits {
    return {
      kept: this.config.guestCheckpointsKept ?? envCount('SPRITELY_GUEST_CHECKPOINTS_KEPT', DEFAULT_GUEST_CHECKPOINT_LIMITS.kept),
      perMinute: this.config.guestCheckpointsPerMinute ?? envCount('SPRITELY_GUEST_CHECKPOINTS_PER_MINUTE', DEFAULT_GUEST_CHECKPOINT_LIMITS.perMinute),
    };
  }

  get idleTimeoutSec(): number {
    return this.config.idleTimeoutSec;
  }

  /** The limit in force (the configured one, else the default). */
  get memoryLimitMiB(): number {
    return this.config.memoryLimitMiB || defaultMemoryLimitMiB(this.hostMemoryMiB());
  }

  async setIdleTimeout(seconds: number): Promise<void> {
    this.config = { ...this.config, idleTimeoutSec: seconds };
    await writeJsonAtomic(this.file, this.config);
  }

  async setMemoryLimit(mib: number): Promise<void> {
    this.config = { ...this.config, memoryLimitMiB: mib };
    await writeJsonAtomic(this.file, this.config);
  }

  view(): ConfigView {
    return { idleTimeoutSec: this.config.idleTimeoutSec, memoryLimitMiB: this.memoryLimitMiB, memoryLimitDefault: !this.config.memoryLimitMiB, warmSpare: this.warmSpare, checkpointMounts: this.checkpointMounts };
  }
}
