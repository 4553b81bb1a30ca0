/**
 * Draws a checkpoint tree as text: children under parents, branches indented, `*` = current, what
 * each takes and what deleting it would free. For the CLI, the MCP server and spritely-env's
 * `checkpoint list` in the guest.
 */
import { formatAge, formatBytes } from '../text-format.ts';
import type { CheckpointView } from './checkpoint-ops.ts';

export { formatBytes };

/** What the drawing needs of a checkpoint (the API's Checkpoint and the engine's view both fit). */
type Drawn = Pick<CheckpointView, 'id' | 'parent' | 'comment' | 'createdAt' | 'auto' | 'memory' | 'bytes' | 'current'> & Partial<Pick<CheckpointView, 'freeBytes' | 'mounted'>>;

export function formatTimeline<C extends Drawn>(cps: C[], now = Date.now()): string {
  if (!cps.length) return 'no checkpoints yet: spritely checkpoint create NAME -m "what this is"';
  const children = new Map<string | null, C[]>();
  for (const c of cps) children.set(c.parent, [...(children.get(c.parent) ?? []), c]);
  const num = (id: string) => Number(id.slice(1));
  for (const list of children.values()) list.sort((a, b) => num(a.id) - num(b.id));
  const lines: string[] = [];
  const walk = (parent: string | null, prefix: string) => {
    const kids = children.get(parent) ?? [];
    kids.forEach((c, i) => {
      const last = i === kids.length - 1;
      const branch = parent === null ? '' : last ? '└─ ' : '├─ ';
      const frees = typeof c.freeBytes === 'number' ? [`deleting frees ${formatBytes(c.freeBytes)}`] : [];
      const tags = [c.memory ? 'ram+disk' : 'disk', formatBytes(c.bytes), ...frees, formatAge(c.createdAt, now), ...(c.auto ? ['auto'] : []), ...(c.mounted ? ['mounted'] : [])].join(', ');
      lines.push(`${prefix}${branch}${c.current ? '*' : ' '}${c.id}  ${c.comment || '(no comment)'}  [${tags}]`);
      walk(c.id, parent === null ? prefix : prefix + (last ? '   ' : '│  '));
    });
  };
  walk(null, '');
  return lines.join('\n');
}
