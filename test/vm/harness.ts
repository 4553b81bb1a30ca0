/**
 * Test harness for real-VM tests: a real daemon process on a temporary data dir that shares one
 * cached image + golden state (built once by global-setup, keyed by the recipe), the real CLI,
 * and cleanup that ends only the processes this test started (the daemon by pid, and QEMUs whose
 * command line names this test's data dir).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import dns from 'node:dns';
import { ApiClient } from '../../vm/api/client.ts';
import { debianMirrorArgs } from '../../vm/images/debian-mirror.ts';
import { canonicalAddress } from '../../vm/net/address.ts';
import { specialRange } from '../../vm/net/ip-ranges.ts';
import { layout, type Layout } from '../../vm/paths.ts';

export const ROOT = path.resolve(import.meta.dirname, '../..');
export const BIN = path.join(ROOT, 'bin/spritely.js');

export function testImagesDir(): string {
  return process.env.SPRITELY_TEST_IMAGES ?? path.join(os.homedir(), '.cache/spritely-test/images');
}

export interface TestDaemon {
  home: string;
  layout: Layout;
  api: ApiClient;
  env: NodeJS.ProcessEnv;
  proc: ChildProcess;
  pid: number;
  /** Runs the real CLI against this daemon. */
  cli(args: string[], opts?: { input?: string; timeoutMs?: number }): Promise<{ code: number; stdout: string; stderr: string }>;
  restart(): Promise<void>;
  kill9(): void;
  cleanup(): Promise<void>;
}

export function makeHome(): string {
  // Short, so QEMU socket paths stay under the unix limit.
  return fs.mkdtempSync(path.join(os.tmpdir(), 'spr-'));
}

/**
 * The Debian mirror this machine's apt uses (the image's apt uses the same one): its base URL, e.g.
 * `http://HOST/debian`, and its host name. Tests reach "the internet" through it.
 */
export function debianMirror(): { url: string; host: string } {
  const entry = debianMirrorArgs('bookworm')[0];
  const url = /^deb\s+(\S+)\s/.exec(entry ?? '')?.[1];
  if (!url) throw new Error('this machine has no Debian entry in its apt sources; set SPRITELY_DEBIAN_MIRROR=URL for the VM tests');
  return { url: url.replace(/\/$/, ''), host: new URL(url).hostname };
}

let treatAsPublic: Promise<string> | null = null;
/**
 * Some workplaces' resolvers answer every public name with a special-purpose address (a
 * documentation range) that leads to their proxy; `internet` refuses such ranges. Test daemons are
 * told to treat exactly the mirror's answers as public (SPRITELY_EGRESS_TREAT_AS_PUBLIC, the knob
 * for users behind such resolvers). Where the resolver gives real answers the list is empty.
 */
export function treatAsPublicHere(): Promise<string> {
  treatAsPublic ??= dns.promises
    .lookup(`${debianMirror().host}.`, { all: true })
    .catch(() => [])
    .then((found) => found.filter((f) => !specialRange(canonicalAddress(f.address)!).publicInternet).map((f) => f.address).join(','));
  return treatAsPublic;
}

/**
 * A daemon on `home`. Warm spares are off unless `extraEnv` turns them on (SPRITELY_WARM_SPARE):
 * a test sees only the machines it makes, and the shared 2 cores are not spent on spares nobody takes.
 */
export async function startDaemon(home = makeHome(), extraEnv: NodeJS.ProcessEnv = {}): Promise<TestDaemon> {
  const env: NodeJS.ProcessEnv = { ...process.env, SPRITELY_HOME: home, SPRITELY_IMAGES_DIR: testImagesDir(), SPRITELY_WARM_SPARE: 'off', SPRITELY_EGRESS_TREAT_AS_PUBLIC: await treatAsPublicHere(), ...extraEnv };
  const l = layout(home);
  const api = new ApiClient(l.apiSocket);
  const d: TestDaemon = {
    home,
    layout: l,
    api,
    env,
    proc: null as unknown as ChildProcess,
    pid: 0,
    cli: (args, opts = {}) => runCli(args, env, opts),
    restart: async () => {
      await spawnDaemon(d);
    },
    kill9: () => {
      try {
        process.kill(d.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    },
    cleanup: async () => {
      if (d.proc.exitCode === null && d.proc.signalCode === null) {
        d.proc.kill('SIGTERM');
        await new Promise((r) => {
          const t = setTimeout(r, 5000);
          d.proc.once('exit', () => {
            clearTimeout(t);
            r(null);
          });
        });
      }
      killQemusOf(home);
      if (process.env.SPRITELY_TEST_KEEP) {
        process.stderr.write(`[harness] keeping ${home}\n`);
        return;
      }
      fs.rmSync(home, { recursive: true, force: true });
      fs.rmSync(l.runDir, { recursive: true, force: true });
    },
  };
  await spawnDaemon(d);
  return d;
}

async function spawnDaemon(d: TestDaemon): Promise<void> {
  fs.mkdirSync(d.home, { recursive: true });
  const log = fs.openSync(path.join(d.home, 'daemon-test.log'), 'a');
  const proc = spawn(process.execPath, [BIN, 'daemon', 'run'], { env: d.env, stdio: ['ignore', log, log] });
  fs.closeSync(log);
  d.proc = proc;
  d.pid = proc.pid!;
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) throw new Error(`daemon exited: ${daemonLog(d)}`);
    try {
      await d.api.call('daemon.info', {}, { timeoutMs: 2000 });
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error(`daemon did not come up: ${daemonLog(d)}`);
}

export function daemonLog(d: { home: string }): string {
  try {
    return fs.readFileSync(path.join(d.home, 'daemon-test.log'), 'utf8').split('\n').slice(-30).join('\n');
  } catch {
    return '';
  }
}

export function runCli(args: string[], env: NodeJS.ProcessEnv, opts: { input?: string; timeoutMs?: number } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return runCommand(process.execPath, [BIN, ...args], env, { ...opts, name: `spritely ${args.join(' ')}` });
}

/** Runs a program to its end (stdin from `input`), killing it after `timeoutMs`. */
export function runCommand(cmd: string, args: string[], env: NodeJS.ProcessEnv, opts: { input?: string; timeoutMs?: number; name?: string } = {}): Promise<{ code: number; stdout: string; stderr: string; ms: number }> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const p = spawn(cmd, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (c) => (stdout += c));
    p.stderr.on('data', (c) => (stderr += c));
    const timer = setTimeout(() => {
      p.kill('SIGKILL');
      reject(new Error(`${opts.name ?? `${cmd} ${args.join(' ')}`} timed out; stderr: ${stderr}`));
    }, opts.timeoutMs ?? 240_000);
    p.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr, ms: Date.now() - t0 });
    });
    p.stdin.end(opts.input ?? '');
  });
}

/** QEMU processes whose command line mentions `home` (only this test's VMs). */
export function qemuPidsOf(home: string): number[] {
  const pids: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmd = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (cmd.startsWith('qemu-system') && cmd.includes(home)) pids.push(Number(entry));
    } catch {
      /* raced */
    }
  }
  return pids;
}

export function killQemusOf(home: string): void {
  for (const pid of qemuPidsOf(home)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
}

export async function waitFor<T>(what: string, fn: () => Promise<T | null | undefined | false> | T | null | undefined | false, timeoutMs = 60_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v as T;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
}

/**
 * Every file under `dir` with its size and mtime: a fingerprint to prove nothing changed. Files a
 * running guest writes by itself: its disk is listed but not fingerprinted, its logs (which appear
 * with its first console byte and rotate) are left out.
 */
const LIVE_FILES = /(^|\/)disk\.qcow2$/;
/** Logs a running machine writes at will: they appear with its first console byte and rotate. */
const LOG_FILES = /(^|\/)(serial\.log(\.1)?|qemu\.log)$/;
export function snapshotTree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) {
        const st = fs.statSync(p);
        const rel = path.relative(dir, p);
        if (LOG_FILES.test(rel)) continue;
        out[rel] = LIVE_FILES.test(rel) ? 'live' : `${st.size}:${st.mtimeMs}`;
      }
    }
  };
  if (fs.existsSync(dir)) walk(dir);
  return out;
}
