/** `checkpoint create|list|restore|delete|diff|mount|unmount`: the whole machine (disk + RAM) as a tree. */
import { formatReport, terminalSafeJson } from '../checkpoints/diff-report.ts';
import { formatBytes, formatTimeline } from '../checkpoints/timeline-text.ts';
import { SpritelyError } from '../errors.ts';
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

const CHECKPOINT_OR_NOW = /^(v[1-9][0-9]{0,8}|now)$/;

/**
 * `checkpoint diff NAME A [B|now] [-- PATH…]`: B defaults to now; words after `--` are paths in the
 * sprite (so a path can never be mistaken for a checkpoint).
 */
export async function checkpointDiff(name: string, from: string, rest: string[], opts: Json & { patch?: boolean; max?: number }, argv: string[] = process.argv): Promise<void> {
  nameArg(name);
  const dd = argv.indexOf('--');
  const afterDashes = dd >= 0 ? argv.slice(dd + 1) : [];
  const positional = rest.slice(0, rest.length - afterDashes.length);
  if (positional.length > 1) throw new SpritelyError('invalid_argument', `Give at most two checkpoints to compare, and paths after "--" (got ${positional.length + 1} before it).`);
  const to = positional[0] ?? 'now';
  if (!CHECKPOINT_OR_NOW.test(to)) throw new SpritelyError('invalid_argument', `"${to.slice(0, 40)}" is not a checkpoint id or "now"; paths go after "--": spritely checkpoint diff ${name} ${from} -- ${to.slice(0, 40)}`);
  const r = await (await client()).call(
    'checkpoints.diff',
    { name, from, to, ...(afterDashes.length ? { paths: afterDashes } : {}), ...(opts.patch ? { patch: true } : {}), ...(opts.max ? { maxEntries: opts.max } : {}) },
    { timeoutMs: 600_000 },
  );
  process.stdout.write((opts.json ? terminalSafeJson(r, 2) : formatReport(r)) + '\n');
}

export async function checkpointMount(name: string, id: string, opts: Json): Promise<void> {
  nameArg(name);
  const r = await (await client()).call('checkpoints.mount', { name, id });
  print(opts.json, r, () => `${id} of ${name} is mounted inside it at ${r.path} (read-only)`);
}

export async function checkpointUnmount(name: string, id: string, opts: Json & { force?: boolean }): Promise<void> {
  nameArg(name);
  await (await client()).call('checkpoints.unmount', { name, id, force: opts.force });
  if (!opts.json) process.stdout.write(`unmounted ${id} in ${name}\n`);
  else process.stdout.write('{"ok":true}\n');
}
