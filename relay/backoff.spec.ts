import { describe, expect, it } from 'vitest';
import { backoffDelay } from './backoff.ts';

describe('backoffDelay', () => {
  const options = { initialMs: 500, maxMs: 30_000 };
  it('doubles from the initial delay, half of it jittered', () => {
    expect(backoffDelay(0, options, () => 0)).toBe(250);
    expect(backoffDelay(0, options, () => 0.999999)).toBe(500);
    expect(backoffDelay(1, options, () => 0)).toBe(500);
    expect(backoffDelay(3, options, () => 0)).toBe(2000);
  });
  it('is capped', () => {
    expect(backoffDelay(10, options, () => 0.999999)).toBe(30_000);
    expect(backoffDelay(1000, options, () => 0)).toBe(15_000);
  });
  it('treats a negative attempt as the first', () => expect(backoffDelay(-3, options, () => 0)).toBe(250));
});
