/**
 * The external commands an image build runs, with their output teed to the build log and the tail
 * of it in the error; plus the few file-system helpers the build needs around them.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';

export class ImageBuildError extends Error {
  override name = 'ImageBuildError';
}

interface RunOptions {
  cwd?: string;
  log?: NodeJS.WritableStream;
  signal?: AbortSignal;
  onLine?: (line: string) => void;
  stdin?: 'ignore' | 'pipe';
}

/** Runs a command, tees stdout+stderr to the log, and fails with the output's tail. */
export function run(cmd: string, args: string[], opts: RunOptions): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, stdio: [opts.stdin ?? 'ignore', 'pipe', 'pipe'], signal: opts.signal });
    const tail: string[] = [];
    let partial = '';
    const onData = (chunk: Buffer): void => {
      opts.log?.write(chunk);
      const lines = (partial + chunk.toString('utf8')).split(/\r?\n|\r/);
      partial = lines.pop() ?? '';
      for (const line of lines) {
        tail.push(line);
        if (tail.length > 30) tail.shift();
        opts.onLine?.(line);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('error', (err) => reject(err.name === 'AbortError' ? new ImageBuildError('image build aborted') : err));
    child.on('close', (code, sig) => {
      if (partial) tail.push(partial);
      if (code === 0) resolve();
      else reject(new ImageBuildError(`${cmd} failed (${sig ?? `exit ${code}`}):\n${tail.join('\n')}`));
    });
  });
}

/** Runs a command and returns its stdout. */
export function capture(cmd: string, args: string[], signal?: AbortSignal): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], signal });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve(Buffer.concat(out)) : reject(new ImageBuildError(`${cmd} ${args.join(' ')} failed: ${Buffer.concat(err).toString('utf8').trim()}`)),
    );
  });
}

export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

export async function onPath(cmd: string): Promise<boolean> {
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/sbin', '/usr/bin', '/bin'];
  for (const dir of dirs) {
    if (!dir) continue;
    try {
      await fs.access(path.join(dir, cmd), fs.constants.X_OK);
      return true;
    } catch {}
  }
  return false;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** rm -rf; falls back to mmdebstrap's user namespace for files it created under sub-uids. */
export async function removeTree(dir: string, asRoot: boolean): Promise<void> {
  try {
    await fs.rm(dir, { recursive: true, force: true });
  } catch (err) {
    if (asRoot) throw err;
    await run('mmdebstrap', ['--unshare-helper', 'rm', '-rf', dir], {});
  }
}
