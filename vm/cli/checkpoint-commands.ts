/** `checkpoint create|list|restore|delete`: the whole machine (disk + RAM) as a tree. */
import { formatBytes, formatTimeline } from '../checkpoints/timeline-text.ts';
import { client, fmtMs, nameArg, print } from './command-kit.ts';

interface Json {
  json?: boolean;
}

export async function checkpointCreate(name: string, opts: Json & { message?: string }): Promise<void> {
  nameArg(name);
  const r = await (await client()).call('checkpoints.create', { name, comment: opts.message });
  print(opts.json, { ...r.checkpoint, timings: r.timings }, () => `${r.checkpoint.id}${r.checkpoint.memory ? ` (guest paused ${fmtMs(r.checkpoint.pauseMs)}, RAM ${formatBytes(r.checkpoint.ramBytes)})` : ' (disk only)'}`);
}

export async function checkpointList(name: string, opts: Json): Promise<void> {
  nameArg(name);
  const cps = await (await client()).call('checkpoints.list', { name });
  print(opts.json, cps, () => formatTimeline(cps));
}

export async function checkpointRestore(name: string, id: string, opts: Json & { backup: boolean }): Promise<void> {
  nameArg(name);
  const r = await (await client()).call('checkpoints.restore', { name, id, backup: opts.backup });
  print(opts.json, r, () => `restored ${name} to ${id} in ${fmtMs(r.timings.totalMs)}${r.backup ? ` (undo with: spritely checkpoint restore ${name} ${r.backup})` : ''}`);
}

export async function checkpointDelete(name: string, id: string): Promise<void> {
  nameArg(name);
  await (await client()).call('checkpoints.delete', { name, id });
  process.stdout.write(`deleted ${id} of ${name}\n`);
}
