import { describe, expect, it } from 'vitest';
import { Activity, idleSprites, type IdleFacts } from './idle.ts';

const NOW = 1_000_000_000;
const s = (over: Partial<IdleFacts> = {}): IdleFacts => ({ name: 'a', timeoutSec: 60, holds: 0, busy: false, lastActivityMs: undefined, startedAtMs: NOW - 120_000, ...over });

describe('idleSprites', () => {
  it('is idle after its timeout without activity, counting from its start', () => {
    expect(idleSprites([s()], NOW)).toEqual(['a']);
    expect(idleSprites([s({ startedAtMs: NOW - 60_000 })], NOW)).toEqual([]);
    expect(idleSprites([s({ startedAtMs: NOW - 60_001 })], NOW)).toEqual(['a']);
  });

  it('counts from the later of its last touch and its start', () => {
    expect(idleSprites([s({ lastActivityMs: NOW - 30_000 })], NOW)).toEqual([]);
    expect(idleSprites([s({ lastActivityMs: NOW - 90_000 })], NOW)).toEqual(['a']);
    // touched before it last started (a touch from before a sleep): the start counts
    expect(idleSprites([s({ lastActivityMs: NOW - 500_000, startedAtMs: NOW - 10_000 })], NOW)).toEqual([]);
  });

  it('is never idle when held, busy, or with a timeout of 0', () => {
    expect(idleSprites([s({ holds: 1 })], NOW)).toEqual([]);
    expect(idleSprites([s({ busy: true })], NOW)).toEqual([]);
    expect(idleSprites([s({ timeoutSec: 0 })], NOW)).toEqual([]);
  });

  it('treats an unknown start as now', () => {
    expect(idleSprites([s({ startedAtMs: Number.NaN })], NOW)).toEqual([]);
  });

  it('answers for each sprite on its own', () => {
    expect(idleSprites([s({ name: 'a' }), s({ name: 'b', holds: 2 }), s({ name: 'c', timeoutSec: 600 }), s({ name: 'd', timeoutSec: 1 })], NOW)).toEqual(['a', 'd']);
  });
});

describe('Activity', () => {
  it('touches, and holds that count and release once', () => {
    let now = 5;
    const a = new Activity(() => now);
    expect(a.lastActivity('x')).toBeUndefined();
    const r1 = a.hold('x');
    const r2 = a.hold('x');
    expect(a.holds('x')).toBe(2);
    expect(a.lastActivity('x')).toBe(5);
    now = 9;
    r1();
    r1();
    expect(a.holds('x')).toBe(1);
    expect(a.lastActivity('x')).toBe(9);
    r2();
    expect(a.holds('x')).toBe(0);
    a.touch('y');
    expect(a.lastActivity('y')).toBe(9);
  });
});
