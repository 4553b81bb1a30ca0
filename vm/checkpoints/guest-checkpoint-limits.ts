/**
 * How much a guest may checkpoint and restore itself through spritely-env. Every checkpoint pins
 * disk clusters (and, for the newest ones, a RAM file the size of the guest's used memory), and
 * every restore relaunches the machine, so a guest looping `spritely-env checkpoint create` would
 * otherwise fill the host's disk and keep its I/O busy. Checkpoints the guest made — its own
 * creates and the undo checkpoints of restores it asked for — are capped in number, and what it
 * asks is capped in rate. The user's own checkpoints (CLI, API, UI, MCP) are never limited and do
 * not count. Pure: the engine keeps the request times and applies the answer.
 */
import type { Timeline } from './checkpoint-tree.ts';

export interface GuestCheckpointLimits {
  /** Checkpoints made from inside that a sprite may keep. */
  kept: number;
  /** Checkpoint creates and restores a guest may ask in any minute. */
  perMinute: number;
}

export const DEFAULT_GUEST_CHECKPOINT_LIMITS: GuestCheckpointLimits = { kept: 50, perMinute: 6 };

export const WINDOW_MS = 60_000;

export type GuestAsk = { op: 'create' } | { op: 'restore'; backup: boolean };

/** Checkpoints the guest made that the sprite still keeps. */
export function guestMade(t: Timeline): number {
  return t.checkpoints.filter((c) => c.byGuest || c.envRequest).length;
}

/** The request times still inside the last minute (oldest first). */
export function recentAsks(times: number[], now: number): number[] {
  return times.filter((x) => x > now - WINDOW_MS && x <= now);
}

/**
 * Why the guest's request is refused now — one sentence for the guest (its `=ERR` line) and the
 * host's log, saying what to do — or null when it may go ahead.
 */
export function refuseGuestAsk(ask: GuestAsk, t: Timeline, times: number[], now: number, limits: GuestCheckpointLimits, sprite: string): string | null {
  const recent = recentAsks(times, now);
  if (recent.length >= limits.perMinute) {
    const wait = limits.perMinute > 0 ? Math.max(1, Math.ceil((recent[recent.length - limits.perMinute] + WINDOW_MS - now) / 1000)) : null;
    return (
      `too many checkpoints and restores asked from inside this sprite: ${recent.length} in the last minute, the limit is ${limits.perMinute} a minute` +
      (wait === null ? ' (the host allows none)' : `; try again in ${wait} s`)
    );
  }
  const takesOne = ask.op === 'create' || ask.backup;
  const made = guestMade(t);
  if (takesOne && made >= limits.kept) {
    return (
      `this sprite already keeps ${made} checkpoint${made === 1 ? '' : 's'} made from inside it, the limit is ${limits.kept}; ` +
      `delete some on the host (spritely checkpoint list ${sprite}, then spritely checkpoint delete ${sprite} ID)` +
      (ask.op === 'restore' ? ', or restore without an undo checkpoint (--no-backup)' : '')
    );
  }
  return null;
}
