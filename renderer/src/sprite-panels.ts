/**
 * Per-sprite panels beside the terminals, offered only when the daemon's contract has what they
 * need: the checkpoint timeline and the URL panel (local URL; public URL when a relay is connected).
 */
import type { ComponentType } from 'react';
import { Timeline } from './components/timeline.tsx';
import { UrlPanel } from './components/url-panel.tsx';
import type { Sprite } from './transport.ts';

export interface SpritePanel {
  id: string;
  title: string;
  requires: string[];
  Component: ComponentType<{ sprite: Sprite }>;
}

export const SPRITE_PANELS: SpritePanel[] = [
  { id: 'timeline', title: 'Timeline', requires: ['checkpoints.list', 'checkpoints.create', 'checkpoints.restore'], Component: Timeline },
  { id: 'urls', title: 'URLs', requires: ['sprites.url'], Component: UrlPanel },
];

export function availablePanels(has: (method: string) => boolean, panels = SPRITE_PANELS): SpritePanel[] {
  return panels.filter((p) => p.requires.every(has));
}
