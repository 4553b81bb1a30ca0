/** Draws a checkpoint tree as text: children under parents, branches indented, `*` = current. */
import type { Checkpoint } from '../api/contract.ts';
import { formatAge } from '../cli/ui.ts';

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(0)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(0)} MiB`;
  return `${(n / 1024 ** 3).toFixed(1)} GiB`;
}

export function formatTimeline(cps: Checkpoint[], now = Date.now()): string {
  if (!cps.length) return 'no checkpoints yet: spritely checkpoint create NAME -m "what this is"';
  const children = new Map<string | null, Checkpoint[]>();
  for (const c of cps) children.set(c.parent, [...(children.get(c.parent) ?? []), c]);
  const num = (id: string) => Number(id.slice(1));
  for (const list of children.values()) list.sort((a, b) => num(a.id) - num(b.id));
  const lines: string[] = [];
  const walk = (parent: string | null, prefix: string) => {
    const kids = children.get(parent) ?? [];
    kids.forEach((c, i) => {
      const last = i === kids.length - 1;
      const branch = parent === null ? '' : last ? '└─ ' : '├─ ';
      const tags = [c.memory ? 'ram+disk' : 'disk', formatBytes(c.bytes), formatAge(c.createdAt, now), ...(c.auto ? ['auto'] : [])].join(', ');
      lines.push(`${prefix}${branch}${c.current ? '*' : ' '}${c.id}  ${c.comment || '(no comment)'}  [${tags}]`);
      walk(c.id, parent === null ? prefix : prefix + (last ? '   ' : '│  '));
    });
  };
  walk(null, '');
  return lines.join('\n');
}
