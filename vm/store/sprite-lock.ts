/**
 * Serializes operations on one sprite: a promise queue per sprite orders them and tells the UI
 * what is running. Across processes nothing more is needed: only the daemon changes sprites, and
 * its pid lock allows one daemon per data dir.
 */
import { SpritelyError } from '../errors.ts';

export class SpriteLocks {
  private tails = new Map<string, Promise<unknown>>();
  private current = new Map<string, string>();

  /** `onChange` runs when an operation starts and when it ends (the UI shows "busy" from it). */
  constructor(private readonly onChange: (name: string) => void = () => {}) {}

  /** The operation now running on `name`, if any (shown as "busy" in lists). */
  operation(name: string): string | null {
    return this.current.get(name) ?? null;
  }

  /** Resolves when every operation queued on `name` now has ended (without taking the lock). */
  async idle(name: string): Promise<void> {
    let seen: Promise<unknown> | undefined;
    for (let tail = this.tails.get(name); tail && tail !== seen; tail = this.tails.get(name)) {
      seen = tail;
      await tail.catch(() => {});
    }
  }

  /**
   * Runs `fn` when every earlier operation on `name` is done. With `waitMs` the caller gives up
   * with a clear "busy" error instead of queueing for long.
   */
  async run<T>(name: string, op: string, fn: () => Promise<T>, opts: { waitMs?: number } = {}): Promise<T> {
    const prev = this.tails.get(name) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const tail = prev.then(() => mine);
    this.tails.set(name, tail);
    try {
      if (opts.waitMs !== undefined) {
        const busyWith = this.current.get(name);
        const timeout = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), opts.waitMs).unref());
        if ((await Promise.race([prev.then(() => 'ok' as const), timeout])) === 'timeout') {
          throw new SpritelyError('busy', `Sprite "${name}" is busy (${busyWith ?? this.current.get(name) ?? 'another operation'}); try again when it is done.`);
        }
      } else {
        await prev;
      }
      this.current.set(name, op);
      this.onChange(name);
      return await fn();
    } finally {
      const wasRunning = this.current.delete(name);
      release();
      if (wasRunning) this.onChange(name);
      if (this.tails.get(name) === tail) this.tails.delete(name);
    }
  }
}
