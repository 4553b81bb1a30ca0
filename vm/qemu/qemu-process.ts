/**
 * Starting and finding QEMU processes. QEMU runs detached in its own session (it outlives the
 * daemon; quitting the app never kills a sprite) with its stdout/stderr in a log file, a pidfile,
 * and a QMP socket. A pid is only trusted if /proc shows it is QEMU with this sprite's QMP socket,
 * so a recycled pid is never mistaken for a VM.
 */
import { spawn, execFile } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import { promisify } from 'node:util';
import { safeText } from '../safe-text.ts';

const execFileP = promisify(execFile);

export interface LaunchResult {
  pid: number;
}

/**
 * Spawns QEMU detached and waits until its QMP socket accepts connections (or it exits, in which
 * case the tail of its log becomes the error).
 */
export async function launchQemu(argv: string[], opts: { logFile: string; qmpSocket: string; timeoutMs?: number }): Promise<LaunchResult> {
  fs.rmSync(opts.qmpSocket, { force: true });
  const logFd = fs.openSync(opts.logFile, 'a', 0o600);
  fs.writeSync(logFd, `\n--- ${new Date().toISOString()} ${argv.join(' ')}\n`);
  const child = spawn(argv[0], argv.slice(1), { detached: true, stdio: ['ignore', logFd, logFd] });
  fs.closeSync(logFd);
  let exited: { code: number | null; signal: string | null } | null = null;
  let spawnError: Error | null = null;
  child.on('exit', (code, signal) => (exited = { code, signal }));
  child.on('error', (err) => (spawnError = err));
  child.unref();
  const deadline = Date.now() + (opts.timeoutMs ?? 15_000);
  while (Date.now() < deadline) {
    if (spawnError) throw new Error(`could not run ${argv[0]}: ${(spawnError as Error).message}`);
    if (exited) throw new Error(`QEMU exited at start (${describeExit(exited)}): ${tailOfLog(opts.logFile)}`);
    if (child.pid && (await canConnect(opts.qmpSocket))) return { pid: child.pid };
    await sleep(10);
  }
  if (child.pid) killPid(child.pid);
  throw new Error(`QEMU did not open its QMP socket within ${opts.timeoutMs ?? 15_000} ms: ${tailOfLog(opts.logFile)}`);
}

function describeExit(e: { code: number | null; signal: string | null }): string {
  return e.signal ? `signal ${e.signal}` : `exit code ${e.code}`;
}

/** The most of a log's end that is read for its tail (a log can be large; its end is what matters). */
const TAIL_BYTES = 64 * 1024;

/**
 * The last lines of a log, for an error message: read from its last 64 KiB only, each line made
 * inert and cut (QEMU's output can carry text a guest chose), joined on one line.
 */
export function tailOfLog(file: string, lines = 6): string {
  let fd: number | null = null;
  try {
    fd = fs.openSync(file, 'r');
    const size = fs.fstatSync(fd).size;
    const start = Math.max(0, size - TAIL_BYTES);
    const buf = Buffer.alloc(size - start);
    const n = fs.readSync(fd, buf, 0, buf.length, start);
    let text = buf.subarray(0, n).toString('utf8');
    if (start > 0) text = text.slice(text.indexOf('\n') + 1); // the first line is cut: drop it
    const tail = text.split('\n').filter((l) => l.trim() && !l.startsWith('--- ')).slice(-lines);
    return tail.map((l) => safeText(l.trim(), { maxChars: 300 })).join(' | ') || '(no output)';
  } catch {
    return '(no log)';
  } finally {
    if (fd !== null) fs.closeSync(fd);
  }
}

function canConnect(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    if (!fs.existsSync(socketPath)) return resolve(false);
    const s = net.connect(socketPath);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** True when `pid` is alive and its command line names `marker` (the sprite's QMP socket). */
export function isOurQemu(pid: number | undefined | null, marker: string): boolean {
  if (!pid || pid <= 0) return false;
  try {
    const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    if (!cmdline.includes(marker)) return false;
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    if (process.platform === 'linux') return false;
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  }
}

export function killPid(pid: number, signal: NodeJS.Signals = 'SIGKILL'): void {
  try {
    process.kill(pid, signal);
  } catch {
    /* already gone */
  }
}

/** Waits until the process is gone; returns false on timeout. */
export async function waitForExit(pid: number, marker: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isOurQemu(pid, marker)) return true;
    await sleep(20);
  }
  return !isOurQemu(pid, marker);
}

/** CPU time (user + system) of a process in seconds. */
export function cpuSeconds(pid: number): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}

export async function qemuVersion(qemuBinary: string): Promise<string> {
  const { stdout } = await execFileP(qemuBinary, ['--version']);
  const m = /version (\d+\.\d+\.\d+)/.exec(stdout);
  if (!m) throw new Error(`could not read the QEMU version from: ${stdout.split('\n')[0]}`);
  return m[1];
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
