/**
 * Reconnect delays for the tunnel client: exponential with "equal jitter" (half fixed, half random),
 * so a relay restart does not see every daemon return in the same instant, yet no retry is immediate.
 */

export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 500, maxMs: 30_000 };

/** Delay before retry number `attempt` (0-based); `random` returns [0, 1). */
export function backoffDelay(attempt: number, options: BackoffOptions = DEFAULT_BACKOFF, random: () => number = Math.random): number {
  const ceiling = Math.min(options.maxMs, options.initialMs * 2 ** Math.min(Math.max(attempt, 0), 30));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}
