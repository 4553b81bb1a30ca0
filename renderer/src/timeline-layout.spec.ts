import { describe, expect, it } from 'vitest';
import { layoutTimeline, type Checkpoint } from './timeline-layout.ts';

let t = Date.parse('2025-01-01T00:00:00Z');
const cp = (id: string, parent: string | null, over: Partial<Checkpoint> = {}): Checkpoint => ({
  id,
  parent,
  comment: '',
  createdAt: new Date((t += 60_000)).toISOString(),
  auto: false,
  memory: true,
  bytes: 1000,
  ramBytes: 800,
  diskBytes: 200,
  pauseMs: 300,
  current: false,
  ...over,
});
const shape = (l: ReturnType<typeof layoutTimeline>) => l.rows.map((r) => `${r.checkpoint?.id ?? 'now'}@${r.lane}`);

describe('layoutTimeline', () => {
  it('a straight line ends in "now" after the current checkpoint', () => {
    const l = layoutTimeline([cp('v1', null), cp('v2', 'v1'), cp('v3', 'v2', { current: true })]);
    expect(shape(l)).toEqual(['v1@0', 'v2@0', 'v3@0', 'now@0']);
    expect(l.edges).toHaveLength(3);
    expect(l.lanes).toBe(1);
  });

  it('restore-and-go-on makes a branch; the newest stays at the end', () => {
    // v1 → v2; restore v1 (auto backup v3 of the state after v2) → go on → v4
    const l = layoutTimeline([cp('v1', null), cp('v2', 'v1'), cp('v3', 'v2', { auto: true }), cp('v4', 'v1', { current: true })]);
    expect(shape(l)).toEqual(['v1@0', 'v2@0', 'v3@0', 'v4@1', 'now@1']);
    expect(l.edges).toContainEqual({ from: { row: 0, lane: 0 }, to: { row: 3, lane: 1 } });
    expect(l.lanes).toBe(2);
  });

  it('the live machine branches off when the current checkpoint already has children', () => {
    const l = layoutTimeline([cp('v1', null, { current: true }), cp('v2', 'v1', { auto: true })]);
    expect(shape(l)).toEqual(['v1@0', 'v2@0', 'now@1']);
  });

  it('reuses lanes that are free again, and survives orphans and an empty tree', () => {
    const l = layoutTimeline([cp('v1', null), cp('v2', 'v1'), cp('v3', 'v1'), cp('v4', 'v1'), cp('v5', 'gone', { current: true })]);
    expect(shape(l)).toEqual(['v1@0', 'v2@0', 'v3@1', 'v4@2', 'v5@0', 'now@0']);
    expect(shape(layoutTimeline([]))).toEqual(['now@0']);
    expect(shape(layoutTimeline([cp('v1', null)], { now: false }))).toEqual(['v1@0']);
  });
});
