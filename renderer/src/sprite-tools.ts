/**
 * The per-sprite settings and tools the header's menu offers, as data (like sprite-actions.ts):
 * each lists the contract methods it needs and appears only when the daemon has them all.
 */
export type SpriteToolId = 'network' | 'idle' | 'usage' | 'ssh-config';

export interface SpriteTool {
  id: SpriteToolId;
  label: string;
  requires: string[];
}

export const SPRITE_TOOLS: SpriteTool[] = [
  { id: 'network', label: 'Network…', requires: ['sprites.network'] },
  { id: 'idle', label: 'Idle timeout…', requires: ['config.set', 'config.get'] },
  { id: 'usage', label: 'Usage…', requires: ['sprites.usage'] },
  { id: 'ssh-config', label: 'Copy SSH config', requires: ['sprites.sshConfig'] },
];

export function availableTools(has: (method: string) => boolean, tools = SPRITE_TOOLS): SpriteTool[] {
  return tools.filter((t) => t.requires.every(has));
}
