/**
 * When a host link tries again. A host that drops (network gone, server rebooting, laptop asleep)
 * comes back on its own: retries back off exponentially with jitter (relay/backoff.ts: 1 s, 2 s,
 * 4 s … capped at 30 s), so a dead server costs one short ssh attempt per half-minute at most. A
 * connection that had been up for a while resets the count, so one drop of a good host is retried
 * within a second or two. Someone waiting (a command for that host) cuts the wait short: it tries
 * at once, but never more often than `minGapMs` after the last attempt ended.
 */
import { backoffDelay, type BackoffOptions } from '../../relay/backoff.ts';

export interface ScheduleOptions extends BackoffOptions {
  /** A connection that lasted this long was good: the next drop starts the backoff over. */
  stableMs: number;
  /** A command waiting for the host tries at most this often. */
  minGapMs: number;
}

export const HOST_RECONNECT: ScheduleOptions = { initialMs: 1000, maxMs: 30_000, stableMs: 30_000, minGapMs: 500 };

export class ReconnectSchedule {
  private failures = 0;
  private connectedAt: number | null = null;
  private lastAttemptEnded = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly opts: ScheduleOptions = HOST_RECONNECT,
    private readonly random: () => number = Math.random,
    private readonly now: () => number = Date.now,
  ) {}

  /** An attempt failed: the delay before the next automatic one. */
  failed(): number {
    this.lastAttemptEnded = this.now();
    this.connectedAt = null;
    return backoffDelay(this.failures++, this.opts, this.random);
  }

  connected(): void {
    this.lastAttemptEnded = this.now();
    this.connectedAt = this.now();
  }

  /** A working connection ended: the delay before the first attempt to get it back. */
  dropped(): number {
    const upFor = this.connectedAt === null ? 0 : this.now() - this.connectedAt;
    if (upFor >= this.opts.stableMs) this.failures = 0;
    this.connectedAt = null;
    this.lastAttemptEnded = this.now();
    return backoffDelay(this.failures++, this.opts, this.random);
  }

  /** Someone needs the host now: how long to wait before trying (0 = at once). */
  demandDelay(): number {
    return Math.max(0, this.lastAttemptEnded + this.opts.minGapMs - this.now());
  }

  get consecutiveFailures(): number {
    return this.failures;
  }
}
