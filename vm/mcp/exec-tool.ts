/**
 * The `exec` tool's pure half: what a model sends (an argv, or one shell command line) becomes a
 * `sprites.exec` request, and the result becomes text a model reads well plus the same facts as
 * structured data. Limits are tighter than the API's because the output lands in a model's context
 * (and an MCP message carries it twice: text and structuredContent).
 *
 * The timeout is the API's `timeoutMs`, which the daemon enforces inside the sprite (coreutils
 * `timeout`: TERM to the command's process group, KILL 5 s later); a kill reads here as "timed
 * out, no exit code".
 */
import { SpritelyError } from '../errors.ts';
import type { MethodInput, MethodOutput } from '../api/contract.ts';
import { checkPath } from './files.ts';

type ExecInput = MethodInput<'sprites.exec'>;
type ExecOutput = MethodOutput<'sprites.exec'>;

export const DEFAULT_EXEC_TIMEOUT_MS = 5 * 60_000;
export const MAX_EXEC_TIMEOUT_MS = 24 * 3600_000;
export const DEFAULT_EXEC_OUTPUT_BYTES = 64 * 1024;
export const MAX_EXEC_OUTPUT_BYTES = 1024 * 1024;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export interface ExecArgs {
  name: string;
  argv?: string[];
  command?: string;
  cwd?: string;
  env?: Record<string, string>;
  stdin?: string;
  timeout_ms?: number;
  max_output_bytes?: number;
  checkpoint_before?: boolean | string;
}

export interface ExecPlan {
  req: ExecInput;
  /** The timeout the model asked for (the daemon enforces it in the guest). */
  timeoutMs: number;
  maxOutputBytes: number;
}

export function buildExecRequest(a: ExecArgs): ExecPlan {
  if (a.argv !== undefined && a.command !== undefined) throw new SpritelyError('invalid_argument', 'Give either argv (a list of words) or command (a shell command line), not both.');
  let argv: string[];
  if (a.command !== undefined) {
    if (!a.command.trim()) throw new SpritelyError('invalid_argument', 'The command is empty.');
    if (a.command.includes('\0')) throw new SpritelyError('invalid_argument', 'The command contains a NUL byte.');
    argv = ['bash', '-lc', a.command];
  } else if (a.argv !== undefined) {
    if (!a.argv.length) throw new SpritelyError('invalid_argument', 'argv is empty; give the program and its arguments, e.g. ["ls", "-la", "/root"].');
    if (a.argv[0] === '') throw new SpritelyError('invalid_argument', 'argv[0] (the program) is empty.');
    const bad = a.argv.findIndex((w) => w.includes('\0'));
    if (bad >= 0) throw new SpritelyError('invalid_argument', `argv[${bad}] contains a NUL byte, which no argument can carry.`);
    argv = a.argv;
  } else {
    throw new SpritelyError('invalid_argument', 'Nothing to run: give argv (e.g. ["ls", "-la"]) or command (e.g. "make test 2>&1 | tail -50").');
  }
  if (a.cwd !== undefined) checkPath(a.cwd, 'cwd');
  for (const [k, v] of Object.entries(a.env ?? {})) {
    if (!ENV_NAME.test(k)) throw new SpritelyError('invalid_argument', `Invalid environment variable name ${JSON.stringify(k)} (letters, digits and "_", not starting with a digit).`);
    if (v.includes('\0')) throw new SpritelyError('invalid_argument', `The value of ${k} contains a NUL byte.`);
  }
  const timeoutMs = a.timeout_ms ?? DEFAULT_EXEC_TIMEOUT_MS;
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > MAX_EXEC_TIMEOUT_MS) throw new SpritelyError('invalid_argument', `timeout_ms must be a whole number of milliseconds from 1 to ${MAX_EXEC_TIMEOUT_MS} (24 h).`);
  const maxOutputBytes = a.max_output_bytes ?? DEFAULT_EXEC_OUTPUT_BYTES;
  if (!Number.isInteger(maxOutputBytes) || maxOutputBytes < 0 || maxOutputBytes > MAX_EXEC_OUTPUT_BYTES) throw new SpritelyError('invalid_argument', `max_output_bytes must be from 0 to ${MAX_EXEC_OUTPUT_BYTES} (1 MiB) per stream.`);
  const req: ExecInput = {
    name: a.name,
    argv,
    timeoutMs,
    maxOutputBytes,
  };
  if (a.cwd !== undefined) req.cwd = a.cwd;
  if (a.env && Object.keys(a.env).length) req.env = a.env;
  if (a.stdin !== undefined) req.stdin = a.stdin;
  return { req, timeoutMs, maxOutputBytes };
}

/**
 * The API's result as the model should see it: when `timeout` fired it exits 124 (TERM worked),
 * or KILL ends it with the command (137 from a shell), which is a timeout with no exit code, not a program's exit status. A
 * program that exits 124 by itself before the time is up keeps its code.
 */
export function shapeExecResult(r: ExecOutput, plan: Pick<ExecPlan, 'timeoutMs'>): ExecOutput {
  // After KILL, `timeout` is in the killed process group itself: the exec then ends by signal.
  const killed = r.exitCode === 137 || /^(SIG)?KILL$/.test(r.signal ?? '');
  const fired = (r.exitCode === 124 || killed) && r.durationMs >= plan.timeoutMs;
  if (!fired && !r.timedOut) return r;
  return { ...r, exitCode: null, signal: killed ? 'KILL' : 'TERM', timedOut: true };
}

/** The checkpoint comment `checkpoint_before` asks for, or null when it asks for none. */
export function checkpointComment(a: Pick<ExecArgs, 'argv' | 'command' | 'checkpoint_before'>): string | null {
  const c = a.checkpoint_before;
  if (c === undefined || c === false) return null;
  if (typeof c === 'string' && c.trim()) return c.trim().slice(0, 1000);
  const what = a.command !== undefined ? a.command : (a.argv ?? []).map(displayWord).join(' ');
  const line = what.replace(/\s+/g, ' ').trim();
  return `before: ${line.length > 200 ? line.slice(0, 199) + '…' : line}`;
}

function displayWord(w: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`;
}

export interface ExecToolResult extends ExecOutput {
  /** The checkpoint taken before running (checkpoint_before), else null. */
  checkpoint: string | null;
}

/** What the model reads: the outcome on the first line, then each non-empty stream. */
export function formatExecResult(r: ExecToolResult, req: Pick<ExecPlan, 'timeoutMs' | 'maxOutputBytes'>): string {
  const how = r.timedOut
    ? `timed out after ${req.timeoutMs} ms and was killed (raise timeout_ms, or start long-running programs in the background with nohup … &)`
    : r.exitCode !== null
      ? `exit code ${r.exitCode}`
      : `killed by signal ${r.signal ?? 'unknown'}`;
  const lines = [`${how} (${fmtMs(r.durationMs)})`];
  if (r.checkpoint) lines.push(`checkpoint ${r.checkpoint} was taken before running (checkpoint_restore it to undo what this command did)`);
  if (r.truncated) lines.push(`output truncated: only the first ${req.maxOutputBytes} bytes of each stream are kept (raise max_output_bytes, or redirect to a file and read parts of it)`);
  if (r.stdout) lines.push('--- stdout ---', r.stdout.replace(/\n$/, ''));
  if (r.stderr) lines.push('--- stderr ---', r.stderr.replace(/\n$/, ''));
  if (!r.stdout && !r.stderr) lines.push('(no output)');
  return lines.join('\n');
}

export function fmtMs(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}
