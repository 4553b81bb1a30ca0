/**
 * The actions a sprite offers, as data. Each names the contract methods it needs, so a capability
 * shows up only when the daemon has it: sleep/wake join this list (and their buttons appear) the
 * day `sprites.sleep` / `sprites.wake` land in vm/api/contract.ts; nothing here is a dead button.
 * Panels (the checkpoint timeline, URLs) follow the same rule in `sprite-panels.ts`.
 */
import type { Sprite } from './transport.ts';

export interface SpriteAction {
  id: string;
  label: string;
  /** Contract methods that must exist for the action to be offered. */
  requires: string[];
  /** Whether it makes sense in this sprite's state. */
  when(sprite: Sprite): boolean;
  tone?: 'primary' | 'danger';
  /** `type-name`: the user types the sprite's name first (irreversible actions). */
  confirm?: 'type-name';
}

const idle = (s: Sprite) => !s.operation;

export const SPRITE_ACTIONS: SpriteAction[] = [
  { id: 'start', label: 'Start', requires: ['sprites.start'], when: (s) => idle(s) && (s.state === 'stopped' || s.state === 'crashed'), tone: 'primary' },
  { id: 'stop', label: 'Stop', requires: ['sprites.stop'], when: (s) => idle(s) && s.state === 'running' },
  { id: 'destroy', label: 'Destroy…', requires: ['sprites.destroy'], when: () => true, tone: 'danger', confirm: 'type-name' },
];

export function availableActions(has: (method: string) => boolean, sprite: Sprite, actions = SPRITE_ACTIONS): SpriteAction[] {
  return actions.filter((a) => a.requires.every(has) && a.when(sprite));
}
