/**
 * Per-sprite panels beside the terminals, offered only when the daemon's contract has what they
 * need: the checkpoint timeline today; the URL panel (`urls.*`) registers here when that lands.
 */
import type { ComponentType } from 'react';
import { Timeline } from './components/timeline.tsx';
import type { Sprite } from './transport.ts';

export interface SpritePanel {
  id: string;
  title: string;
  requires: string[];
  Component: ComponentType<{ sprite: Sprite }>;
}

export const SPRITE_PANELS: SpritePanel[] = [{ id: 'timeline', title: 'Timeline', requires: ['checkpoints.list', 'checkpoints.create', 'checkpoints.restore'], Component: Timeline }];

export function availablePanels(has: (method: string) => boolean, panels = SPRITE_PANELS): SpritePanel[] {
  return panels.filter((p) => p.requires.every(has));
}
