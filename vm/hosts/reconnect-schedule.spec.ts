import { describe, expect, it } from 'vitest';
import { HOST_RECONNECT, ReconnectSchedule } from './reconnect-schedule.ts';

function clock(start = 1_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

describe('ReconnectSchedule', () => {
  it('backs off exponentially with jitter between half and all of the step, capped at 30 s', () => {
    const c = clock();
    const low = new ReconnectSchedule(HOST_RECONNECT, () => 0, c.now);
    const high = new ReconnectSchedule(HOST_RECONNECT, () => 0.999999, c.now);
    const lows = Array.from({ length: 8 }, () => low.failed());
    const highs = Array.from({ length: 8 }, () => high.failed());
    expect(lows).toEqual([500, 1000, 2000, 4000, 8000, 15000, 15000, 15000]);
    expect(highs).toEqual([1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
    expect(low.consecutiveFailures).toBe(8);
  });

  it('a drop of a connection that was up for a while starts over; a flapping one keeps backing off', () => {
    const c = clock();
    const s = new ReconnectSchedule(HOST_RECONNECT, () => 0.999999, c.now);
    s.failed();
    s.failed();
    s.failed();
    s.connected();
    c.advance(HOST_RECONNECT.stableMs);
    expect(s.dropped()).toBe(1000);
    s.connected();
    c.advance(2000);
    expect(s.dropped()).toBe(2000);
    s.connected();
    c.advance(10);
    expect(s.dropped()).toBe(4000);
  });

  it('someone waiting tries at once, but not within minGapMs of the last attempt', () => {
    const c = clock();
    const s = new ReconnectSchedule(HOST_RECONNECT, () => 0.5, c.now);
    expect(s.demandDelay()).toBe(0);
    s.failed();
    expect(s.demandDelay()).toBe(HOST_RECONNECT.minGapMs);
    c.advance(200);
    expect(s.demandDelay()).toBe(HOST_RECONNECT.minGapMs - 200);
    c.advance(10_000);
    expect(s.demandDelay()).toBe(0);
  });
});
