/**
 * How the window arranges itself for its width. Wide: the sidebar, the terminals and the panels
 * (timeline, URLs) side by side. Narrower: the sidebar folds to a rail of icons (the full list
 * opens as a drawer), the panels become drawers over the terminal, and header actions that do
 * not fit move into the sprite's menu — the terminal keeps its width instead of being squeezed.
 */
import type { SpriteAction } from './sprite-actions.ts';

/** Sidebar 264 + panels 320 + a terminal of ~480 px (about 60 columns). */
export const WIDE_MIN_PX = 1080;
/** Below this even the lifecycle actions but the main one go into the menu. */
export const COMPACT_MIN_PX = 720;

export interface WindowLayout {
  sidebar: 'docked' | 'rail';
  panels: 'docked' | 'drawer';
  /** Which header actions stay buttons: all, all but the irreversible ones, or the primary one. */
  inlineActions: 'all' | 'reversible' | 'primary';
}

export function windowLayout(width: number): WindowLayout {
  if (!(width < WIDE_MIN_PX)) return { sidebar: 'docked', panels: 'docked', inlineActions: 'all' };
  if (width >= COMPACT_MIN_PX) return { sidebar: 'rail', panels: 'drawer', inlineActions: 'reversible' };
  return { sidebar: 'rail', panels: 'drawer', inlineActions: 'primary' };
}

/** Splits the offered actions into header buttons and menu entries, keeping their order. */
export function splitActions(actions: SpriteAction[], mode: WindowLayout['inlineActions']): { inline: SpriteAction[]; overflow: SpriteAction[] } {
  const keep = (a: SpriteAction) => mode === 'all' || (mode === 'reversible' ? !a.confirm : a.tone === 'primary');
  return { inline: actions.filter(keep), overflow: actions.filter((a) => !keep(a)) };
}
