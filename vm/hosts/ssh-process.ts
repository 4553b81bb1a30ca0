/**
 * Running system `ssh`: one-shot commands over a master (bounded output, a deadline), and the
 * master itself — started, then ready once its control socket exists (OpenSSH opens it only after
 * the connection is authenticated), or failed with ssh's own words. The master's stderr is kept
 * as a bounded tail: it is how a connection that drops later says why.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { meaningfulLines } from './ssh-command.ts';

export const SSH_BINARY = process.env.SPRITELY_SSH_BINARY || 'ssh';

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

const MAX_OUTPUT = 1024 * 1024;

/** Runs ssh to its end (stdin closed), keeping at most 1 MiB of each output; killed at the deadline. */
export function runSsh(args: string[], timeoutMs: number): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn(SSH_BINARY, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.on('data', (c: Buffer) => {
      if (stdout.length < MAX_OUTPUT) stdout += c.toString('utf8');
    });
    child.stderr.on('data', (c: Buffer) => {
      if (stderr.length < MAX_OUTPUT) stderr += c.toString('utf8');
    });
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      resolve({ code: null, stdout, stderr: stderr + `\n${err.message}${(err as NodeJS.ErrnoException).code === 'ENOENT' ? ' (is OpenSSH installed? apt-get install openssh-client)' : ''}`, timedOut });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, timedOut });
    });
  });
}

/** A bounded tail of a stream's text. */
export class TextTail {
  private text = '';
  constructor(private readonly max = 16 * 1024) {}
  push(chunk: Buffer | string): void {
    this.text += chunk.toString();
    if (this.text.length > this.max) this.text = this.text.slice(-this.max);
  }
  get value(): string {
    return this.text;
  }
  clear(): void {
    this.text = '';
  }
}

export interface Master {
  child: ChildProcess;
  stderr: TextTail;
  /** Resolves with the exit code when the master ends. */
  exited: Promise<number | null>;
}

function isSocket(p: string): boolean {
  try {
    return fs.statSync(p).isSocket();
  } catch {
    return false;
  }
}

/**
 * Starts a master and waits until it is connected (its control socket exists). Rejects with ssh's
 * stderr when it ends first or is still not connected after `timeoutMs`.
 */
export async function startMaster(args: string[], controlPath: string, timeoutMs: number): Promise<Master> {
  const child = spawn(SSH_BINARY, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const stderr = new TextTail();
  child.stderr!.on('data', (c: Buffer) => stderr.push(c));
  let exitCode: number | null | undefined;
  const exited = new Promise<number | null>((resolve) => {
    child.on('error', (err) => {
      stderr.push(`\n${err.message}${(err as NodeJS.ErrnoException).code === 'ENOENT' ? ' (is OpenSSH installed? apt-get install openssh-client)' : ''}\n`);
      exitCode = null;
      resolve(null);
    });
    // 'close', not 'exit': by then ssh's last words (why it failed) have been read.
    child.on('close', (code, signal) => {
      exitCode = code;
      // ssh's own words, or at least how it ended (a signal leaves no message; a debug log only chatter)
      if (!meaningfulLines(stderr.value).length) stderr.push(`ssh ended ${signal ? `by signal ${signal}` : `with exit code ${code}`} without a message\n`);
      resolve(code);
    });
  });
  const deadline = Date.now() + timeoutMs;
  while (exitCode === undefined && !isSocket(controlPath)) {
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      await exited;
      throw new MasterFailed(`${stderr.value}\nssh: connect timed out: no connection after ${Math.round(timeoutMs / 1000)} s`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  if (exitCode !== undefined) throw new MasterFailed(stderr.value);
  return { child, stderr, exited };
}

/** The master ended (or never connected); `stderr` is what ssh said. */
export class MasterFailed extends Error {
  constructor(readonly stderr: string) {
    super('ssh master failed');
  }
}

/** Ends a master and waits for it (TERM, then KILL after 3 s). */
export async function stopMaster(m: Master): Promise<void> {
  if (m.child.exitCode !== null || m.child.signalCode !== null) return;
  m.child.kill('SIGTERM');
  const t = setTimeout(() => m.child.kill('SIGKILL'), 3000);
  await m.exited;
  clearTimeout(t);
}
