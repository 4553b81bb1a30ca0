/**
 * Per-sprite panels beside the terminals, offered only when the daemon's contract has what they
 * need. Empty today: the checkpoint timeline (`checkpoints.*`) and the URL panel (`urls.*`)
 * register here when those methods land, e.g.
 *   { id: 'timeline', title: 'Timeline', requires: ['checkpoints.list', 'checkpoints.restore'], Component: Timeline }
 */
import type { ComponentType } from 'react';
import type { Sprite } from './transport.ts';

export interface SpritePanel {
  id: string;
  title: string;
  requires: string[];
  Component: ComponentType<{ sprite: Sprite }>;
}

export const SPRITE_PANELS: SpritePanel[] = [];

export function availablePanels(has: (method: string) => boolean, panels = SPRITE_PANELS): SpritePanel[] {
  return panels.filter((p) => p.requires.every(has));
}
