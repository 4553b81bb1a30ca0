import { describe, expect, it } from 'vitest';
import { SPRITE_ACTIONS } from './sprite-actions.ts';
import { sprite } from './testing/fake-transport.ts';
import { splitActions, windowLayout } from './window-layout.ts';

const ids = (xs: { id: string }[]) => xs.map((x) => x.id);

describe('window layout', () => {
  it('docks everything when wide, folds to a rail and drawers when not', () => {
    expect(windowLayout(1280)).toEqual({ sidebar: 'docked', panels: 'docked', inlineActions: 'all' });
    expect(windowLayout(1080).sidebar).toBe('docked');
    expect(windowLayout(1079)).toEqual({ sidebar: 'rail', panels: 'drawer', inlineActions: 'reversible' });
    expect(windowLayout(820)).toEqual({ sidebar: 'rail', panels: 'drawer', inlineActions: 'reversible' });
    expect(windowLayout(719).inlineActions).toBe('primary');
    expect(windowLayout(Number.NaN).sidebar).toBe('docked');
  });

  it('moves what does not fit into the menu, in order', () => {
    const running = SPRITE_ACTIONS.filter((a) => a.when(sprite('a')));
    expect(ids(running)).toEqual(['sleep', 'stop', 'destroy']);
    expect(splitActions(running, 'all')).toEqual({ inline: running, overflow: [] });
    expect([ids(splitActions(running, 'reversible').inline), ids(splitActions(running, 'reversible').overflow)]).toEqual([['sleep', 'stop'], ['destroy']]);
    expect([ids(splitActions(running, 'primary').inline), ids(splitActions(running, 'primary').overflow)]).toEqual([[], ['sleep', 'stop', 'destroy']]);
    const stopped = SPRITE_ACTIONS.filter((a) => a.when(sprite('a', { state: 'stopped' })));
    expect(ids(splitActions(stopped, 'primary').inline)).toEqual(['start']);
  });
});
