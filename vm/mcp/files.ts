/**
 * File tools for the MCP server, built on `sprites.exec` alone (no API change, no guest agent
 * call): each operation is ONE exec of a fixed bash script that receives the path as a positional
 * argument (`bash -c SCRIPT spritely-… PATH …`). The path is never pasted into a shell string, so
 * no file name — spaces, quotes, `$(…)`, a leading `-` — can turn into a command. Bytes travel as
 * base64 (exec output and stdin are UTF-8 strings in the API). Everything here is pure: it builds
 * exec requests and reads their results; tools.ts does the calls.
 */
import { SpritelyError } from '../errors.ts';
import type { MethodInput, MethodOutput } from '../api/contract.ts';

type ExecInput = MethodInput<'sprites.exec'>;
type ExecOutput = MethodOutput<'sprites.exec'>;

export const MAX_PATH_LENGTH = 4096;
export const DEFAULT_READ_BYTES = 256 * 1024;
/** MCP messages carry the content twice (text + structuredContent); stdio clients cap a message (10 MB in the SDK). */
export const MAX_READ_BYTES = 2 * 1024 * 1024;
/** The exec API takes at most 8 MiB of stdin, and the content goes in as base64 (4/3). */
export const MAX_WRITE_BYTES = 6 * 1024 * 1024;
/** Entries file_list returns at most (the rest is counted). */
export const MAX_LIST_ENTRIES = 1000;
const FILE_OP_TIMEOUT_MS = 120_000;

/** Exit codes the scripts use for the cases a person should get a sentence for. */
const E_MISSING = 10;
const E_IS_DIR = 11;
const E_NOT_REGULAR = 12;
const E_NOT_DIR = 13;
const E_MKDIR = 14;

/** Refuses what cannot be a path, with a sentence saying why. Relative paths are relative to /root. */
export function checkPath(path: unknown, what = 'path'): string {
  if (typeof path !== 'string') throw new SpritelyError('invalid_argument', `The ${what} must be a string.`);
  if (path.length === 0) throw new SpritelyError('invalid_argument', `The ${what} is empty; give a file path in the sprite, e.g. /root/notes.txt.`);
  if (path.includes('\0')) throw new SpritelyError('invalid_argument', `The ${what} contains a NUL byte, which no file name can contain.`);
  if (path.length > MAX_PATH_LENGTH) throw new SpritelyError('invalid_argument', `The ${what} is ${path.length} characters; at most ${MAX_PATH_LENGTH}.`);
  return path;
}

// Shared prologue: `$1` is the path. A relative one gets "./" in front (same file), so no command
// takes it for an option ("-x") or an expression ("!", "(" for find).
const PROLOGUE = `set -o pipefail; p=$1; case $p in /*) ;; *) p=./$p ;; esac; `;

const READ_SCRIPT =
  PROLOGUE +
  `max=$2; ` +
  `if [ ! -e "$p" ]; then if [ -L "$p" ]; then echo "it is a symlink to a missing file" >&2; fi; exit ${E_MISSING}; fi; ` +
  `if [ -d "$p" ]; then exit ${E_IS_DIR}; fi; ` +
  `if [ ! -f "$p" ]; then exit ${E_NOT_REGULAR}; fi; ` +
  // One byte more than allowed, so the host can tell "exactly the cap" from "larger" (sizes in /proc lie).
  `head -c $((max + 1)) -- "$p" | base64 -w0`;

const WRITE_SCRIPT =
  PROLOGUE +
  `mode=$2; ` +
  `if [ -d "$p" ]; then exit ${E_IS_DIR}; fi; ` +
  `mkdir -p -- "$(dirname -- "$p")" || exit ${E_MKDIR}; ` +
  `base64 -d > "$p" || exit 1; ` +
  `if [ -n "$mode" ]; then chmod -- "$mode" "$p" || exit 1; fi; ` +
  `stat -c '%s %a' -- "$p"`;

const LIST_SCRIPT =
  PROLOGUE +
  `if [ ! -e "$p" ]; then exit ${E_MISSING}; fi; ` +
  `if [ ! -d "$p" ]; then exit ${E_NOT_DIR}; fi; ` +
  // NUL after every field: file names may hold newlines, tabs, anything but NUL and "/".
  `find -H "$p" -mindepth 1 -maxdepth 1 -printf '%f\\0%y\\0%s\\0%m\\0%T@\\0%l\\0'`;

// ------------------------------------------------------------------ read

export interface ReadResult {
  path: string;
  encoding: 'utf8' | 'base64';
  size: number;
  content: string;
}

export function readRequest(name: string, path: string, maxBytes = DEFAULT_READ_BYTES): ExecInput {
  checkPath(path);
  return {
    name,
    argv: ['bash', '-c', READ_SCRIPT, 'spritely-read', path, String(maxBytes)],
    timeoutMs: FILE_OP_TIMEOUT_MS,
    maxOutputBytes: base64Length(maxBytes + 1) + 64,
  };
}

export function parseRead(name: string, path: string, maxBytes: number, r: ExecOutput): ReadResult {
  failIfBroken(name, r, `read ${path}`);
  if (r.exitCode === E_MISSING) throw new SpritelyError('not_found', `No such file in sprite "${name}": ${path}${r.stderr.trim() ? ` (${r.stderr.trim()})` : ''}.`);
  if (r.exitCode === E_IS_DIR) throw new SpritelyError('invalid_argument', `${path} is a directory in sprite "${name}"; use file_list for directories.`);
  if (r.exitCode === E_NOT_REGULAR) throw new SpritelyError('invalid_argument', `${path} in sprite "${name}" is not a regular file (a device, FIFO or socket); read it with exec instead.`);
  if (r.exitCode !== 0) throw new SpritelyError('internal', `Could not read ${path} in sprite "${name}": ${oneLine(r.stderr) || `exit ${r.exitCode}`}.`);
  const bytes = Buffer.from(r.stdout.trim(), 'base64');
  if (bytes.length > maxBytes) {
    throw new SpritelyError(
      'payload_too_large',
      `${path} is larger than ${maxBytes} bytes (the max_bytes limit${maxBytes < MAX_READ_BYTES ? `; it can be raised to ${MAX_READ_BYTES}` : ''}). Read a part with exec instead, e.g. head -c, tail -n or sed -n '100,200p'.`,
    );
  }
  if (isText(bytes)) return { path, encoding: 'utf8', size: bytes.length, content: bytes.toString('utf8') };
  return { path, encoding: 'base64', size: bytes.length, content: bytes.toString('base64') };
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Text = valid UTF-8, no NUL, and control characters (other than tab, newline, carriage return)
 * at most 1% of the bytes: logs with ANSI colours stay text; anything else goes as base64.
 */
export function isText(bytes: Uint8Array): boolean {
  try {
    utf8.decode(bytes);
  } catch {
    return false;
  }
  let control = 0;
  for (const b of bytes) {
    if (b === 0) return false;
    if ((b < 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0d) || b === 0x7f) control++;
  }
  return control <= bytes.length / 100;
}

// ------------------------------------------------------------------ write

export interface WriteResult {
  path: string;
  bytes: number;
  mode: string;
}

export function parseMode(mode: string | undefined): string | undefined {
  if (mode === undefined || mode === '') return undefined;
  if (!/^0?[0-7]{3}$|^[0-7]{4}$/.test(mode)) throw new SpritelyError('invalid_argument', `The mode must be octal permission bits like "644", "0755" or "4755" (got ${JSON.stringify(mode)}).`);
  return mode;
}

export function contentBytes(content: string, encoding: 'utf8' | 'base64'): Buffer {
  if (encoding === 'utf8') return Buffer.from(content, 'utf8');
  const compact = content.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(compact) || compact.length % 4 === 1) throw new SpritelyError('invalid_argument', 'The content is not valid base64 (encoding "base64" expects standard base64, A-Z a-z 0-9 + / and = padding).');
  return Buffer.from(compact, 'base64');
}

export function writeRequest(name: string, path: string, content: Buffer, mode?: string): ExecInput {
  checkPath(path);
  if (content.length > MAX_WRITE_BYTES) {
    throw new SpritelyError('payload_too_large', `The content is ${content.length} bytes; file_write takes at most ${MAX_WRITE_BYTES} bytes (6 MiB) per call. Write it in parts (exec with "cat >> FILE" and stdin) or generate it inside the sprite.`);
  }
  return {
    name,
    argv: ['bash', '-c', WRITE_SCRIPT, 'spritely-write', path, parseMode(mode) ?? ''],
    stdin: content.toString('base64'),
    timeoutMs: FILE_OP_TIMEOUT_MS,
    maxOutputBytes: 64 * 1024,
  };
}

export function parseWrite(name: string, path: string, r: ExecOutput): WriteResult {
  failIfBroken(name, r, `write ${path}`);
  if (r.exitCode === E_IS_DIR) throw new SpritelyError('invalid_argument', `${path} is a directory in sprite "${name}"; give a file path.`);
  if (r.exitCode === E_MKDIR) throw new SpritelyError('failed_precondition', `Could not create the parent directories of ${path} in sprite "${name}": ${oneLine(r.stderr)}.`);
  if (r.exitCode !== 0) throw new SpritelyError('internal', `Could not write ${path} in sprite "${name}": ${oneLine(r.stderr) || `exit ${r.exitCode}`}.`);
  const m = /^(\d+) ([0-7]+)\s*$/.exec(r.stdout);
  if (!m) throw new SpritelyError('internal', `Wrote ${path} in sprite "${name}" but could not read back its size (got ${JSON.stringify(r.stdout.slice(0, 100))}).`);
  return { path, bytes: Number(m[1]), mode: m[2].padStart(4, '0') };
}

// ------------------------------------------------------------------ list

export type EntryType = 'file' | 'directory' | 'symlink' | 'fifo' | 'socket' | 'char-device' | 'block-device' | 'other';

export interface Entry {
  name: string;
  type: EntryType;
  size: number;
  mode: string;
  mtime: string;
  /** Where a symlink points (as written in the link), else null. */
  target: string | null;
}

export interface ListResult {
  path: string;
  entries: Entry[];
  total: number;
  truncated: boolean;
}

const TYPES: Record<string, EntryType> = { f: 'file', d: 'directory', l: 'symlink', p: 'fifo', s: 'socket', c: 'char-device', b: 'block-device' };

export function listRequest(name: string, path: string): ExecInput {
  checkPath(path);
  return { name, argv: ['bash', '-c', LIST_SCRIPT, 'spritely-list', path], timeoutMs: FILE_OP_TIMEOUT_MS };
}

export function parseList(name: string, path: string, r: ExecOutput, limit = MAX_LIST_ENTRIES): ListResult {
  failIfBroken(name, r, `list ${path}`);
  if (r.exitCode === E_MISSING) throw new SpritelyError('not_found', `No such directory in sprite "${name}": ${path}.`);
  if (r.exitCode === E_NOT_DIR) throw new SpritelyError('invalid_argument', `${path} in sprite "${name}" is not a directory; use file_read for files.`);
  // find exits 1 when some entry could not be read but still prints the rest: keep what came.
  if (r.exitCode !== 0 && !r.stdout) throw new SpritelyError('internal', `Could not list ${path} in sprite "${name}": ${oneLine(r.stderr) || `exit ${r.exitCode}`}.`);
  const fields = r.stdout.split('\0');
  fields.pop(); // after the last NUL
  const entries: Entry[] = [];
  for (let i = 0; i + 6 <= fields.length; i += 6) {
    const [fname, y, size, mode, mtime, target] = fields.slice(i, i + 6);
    const secs = Number(mtime);
    entries.push({
      name: fname,
      type: TYPES[y] ?? 'other',
      size: Number(size),
      mode: mode.padStart(4, '0'),
      mtime: Number.isFinite(secs) ? new Date(Math.round(secs * 1000)).toISOString() : '',
      target: y === 'l' ? target : null,
    });
  }
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return { path, entries: entries.slice(0, limit), total: entries.length, truncated: r.truncated || entries.length > limit };
}

export function formatList(l: ListResult): string {
  if (!l.entries.length) return `${l.path}: empty directory`;
  const lines = l.entries.map((e) => {
    const tag = e.type === 'directory' ? 'dir ' : e.type === 'file' ? 'file' : e.type === 'symlink' ? 'link' : e.type;
    const name = e.type === 'directory' ? `${e.name}/` : e.target !== null ? `${e.name} -> ${e.target}` : e.name;
    return `${tag} ${e.mode} ${String(e.size).padStart(10)} ${e.mtime.slice(0, 19).replace('T', ' ')} ${name}`;
  });
  const more = l.total > l.entries.length ? `\n… ${l.total - l.entries.length} more entries not shown (list with exec, e.g. find or ls, to filter)` : l.truncated ? '\n… the listing was cut short (too much output)' : '';
  return `${l.path} (${l.total} entries)\n${lines.join('\n')}${more}`;
}

// ------------------------------------------------------------------ shared

function failIfBroken(name: string, r: ExecOutput, what: string): void {
  if (r.timedOut) throw new SpritelyError('timeout', `Could not ${what} in sprite "${name}": it took longer than ${FILE_OP_TIMEOUT_MS / 1000} s.`);
  if (r.exitCode === null) throw new SpritelyError('internal', `Could not ${what} in sprite "${name}": the command ended by signal ${r.signal ?? 'unknown'}${r.stderr ? ` (${oneLine(r.stderr)})` : ''}.`);
  if (r.exitCode === 127 && /bash|base64|find|head|stat/.test(r.stderr)) throw new SpritelyError('failed_precondition', `Could not ${what} in sprite "${name}": a tool the file tools need is missing in the sprite (${oneLine(r.stderr)}).`);
}

function oneLine(s: string): string {
  return s.trim().split('\n').slice(-3).join(' / ').slice(0, 500);
}

function base64Length(n: number): number {
  return Math.ceil(n / 3) * 4;
}
