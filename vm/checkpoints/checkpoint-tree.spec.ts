import { describe, expect, it } from 'vitest';
import { addCheckpoint, cleanComment, EMPTY_TIMELINE, markRamGone, moveHead, ramToPrune, reconcileWithDisk, removeCheckpoint, type Timeline } from './checkpoint-tree.ts';

const base = { comment: '', createdAt: '2026-01-01T00:00:00Z', auto: false, memory: true, ramBytes: 10, diskBytes: 1, pauseMs: 5 };
function build(...steps: (string | ['restore', string] | ['delete', string])[]): Timeline {
  let t = EMPTY_TIMELINE;
  for (const s of steps) {
    if (typeof s === 'string') t = addCheckpoint(t, { ...base, comment: s }).timeline;
    else if (s[0] === 'restore') t = moveHead(t, s[1]);
    else t = removeCheckpoint(t, s[1]);
  }
  return t;
}
const shape = (t: Timeline) => Object.fromEntries(t.checkpoints.map((c) => [c.id, c.parent]));

describe('checkpoint tree', () => {
  it('numbers v1, v2, … as a chain, with the newest as head', () => {
    const t = build('a', 'b', 'c');
    expect(shape(t)).toEqual({ v1: null, v2: 'v1', v3: 'v2' });
    expect(t.head).toBe('v3');
  });

  it('branches: restore v1, then checkpoint → the new one is a child of v1', () => {
    const t = build('a', 'b', ['restore', 'v1'], 'c');
    expect(shape(t)).toEqual({ v1: null, v2: 'v1', v3: 'v1' });
    expect(t.head).toBe('v3');
  });

  it('deleting re-parents children and moves a head on it to its parent; ids are never reused', () => {
    let t = build('a', 'b', 'c', ['restore', 'v2'], ['delete', 'v2']);
    expect(shape(t)).toEqual({ v1: null, v3: 'v1' });
    expect(t.head).toBe('v1');
    t = addCheckpoint(t, base).timeline;
    expect(t.checkpoints.at(-1)).toMatchObject({ id: 'v4', parent: 'v1' });
    t = build('a', ['delete', 'v1']);
    expect(t.head).toBeNull();
    expect(addCheckpoint(t, base).checkpoint).toMatchObject({ id: 'v2', parent: null });
  });

  it('deleting a root with several children makes them roots', () => {
    const t = build('a', 'b', ['restore', 'v1'], 'c', ['delete', 'v1']);
    expect(shape(t)).toEqual({ v2: null, v3: null });
  });

  it('refuses unknown ids', () => {
    expect(() => build('a', ['restore', 'v9'])).toThrow(/no checkpoint v9/);
    expect(() => build('a', ['delete', 'v9'])).toThrow(/no checkpoint v9/);
  });

  it('prunes RAM of all but the newest N that have it', () => {
    let t = build('a', 'b', 'c', 'd');
    expect(ramToPrune(t, 2)).toEqual(['v2', 'v1']);
    t = markRamGone(t, ['v2', 'v1']);
    expect(t.checkpoints.map((c) => c.memory)).toEqual([false, false, true, true]);
    expect(ramToPrune(t, 2)).toEqual([]);
    expect(ramToPrune(t, 0)).toEqual(['v4', 'v3']);
  });

  it('reconciles with the disk: drops entries without a snapshot, reports orphan snapshots', () => {
    const t = build('a', 'b', 'c');
    const r = reconcileWithDisk(t, new Set(['v1', 'v3', 'v7', 'other']));
    expect(r.dropped).toEqual(['v2']);
    expect(r.orphans).toEqual(['v7']);
    expect(shape(r.timeline)).toEqual({ v1: null, v3: 'v1' });
  });

  it('cleans comments: control characters, newlines and overlong text', () => {
    expect(cleanComment('ffmpeg\ninstalled\x1b[31m')).toBe('ffmpeg installed [31m');
    expect(cleanComment(undefined)).toBe('');
    const long = cleanComment('x'.repeat(10_000));
    expect(long.length).toBe(1000);
    expect(long.endsWith('…')).toBe(true);
  });
});
