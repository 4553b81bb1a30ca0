import { describe, expect, it } from 'vitest';
import { addCheckpoint, EMPTY_TIMELINE, type Checkpoint, type Timeline } from './checkpoint-tree.ts';
import { guestMade, recentAsks, refuseGuestAsk } from './guest-checkpoint-limits.ts';

const base: Omit<Checkpoint, 'id' | 'parent'> = { comment: '', createdAt: '2030-01-01T00:00:00Z', auto: false, memory: true, ramBytes: 1, diskBytes: 1, pauseMs: 1 };

function timeline(...kinds: ('user' | 'guest' | 'env' | 'undo')[]): Timeline {
  let t = EMPTY_TIMELINE;
  for (const k of kinds) {
    const extra = k === 'guest' ? { byGuest: true } : k === 'env' ? { envRequest: 'r1' } : k === 'undo' ? { auto: true } : {};
    t = addCheckpoint(t, { ...base, ...extra }).timeline;
  }
  return t;
}

const limits = { kept: 3, perMinute: 2 };
const NOW = 1_000_000;

describe('what a guest may checkpoint and restore from inside', () => {
  it('counts only checkpoints the guest made (its creates, its restores’ undo checkpoints, and older ones that carry an env request)', () => {
    expect(guestMade(timeline('user', 'undo', 'user'))).toBe(0);
    expect(guestMade(timeline('guest', 'user', 'env', 'guest'))).toBe(3);
  });

  it('allows within both limits', () => {
    expect(refuseGuestAsk({ op: 'create' }, timeline('user', 'user', 'user', 'user', 'guest', 'guest'), [NOW - 30_000], NOW, limits, 'dev')).toBeNull();
    expect(refuseGuestAsk({ op: 'restore', backup: false }, timeline('guest', 'guest', 'guest'), [], NOW, limits, 'dev')).toBeNull();
  });

  it('refuses a checkpoint past the kept limit, saying how to make room (the user’s own do not count)', () => {
    const t = timeline('guest', 'user', 'guest', 'env');
    expect(refuseGuestAsk({ op: 'create' }, t, [], NOW, limits, 'dev')).toBe(
      'this sprite already keeps 3 checkpoints made from inside it, the limit is 3; delete some on the host (spritely checkpoint list dev, then spritely checkpoint delete dev ID)',
    );
    expect(refuseGuestAsk({ op: 'restore', backup: true }, t, [], NOW, limits, 'dev')).toMatch(/, or restore without an undo checkpoint \(--no-backup\)$/);
    expect(refuseGuestAsk({ op: 'create' }, timeline('guest'), [], NOW, { kept: 1, perMinute: 9 }, 'dev')).toMatch(/keeps 1 checkpoint made from inside it, the limit is 1;/);
  });

  it('refuses past the rate, saying when the next one is allowed; asks older than a minute do not count', () => {
    const t = timeline();
    expect(refuseGuestAsk({ op: 'create' }, t, [NOW - 50_000, NOW - 10_000], NOW, limits, 'dev')).toBe(
      'too many checkpoints and restores asked from inside this sprite: 2 in the last minute, the limit is 2 a minute; try again in 10 s',
    );
    expect(refuseGuestAsk({ op: 'restore', backup: false }, t, [NOW - 50_000, NOW - 10_000], NOW, limits, 'dev')).toMatch(/^too many/);
    expect(refuseGuestAsk({ op: 'create' }, t, [NOW - 70_000, NOW - 61_000, NOW - 10_000], NOW, limits, 'dev')).toBeNull();
    expect(refuseGuestAsk({ op: 'create' }, t, [NOW - 59_999, NOW - 59_998, NOW - 1], NOW, limits, 'dev')).toMatch(/3 in the last minute, .* try again in 1 s$/);
    expect(refuseGuestAsk({ op: 'create' }, t, [], NOW, { kept: 5, perMinute: 0 }, 'dev')).toBe(
      'too many checkpoints and restores asked from inside this sprite: 0 in the last minute, the limit is 0 a minute (the host allows none)',
    );
  });

  it('keeps only the last minute of ask times', () => {
    expect(recentAsks([NOW - 60_000, NOW - 59_999, NOW, NOW + 1], NOW)).toEqual([NOW - 59_999, NOW]);
  });
});
