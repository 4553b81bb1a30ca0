/**
 * Per-client token buckets for the public side (and tunnel handshakes), keyed by relay/rate-key.ts
 * (IPv4 address, IPv6 /64). Sans-IO: the clock is injected so the policy is unit-tested exactly.
 * Buckets that have refilled are pruned, so memory stays bounded by the number of clients active in
 * the last `burst / rate` seconds.
 */

export interface RateLimitOptions {
  /** Sustained requests per second per key; 0 disables limiting. */
  ratePerSecond: number;
  /** Requests a key may make at once before the rate applies. */
  burst: number;
  now?: () => number;
}

export type RateDecision = { ok: true } | { ok: false; retryAfterSeconds: number };

interface Bucket {
  tokens: number;
  updatedAt: number;
}

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly now: () => number;

  constructor(private readonly options: RateLimitOptions) {
    this.now = options.now ?? (() => performance.now());
  }

  take(key: string): RateDecision {
    const { ratePerSecond, burst } = this.options;
    if (ratePerSecond <= 0) return { ok: true };
    const now = this.now();
    const bucket = this.buckets.get(key) ?? { tokens: burst, updatedAt: now };
    bucket.tokens = Math.min(burst, bucket.tokens + ((now - bucket.updatedAt) / 1000) * ratePerSecond);
    bucket.updatedAt = now;
    this.buckets.set(key, bucket);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return { ok: true };
    }
    return { ok: false, retryAfterSeconds: Math.max(1, Math.ceil((1 - bucket.tokens) / ratePerSecond)) };
  }

  /** Forgets keys whose bucket is full again (they would start from `burst` anyway). */
  prune(): void {
    const { ratePerSecond, burst } = this.options;
    const now = this.now();
    for (const [key, bucket] of this.buckets) {
      if (bucket.tokens + ((now - bucket.updatedAt) / 1000) * ratePerSecond >= burst) this.buckets.delete(key);
    }
  }

  get size(): number {
    return this.buckets.size;
  }
}
