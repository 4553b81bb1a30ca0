import { describe, expect, it } from 'vitest';
import { RateLimiter } from './rate-limiter.ts';

function limiter(ratePerSecond: number, burst: number) {
  let now = 0;
  const rl = new RateLimiter({ ratePerSecond, burst, now: () => now });
  return { rl, advance: (ms: number) => (now += ms) };
}

describe('RateLimiter', () => {
  it('allows a burst, then refuses with a Retry-After', () => {
    const { rl } = limiter(2, 3);
    expect([rl.take('a'), rl.take('a'), rl.take('a')].every((d) => d.ok)).toBe(true);
    expect(rl.take('a')).toEqual({ ok: false, retryAfterSeconds: 1 });
  });
  it('refills at the rate', () => {
    const { rl, advance } = limiter(2, 2);
    rl.take('a');
    rl.take('a');
    expect(rl.take('a').ok).toBe(false);
    advance(499);
    expect(rl.take('a').ok).toBe(false);
    advance(501);
    expect(rl.take('a').ok).toBe(true);
  });
  it('rounds Retry-After up for slow rates', () => {
    const { rl } = limiter(0.1, 1);
    rl.take('a');
    expect(rl.take('a')).toEqual({ ok: false, retryAfterSeconds: 10 });
  });
  it('keeps keys apart', () => {
    const { rl } = limiter(1, 1);
    expect(rl.take('a').ok).toBe(true);
    expect(rl.take('b').ok).toBe(true);
    expect(rl.take('a').ok).toBe(false);
  });
  it('is off at rate 0', () => {
    const { rl } = limiter(0, 0);
    for (let i = 0; i < 100; i += 1) expect(rl.take('a').ok).toBe(true);
    expect(rl.size).toBe(0);
  });
  it('prunes only keys whose bucket has refilled', () => {
    const { rl, advance } = limiter(1, 2);
    rl.take('a');
    rl.take('b');
    rl.take('b');
    advance(1000);
    rl.prune();
    expect(rl.size).toBe(1);
    advance(1000);
    rl.prune();
    expect(rl.size).toBe(0);
  });
});
