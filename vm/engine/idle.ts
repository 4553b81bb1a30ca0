/**
 * Activity and idleness. Every API call naming a sprite, terminal input, exec and proxied request
 * *touches* it; an open terminal, a running exec and an in-flight request *hold* it. A sprite that
 * is awake, unheld, not being operated on and untouched for its idle timeout is idle (and the
 * engine puts it to sleep). The decision is a pure function over those facts.
 */

export interface IdleFacts {
  name: string;
  /** Seconds; 0 = never sleeps. */
  timeoutSec: number;
  holds: number;
  /** An operation (checkpoint, stop, …) is running on it. */
  busy: boolean;
  /** Epoch ms of the last touch, if any since it woke. */
  lastActivityMs: number | undefined;
  /** Epoch ms the machine started (counts as activity). */
  startedAtMs: number;
}

/** Sprites that are awake, unheld, not busy and untouched for longer than their idle timeout. */
export function idleSprites(awake: IdleFacts[], now: number): string[] {
  return awake
    .filter((s) => {
      if (!s.timeoutSec || s.holds > 0 || s.busy) return false;
      const since = Math.max(s.lastActivityMs ?? -Infinity, Number.isFinite(s.startedAtMs) ? s.startedAtMs : now);
      return now - since > s.timeoutSec * 1000;
    })
    .map((s) => s.name);
}

/** Touches and holds per sprite (in memory: a restarted daemon counts from the machines' start). */
export class Activity {
  private last = new Map<string, number>();
  private holdCount = new Map<string, number>();

  constructor(private readonly now: () => number) {}

  touch(name: string): void {
    this.last.set(name, this.now());
  }

  /** Keeps the sprite awake until the returned function is called (an open terminal, a running exec). */
  hold(name: string): () => void {
    this.holdCount.set(name, (this.holdCount.get(name) ?? 0) + 1);
    this.touch(name);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.holdCount.set(name, Math.max(0, (this.holdCount.get(name) ?? 1) - 1));
      this.touch(name);
    };
  }

  lastActivity(name: string): number | undefined {
    return this.last.get(name);
  }

  holds(name: string): number {
    return this.holdCount.get(name) ?? 0;
  }
}
