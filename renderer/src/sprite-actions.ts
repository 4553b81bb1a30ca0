/**
 * The actions a sprite offers, as data. Each names the contract method it calls (input `{name}`),
 * so a capability shows up only when the daemon has it: sleep/wake buttons appear when the
 * daemon's contract has `sprites.sleep` / `sprites.wake`; nothing here is a dead button.
 * Panels (the checkpoint timeline, URLs) follow the same rule in `sprite-panels.ts`.
 */
import type { Sprite } from './transport.ts';

export interface SpriteAction {
  id: string;
  label: string;
  /** The contract method to call with `{name}` (destroy goes through its confirm first). */
  method: string;
  /** What the list shows as "busy · …" while it runs. */
  op: string;
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
  { id: 'start', label: 'Start', method: 'sprites.start', op: 'start', requires: ['sprites.start'], when: (s) => idle(s) && (s.state === 'stopped' || s.state === 'crashed'), tone: 'primary' },
  { id: 'wake', label: 'Wake', method: 'sprites.wake', op: 'wake', requires: ['sprites.wake'], when: (s) => idle(s) && s.state === 'sleeping', tone: 'primary' },
  { id: 'sleep', label: 'Sleep', method: 'sprites.sleep', op: 'sleep', requires: ['sprites.sleep'], when: (s) => idle(s) && s.state === 'running' },
  { id: 'stop', label: 'Stop', method: 'sprites.stop', op: 'stop', requires: ['sprites.stop'], when: (s) => idle(s) && (s.state === 'running' || s.state === 'sleeping') },
  { id: 'destroy', label: 'Destroy…', method: 'sprites.destroy', op: 'destroy', requires: ['sprites.destroy'], when: () => true, tone: 'danger', confirm: 'type-name' },
];

export function availableActions(has: (method: string) => boolean, sprite: Sprite, actions = SPRITE_ACTIONS): SpriteAction[] {
  return actions.filter((a) => has(a.method) && a.requires.every(has) && a.when(sprite));
}
