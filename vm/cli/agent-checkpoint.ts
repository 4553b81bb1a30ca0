/**
 * `spritely exec --checkpoint[=COMMENT] NAME -- CMD`: a checkpoint of the whole machine before the
 * command runs, so an agent (or a person) can undo whatever it did with one restore. The id goes
 * to stderr; stdout stays the command's.
 */
import type { ApiClient } from '../api/client.ts';
import { shellQuote } from '../ssh/shell-quote.ts';

const MAX_COMMENT = 1000;

/** "before: CMD" (the command as a shell would read it), or the comment given. */
export function checkpointComment(command: string[], given?: string | boolean): string {
  if (typeof given === 'string' && given.trim()) return given.slice(0, MAX_COMMENT);
  const text = `before: ${command.map(shellQuote).join(' ')}`;
  return text.length > MAX_COMMENT ? `${text.slice(0, MAX_COMMENT - 1)}…` : text;
}

/**
 * `--checkpoint` takes an optional value, which commander would fill from the next word
 * (`exec --checkpoint dev -- ls` would make "dev" the comment). A bare `--checkpoint` before
 * `--` in an `exec` command is rewritten to `--checkpoint=` so only `--checkpoint=TEXT` carries one.
 */
export function bareCheckpointFlag(argv: string[]): string[] {
  const out = [...argv];
  const cmd = out.findIndex((a, i) => i >= 2 && !a.startsWith('-'));
  if (cmd < 0 || out[cmd] !== 'exec') return out;
  for (let i = cmd + 1; i < out.length && out[i] !== '--'; i++) if (out[i] === '--checkpoint') out[i] = '--checkpoint=';
  return out;
}

/**
 * Takes the checkpoint and reports its id on stderr. A sleeping sprite is woken first (the command
 * would wake it anyway): a checkpoint of a sleeping sprite has its disk only, not its RAM.
 */
export async function checkpointBefore(api: ApiClient, name: string, command: string[], given?: string | boolean): Promise<string> {
  const comment = checkpointComment(command, given);
  if ((await api.call('sprites.get', { name })).state === 'sleeping') await api.call('sprites.wake', { name });
  const r = await api.call('checkpoints.create', { name, comment });
  process.stderr.write(`checkpoint ${r.checkpoint.id} of ${name}: ${comment} (undo: spritely checkpoint restore ${name} ${r.checkpoint.id})\n`);
  return r.checkpoint.id;
}
