/**
 * `spritely cp SRC DST`: files and directory trees between this computer and a sprite, either way,
 * with `docker cp` semantics. The bytes travel as a tar stream: the system `tar` here (GNU tar or
 * bsdtar, portable flags only) and GNU tar in the guest, joined by the daemon's exec stream.
 * Renaming (copying `a` to a new name `b`) is done by the guest's GNU tar (`--transform`), so the
 * host's tar never needs a non-portable flag. Modes and mtimes are kept; files in the sprite
 * belong to root (like `docker cp`).
 *
 * Memory stays bounded both ways: sprite → here, each output chunk is acknowledged to the daemon
 * only after this side's tar took it; here → sprite, the guest's tar reports what it has read
 * (`--checkpoint`) and no more than CREDIT_WINDOW bytes are sent ahead of that.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import type { ApiClient } from '../api/client.ts';
import { SpritelyError } from '../errors.ts';
import { spriteNameProblem } from '../names.ts';
import { ExecStream } from './agent-exec-stream.ts';

/** Where relative paths in a sprite start: exec runs as root in root's home. */
export const GUEST_HOME = '/root';

/** One side of a copy as written on the command line: `NAME:PATH` (a sprite) or a local path. */
export interface CpArg {
  sprite: string | null;
  path: string;
}

export function parseCpArg(arg: string): CpArg {
  if (arg === '') throw new SpritelyError('invalid_argument', 'An empty path is not a path.');
  const colon = arg.indexOf(':');
  const slash = arg.indexOf('/');
  // Like docker cp: absolute and ./relative paths are local, and so is anything whose first ":"
  // comes after a "/" (write ./a:b for a local file named "a:b").
  if (arg.startsWith('/') || arg.startsWith('.') || colon < 0 || (slash >= 0 && slash < colon)) return { sprite: null, path: arg };
  const name = arg.slice(0, colon);
  const problem = spriteNameProblem(name);
  if (problem) throw new SpritelyError('invalid_argument', `"${arg}" does not start with a sprite name (${problem}). A local path with a ":" in it is written ./${arg}.`);
  return { sprite: name, path: arg.slice(colon + 1) };
}

/** A path's meaning: its absolute form and what its spelling asks for (trailing "/" or "/."). */
export interface PathSpec {
  /** As the user wrote it (with `NAME:` for a sprite), for messages. */
  shown: string;
  /** `NAME:` for a path in a sprite, else empty. */
  prefix: string;
  abs: string;
  dir: string;
  base: string;
  /** Ends with "/" or "/." (or is "."): the path must be a directory. */
  trailingSlash: boolean;
  /** Ends with "/." (or is "."): for a source, its contents rather than itself. */
  contentsOnly: boolean;
}

export function pathSpec(p: string, cwd: string, shownPrefix = ''): PathSpec {
  const contentsOnly = p === '.' || p.endsWith('/.') || p === '/';
  const trailingSlash = contentsOnly || p.endsWith('/');
  const abs = path.posix.resolve(cwd, p);
  return { shown: `${shownPrefix}${p}`, prefix: shownPrefix, abs, dir: path.posix.dirname(abs), base: abs === '/' ? '' : path.posix.basename(abs), trailingSlash, contentsOnly: contentsOnly || abs === '/' };
}

/** A path in a sprite: empty means root's home, "~" and "~/…" are root's home too. */
export function guestPathSpec(sprite: string, p: string): PathSpec {
  const expanded = p === '' || p === '~' ? GUEST_HOME : p.startsWith('~/') ? GUEST_HOME + p.slice(1) : p;
  const spec = pathSpec(expanded, GUEST_HOME, `${sprite}:`);
  return { ...spec, shown: `${sprite}:${p}` };
}

export type PathKind = 'dir' | 'file' | 'none';

export interface CopyPlan {
  /** The source side's tar runs here (`-C`) and archives `member` (`.` = the directory's contents). */
  archiveDir: string;
  member: string;
  /** The destination side's tar extracts here. */
  extractDir: string;
  /** The archive's top-level name becomes this (null: keep it). */
  rename: { from: string; to: string } | null;
}

/**
 * docker cp's rules. A file goes into an existing directory under its own name, onto an existing
 * file, or to a new name whose parent exists. A directory goes into an existing directory (its
 * contents only if the source ends with "/."), or becomes a new directory whose parent exists.
 */
export function planCopy(src: PathSpec, srcKind: PathKind, dst: PathSpec, dstKind: PathKind, dstParentKind: PathKind): CopyPlan {
  if (srcKind === 'none') throw new SpritelyError('not_found', `The source ${src.shown} does not exist.`);
  if (srcKind === 'file' && src.trailingSlash) throw new SpritelyError('invalid_argument', `The source ${src.shown} is not a directory.`);
  const parentMustExist = () => {
    if (dstParentKind !== 'dir') throw new SpritelyError('not_found', `The destination's parent directory ${dst.prefix}${dst.dir} does not exist${dstParentKind === 'file' ? ' (it is a file)' : ''}; create it first.`);
  };
  const renamed = (): CopyPlan => ({
    archiveDir: src.dir,
    member: src.base,
    extractDir: dst.dir,
    rename: src.base === dst.base ? null : { from: src.base, to: dst.base },
  });
  if (srcKind === 'file') {
    if (dstKind === 'dir') return { archiveDir: src.dir, member: src.base, extractDir: dst.abs, rename: null };
    if (dstKind === 'file') {
      if (dst.trailingSlash) throw new SpritelyError('invalid_argument', `The destination ${dst.shown} is not a directory.`);
      return renamed();
    }
    if (dst.trailingSlash) throw new SpritelyError('not_found', `The destination directory ${dst.shown} does not exist.`);
    parentMustExist();
    return renamed();
  }
  if (dstKind === 'file') throw new SpritelyError('invalid_argument', `Cannot copy the directory ${src.shown} onto the file ${dst.shown}.`);
  if (dstKind === 'dir') {
    if (src.contentsOnly) return { archiveDir: src.abs, member: '.', extractDir: dst.abs, rename: null };
    return { archiveDir: src.dir, member: src.base, extractDir: dst.abs, rename: null };
  }
  parentMustExist();
  if (src.contentsOnly) {
    // "/." or "/" to a new directory: extract into the new directory, made by the archive's "."
    // entry under the new name.
    return { archiveDir: src.abs, member: '.', extractDir: dst.dir, rename: { from: '.', to: dst.base } };
  }
  return renamed();
}

/** A GNU tar `--transform` that renames the top-level entry (and hard links to it; never symlink targets). */
export function transformArg(from: string, to: string): string {
  if (from.includes('/') || to.includes('/') || /[\n\r]/.test(from + to)) throw new SpritelyError('invalid_argument', 'A file name to copy cannot contain "/" or a line break.');
  // The delimiter: a character in neither name (the pattern itself uses "/", "$", "|" and "\\").
  const delim = [...',#%!@:;~=+'].find((c) => !from.includes(c) && !to.includes(c));
  if (!delim) throw new SpritelyError('invalid_argument', `Cannot rename ${JSON.stringify(from)} to ${JSON.stringify(to)}: copy it under its own name instead.`);
  const bre = from.replace(/[\\.*[\]^$]/g, (c) => `\\${c}`);
  const repl = to.replace(/[\\&]/g, (c) => `\\${c}`);
  // "." (a directory's contents) is archived as "./", "./a", …: rename the "." component only.
  return `--transform=s${delim}^${bre}\\($\\|/\\)${delim}${repl}\\1${delim}rhS`;
}

/** Records of 10240 bytes (GNU tar's default blocking) between two progress reports of the guest's tar. */
export const ACK_RECORDS = 100;
export const RECORD_BYTES = 10240;
export const ACK_MARK = '@spritely-ack';
/** Bytes sent to the guest beyond what its tar has read. */
export const CREDIT_WINDOW = 8 * 1024 * 1024;

/** The guest's tar that unpacks what this computer sends (files owned by root, modes and mtimes kept). */
export function guestExtractArgv(plan: CopyPlan): string[] {
  return [
    'tar', '-x', '-p', '--no-same-owner', '--warning=no-unknown-keyword', '-f', '-',
    `--checkpoint=${ACK_RECORDS}`, `--checkpoint-action=echo=${ACK_MARK} %u`,
    '-C', plan.extractDir, ...(plan.rename ? [transformArg(plan.rename.from, plan.rename.to)] : []),
  ];
}

/** The guest's tar that packs what is copied to this computer. */
export function guestCreateArgv(plan: CopyPlan): string[] {
  return ['tar', '-c', '-f', '-', '-C', plan.archiveDir, ...(plan.rename ? [transformArg(plan.rename.from, plan.rename.to)] : []), '--', plan.member];
}

/** This computer's tar (GNU or bsdtar): only flags both understand. */
export function hostCreateArgv(plan: CopyPlan): string[] {
  return ['-c', '-f', '-', '-C', plan.archiveDir, '--', plan.member];
}

export function hostExtractArgv(plan: CopyPlan): string[] {
  return ['-x', '-p', '-f', '-', '-C', plan.extractDir];
}

/** Reads the guest's tar progress lines out of its stderr; everything else is kept as the error text. */
export class AckParser {
  private partial = '';
  private readonly other: string[] = [];
  constructor(private readonly onAck: (recordsRead: number) => void) {}

  push(chunk: Buffer | string): void {
    const lines = (this.partial + chunk.toString()).split('\n');
    this.partial = lines.pop() ?? '';
    for (const line of lines) this.line(line);
  }

  end(): void {
    if (this.partial) this.line(this.partial);
    this.partial = '';
  }

  text(): string {
    return this.other.join('\n').trim();
  }

  private line(line: string): void {
    const at = line.indexOf(`${ACK_MARK} `);
    if (at >= 0) {
      const n = Number(line.slice(at + ACK_MARK.length + 1).trim());
      if (Number.isInteger(n)) return this.onAck(n);
    }
    if (line.trim()) this.other.push(line);
  }
}

// ------------------------------------------------------------------ the command

const KIND_SCRIPT = `while [ $# -gt 1 ]; do
  if [ "$1" = l ] && [ -L "$2" ]; then echo file
  elif [ -d "$2" ]; then echo dir
  elif [ -e "$2" ] || [ -L "$2" ]; then echo file
  else echo none; fi
  shift 2
done`;

/** Kinds of paths in a sprite (one exec; wakes it). `follow: false` reports a symlink as a file. */
async function guestKinds(api: ApiClient, sprite: string, paths: { path: string; follow: boolean }[]): Promise<PathKind[]> {
  const args = paths.flatMap((p) => [p.follow ? 'f' : 'l', p.path]);
  const r = await api.call('sprites.exec', { name: sprite, argv: ['sh', '-c', KIND_SCRIPT, 'sh', ...args], timeoutMs: 120_000 }, { timeoutMs: 180_000 });
  const kinds = r.stdout.trim().split('\n');
  if (r.exitCode !== 0 || kinds.length !== paths.length) throw new SpritelyError('internal', `Could not look at the paths in ${sprite}: ${r.stderr.trim() || `exit ${r.exitCode}`}`);
  return kinds as PathKind[];
}

function hostKind(p: string, follow: boolean): PathKind {
  try {
    const st = follow ? fs.statSync(p) : fs.lstatSync(p);
    return st.isDirectory() ? 'dir' : 'file';
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') {
      if (follow) {
        try {
          fs.lstatSync(p);
          return 'file'; // a dangling symlink still names something
        } catch {
          return 'none';
        }
      }
      return 'none';
    }
    throw err;
  }
}

function spawnTar(args: string[]): ChildProcess {
  // COPYFILE_DISABLE: macOS's bsdtar would add AppleDouble "._" files for extended attributes.
  return spawn('tar', args, { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, COPYFILE_DISABLE: '1' } });
}

function collect(stream: NodeJS.ReadableStream | null): () => string {
  let text = '';
  stream?.on('data', (c: Buffer) => {
    if (text.length < 64_000) text += c.toString();
  });
  return () => text.trim();
}

/** The exit code of a tar (a tar that could not start at all is a clear error, never an unhandled one). */
function exited(child: ChildProcess): Promise<number> {
  const done = new Promise<number>((resolve, reject) => {
    child.once('error', (err) => reject(new SpritelyError('failed_precondition', `Could not run tar on this computer: ${err.message}`)));
    child.once('close', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
  done.catch(() => {});
  return done;
}

function tarFailed(where: string, detail: string, code: number | string | null): SpritelyError {
  return new SpritelyError('internal', `tar ${where} failed (${code}): ${detail || 'no message'}`);
}

export interface CopyResult {
  bytes: number;
  ms: number;
}

/** Here → sprite. */
export async function copyToSprite(api: ApiClient, src: PathSpec, sprite: string, dst: PathSpec): Promise<CopyResult> {
  const srcKind = hostKind(src.abs, src.trailingSlash);
  if (srcKind === 'none') throw new SpritelyError('not_found', `The source ${src.shown} does not exist.`);
  const [dstKind, parentKind] = await guestKinds(api, sprite, [{ path: dst.abs, follow: true }, { path: dst.dir, follow: true }]);
  const plan = planCopy(src, srcKind, dst, dstKind, parentKind);
  const t0 = Date.now();
  let sent = 0;
  let read = 0;
  let waiting = false;
  const tar = spawnTar(hostCreateArgv(plan));
  const tarErr = collect(tar.stderr);
  const tarDone = exited(tar);
  const acks = new AckParser((records) => {
    read = Math.max(read, records * RECORD_BYTES);
    if (waiting && sent - read < CREDIT_WINDOW / 2) {
      waiting = false;
      tar.stdout!.resume();
    }
  });
  const remote = new ExecStream(api, sprite, guestExtractArgv(plan), {
    stdin: true,
    onStderr: (d, consumed) => {
      acks.push(d);
      consumed();
    },
  });
  // Node resumes a child's output streams when the child exits, paused or not: what comes before
  // the command runs in the sprite is queued (a small archive can be complete by then; a large one
  // waits in the pipe because the stream is paused).
  let live = false;
  let ended = false;
  let remoteDone = false;
  const early: Buffer[] = [];
  const forward = (chunk: Buffer) => {
    sent += chunk.length;
    remote.send(chunk);
    if (sent - read > CREDIT_WINDOW) {
      waiting = true;
      tar.stdout!.pause();
    }
  };
  tar.stdout!.on('data', (chunk: Buffer) => {
    if (remoteDone) return;
    if (live) forward(chunk);
    else early.push(chunk);
  });
  tar.stdout!.pause();
  tar.stdout!.on('end', () => (live ? remote.eof() : (ended = true)));
  try {
    await remote.started;
  } catch (err) {
    tar.kill();
    throw err;
  }
  live = true;
  for (const chunk of early.splice(0)) forward(chunk);
  if (ended) remote.eof();
  else if (!waiting) tar.stdout!.resume();
  let exit;
  try {
    exit = await remote.finished;
  } catch (err) {
    tar.kill();
    throw err;
  }
  acks.end();
  if (exit.code !== 0) {
    tar.kill();
    await tarDone.catch(() => {});
    throw tarFailed(`in ${sprite}`, acks.text(), exit.code ?? exit.signal);
  }
  // The guest's tar stops at the end-of-archive marker; let this side's tar finish (its exit code
  // still counts: a file it could not read is an error even if the rest arrived).
  remoteDone = true;
  tar.stdout!.resume();
  const localCode = await tarDone;
  if (localCode !== 0) throw tarFailed('on this computer', tarErr(), localCode);
  return { bytes: sent, ms: Date.now() - t0 };
}

/** Sprite → here. */
export async function copyFromSprite(api: ApiClient, sprite: string, src: PathSpec, dst: PathSpec): Promise<CopyResult> {
  const [srcKind] = await guestKinds(api, sprite, [{ path: src.abs, follow: src.trailingSlash }]);
  if (srcKind === 'none') throw new SpritelyError('not_found', `The source ${src.shown} does not exist.`);
  const plan = planCopy(src, srcKind, dst, hostKind(dst.abs, true), hostKind(dst.dir, true));
  const t0 = Date.now();
  let received = 0;
  const tar = spawnTar(hostExtractArgv(plan));
  const tarErr = collect(tar.stderr);
  const tarDone = exited(tar);
  let stdinBroken = false;
  tar.stdin!.on('error', () => (stdinBroken = true));
  let remoteErr = '';
  const remote = new ExecStream(api, sprite, guestCreateArgv(plan), {
    onStdout: (d, consumed) => {
      received += d.length;
      if (stdinBroken) return consumed();
      tar.stdin!.write(d, () => consumed());
    },
    onStderr: (d, consumed) => {
      if (remoteErr.length < 64_000) remoteErr += d.toString();
      consumed();
    },
  });
  let exit;
  try {
    exit = await remote.finished;
  } catch (err) {
    tar.kill();
    throw err;
  } finally {
    tar.stdin!.end();
  }
  const localCode = await tarDone;
  if (exit.code !== 0) throw tarFailed(`in ${sprite}`, remoteErr.trim(), exit.code ?? exit.signal);
  if (localCode !== 0) throw tarFailed('on this computer', tarErr(), localCode);
  return { bytes: received, ms: Date.now() - t0 };
}

export async function runCp(api: () => Promise<ApiClient>, srcArg: string, dstArg: string, cwd = process.cwd()): Promise<CopyResult> {
  const src = parseCpArg(srcArg);
  const dst = parseCpArg(dstArg);
  if (src.sprite && dst.sprite) throw new SpritelyError('invalid_argument', `Both ${srcArg} and ${dstArg} are in sprites; copy through this computer (spritely cp ${srcArg} ./tmp, then spritely cp ./tmp ${dstArg}).`);
  if (!src.sprite && !dst.sprite) throw new SpritelyError('invalid_argument', `Neither ${srcArg} nor ${dstArg} is in a sprite; write one side as NAME:PATH (e.g. spritely cp ./file dev:/root/).`);
  if (dst.sprite) return copyToSprite(await api(), pathSpec(src.path, cwd), dst.sprite, guestPathSpec(dst.sprite, dst.path));
  return copyFromSprite(await api(), src.sprite!, guestPathSpec(src.sprite!, src.path), pathSpec(dst.path, cwd));
}

export function registerCpCommand(program: Command, client: () => Promise<ApiClient>): void {
  program
    .command('cp')
    .description('Copy files and directories between this computer and a sprite, either way (like docker cp)')
    .argument('<src>', 'PATH here or NAME:PATH in a sprite (a directory ending in /. copies its contents)')
    .argument('<dst>', 'PATH here or NAME:PATH in a sprite (relative sprite paths start in /root)')
    .option('-q, --quiet', 'print nothing on success')
    .action(async (srcArg: string, dstArg: string, opts: { quiet?: boolean }) => {
      const r = await runCp(client, srcArg, dstArg);
      if (!opts.quiet) process.stderr.write(`copied ${srcArg} → ${dstArg} (${formatSize(r.bytes)} in ${(r.ms / 1000).toFixed(1)} s)\n`);
    });
}

function formatSize(n: number): string {
  return n < 1024 * 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 1024 / 1024).toFixed(1)} MiB`;
}
