/**
 * The idle loop: every few seconds, sprites awake, unheld, not busy and untouched for longer than
 * their idle timeout go to sleep. The decision is idle.ts's pure `idleSprites`; this is the shell
 * that gathers its facts and acts on it.
 */
import type { EngineContext } from './context.ts';
import { idleSprites } from './idle.ts';
import type { SleepWake } from './sleep-wake.ts';
import type { SpriteSettings } from './sprite-settings.ts';

export class IdleSleep {
  private stopLoop: (() => void) | null = null;

  constructor(
    private readonly ctx: EngineContext,
    private readonly settings: SpriteSettings,
    private readonly sleepWake: SleepWake,
  ) {}

  /** Sprites that are awake, unheld and untouched for longer than their idle timeout. */
  idleSprites(now = this.ctx.io.now()): string[] {
    const { live, activity, locks } = this.ctx;
    return idleSprites(
      live.names().map((name) => ({
        name,
        timeoutSec: this.settings.idleTimeoutOf(name),
        holds: activity.holds(name),
        busy: locks.operation(name) !== null,
        lastActivityMs: activity.lastActivity(name),
        startedAtMs: Date.parse(live.get(name)!.runtime.startedAt),
      })),
      now,
    );
  }

  /** Puts idle sprites to sleep (the idle loop runs this every few seconds). */
  sleepIdle(): void {
    for (const name of this.idleSprites()) {
      this.ctx.log(`sprite ${name}: idle for ${this.settings.idleTimeoutOf(name)} s; going to sleep`);
      this.sleepWake.sleep(name).catch((err) => this.ctx.log(`sprite ${name}: idle sleep failed: ${err.message}`));
    }
  }

  start(everyMs: number): void {
    this.stop();
    this.stopLoop = this.ctx.io.every(everyMs, () => this.sleepIdle());
  }

  stop(): void {
    this.stopLoop?.();
    this.stopLoop = null;
  }
}
