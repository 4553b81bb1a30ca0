import { describe, expect, it } from 'vitest';
import type { DiffReport } from '../../vm/api/contract.ts';
import { applyEvent, closeCompare, initialState, pickForCompare, setCompareFile, setCompareResult, type UiState } from './store.ts';

const cp = (id: string, minutes: number) => ({ id, parent: null, comment: '', createdAt: new Date(Date.UTC(2030, 0, 1, 0, minutes)).toISOString(), auto: false, memory: true, bytes: 0, ramBytes: 0, diskBytes: 0, pauseMs: 0, current: false });
const withTree = (): UiState => applyEvent(initialState, { type: 'checkpoints.changed', name: 'a', checkpoints: [cp('v1', 1), cp('v2', 2)] });
const report = { name: 'a', from: 'v1', to: 'v2', entries: [], counts: { added: 0, removed: 0, modified: 0 }, truncated: false, changedBytes: 0, problems: [], timings: { totalMs: 1 } } as DiffReport;

describe('comparing checkpoints (store)', () => {
  it('one pick waits for a second; two start loading older → newer; a third starts over', () => {
    let s = pickForCompare(withTree(), 'a', 'v2');
    expect(s.compare.a).toMatchObject({ picked: ['v2'], status: 'picking', from: null });
    s = pickForCompare(s, 'a', 'v1');
    expect(s.compare.a).toMatchObject({ picked: ['v2', 'v1'], status: 'loading', from: 'v1', to: 'v2' });
    s = pickForCompare(s, 'a', 'now');
    expect(s.compare.a).toMatchObject({ picked: ['now'], status: 'picking' });
  });

  it('un-picking the only pick ends the comparison', () => {
    const s = pickForCompare(pickForCompare(withTree(), 'a', 'v1'), 'a', 'v1');
    expect(s.compare.a).toBeUndefined();
  });

  it('an answer for picks that changed meanwhile is dropped', () => {
    let s = pickForCompare(pickForCompare(withTree(), 'a', 'v1'), 'a', 'now');
    s = setCompareResult(s, 'a', 'v1', 'v2', { report });
    expect(s.compare.a.status).toBe('loading');
    s = setCompareResult(s, 'a', 'v1', 'now', { error: 'boom' });
    expect(s.compare.a).toMatchObject({ status: 'error', error: 'boom' });
  });

  it('a file answer for a file no longer shown is dropped; close and sprite removal clear it all', () => {
    let s = pickForCompare(pickForCompare(withTree(), 'a', 'v1'), 'a', 'v2');
    s = setCompareFile(s, 'a', { path: '/b', status: 'loading', entry: null, error: null });
    s = setCompareFile(s, 'a', { path: '/a', status: 'ready', entry: null, error: null });
    expect(s.compare.a.file?.path).toBe('/b');
    expect(closeCompare(s, 'a').compare.a).toBeUndefined();
    s = applyEvent({ ...s, sprites: { a: {} as never } }, { type: 'sprite.removed', name: 'a' });
    expect(s.compare.a).toBeUndefined();
  });
});
