/**
 * Serializes operations on one sprite. Inside the daemon a promise queue per sprite orders them
 * (and tells the UI what is running); across processes a lock directory (proper-lockfile) makes
 * a second daemon or a stray tool wait or fail with "busy" instead of interleaving writes.
 */
import fs from 'node:fs';
import lockfile from 'proper-lockfile';
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

  /**
   * Runs `fn` when every earlier operation on `name` is done. With `waitMs` the caller gives up
   * with a clear "busy" error instead of queueing for long.
   */
  async run<T>(name: string, op: string, fn: () => Promise<T>, opts: { lockDir?: string; waitMs?: number } = {}): Promise<T> {
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
      const unlockFile = opts.lockDir && fs.existsSync(opts.lockDir) ? await lockDir(opts.lockDir, name) : null;
      try {
        return await fn();
      } finally {
        await unlockFile?.().catch(() => {});
      }
    } finally {
      const wasRunning = this.current.delete(name);
      release();
      if (wasRunning) this.onChange(name);
      if (this.tails.get(name) === tail) this.tails.delete(name);
    }
  }
}

async function lockDir(dir: string, name: string): Promise<() => Promise<void>> {
  try {
    return await lockfile.lock(dir, { stale: 15_000, update: 5_000, retries: { retries: 20, minTimeout: 50, maxTimeout: 500 }, realpath: false });
  } catch (err) {
    throw new SpritelyError('busy', `Sprite "${name}" is locked by another process (${(err as Error).message}).`);
  }
}
