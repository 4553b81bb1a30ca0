/**
 * The daemon-wide settings (`spritely config`): the idle timeout that sprites without their own use,
 * and the memory limit for awake sprites. Kept in the data dir's config.json; per-sprite idle
 * timeouts live in the sprites' manifests.
 */
import { readJson, writeJsonAtomic } from '../store/atomic-json.ts';

export const DEFAULT_IDLE_TIMEOUT_SEC = Number(process.env.SPRITELY_IDLE_TIMEOUT ?? 300);

export interface EngineConfig {
  /** Seconds without use before an awake sprite sleeps; 0 = never. */
  idleTimeoutSec: number;
  /** Guest RAM (MiB) that awake sprites may add up to; 0 = the default (80% of host RAM). */
  memoryLimitMiB: number;
}

export interface ConfigView {
  idleTimeoutSec: number;
  memoryLimitMiB: number;
  memoryLimitDefault: boolean;
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
    return { idleTimeoutSec: this.config.idleTimeoutSec, memoryLimitMiB: this.memoryLimitMiB, memoryLimitDefault: !this.config.memoryLimitMiB };
  }
}
