/**
 * "The internet" for network tests and benches: a network namespace this process creates, joined
 * to this machine by a veth pair with private /32 addresses (routed, not on-link, so the daemon's
 * decision sees the far address as a remote host: tests declare exactly that address public with
 * SPRITELY_EGRESS_TREAT_AS_PUBLIC). Servers run inside it (`run`); no test traffic goes to any
 * other address. Needs root (`ip netns`). `close` kills what it started and removes the namespace
 * (and with it the veth pair).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';

export interface TestNetns {
  name: string;
  /** This machine's end of the veth pair. */
  hostAddress: string;
  /** The namespace's address: where its servers listen. */
  address: string;
  /** Every address of the namespace (`address` first; more when asked for). */
  addresses: string[];
  /** Starts a program inside the namespace (killed by close). */
  run(argv: string[], opts?: { stdio?: 'inherit' | 'ignore' | 'pipe'; env?: NodeJS.ProcessEnv }): ChildProcess;
  /** Runs a program inside the namespace to its end and returns its stdout. */
  exec(argv: string[]): string;
  close(): void;
}

const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString();

export function createNetns(opts: { addresses?: number } = {}): TestNetns {
  const tag = crypto.randomBytes(3).toString('hex');
  const name = `spr-${tag}`;
  const vh = `vh${tag}`;
  const vn = `vn${tag}`;
  // 10.200-253.x.y: private, /32 on both ends
  const b = 200 + crypto.randomInt(54);
  const c = crypto.randomInt(256);
  const hostAddress = `10.${b}.${c}.1`;
  const addresses = Array.from({ length: Math.max(1, opts.addresses ?? 1) }, (_, i) => `10.${b}.${c}.${2 + i}`);
  const address = addresses[0];
  const procs: ChildProcess[] = [];
  ip('netns', 'add', name);
  try {
    ip('link', 'add', vh, 'type', 'veth', 'peer', 'name', vn, 'netns', name);
    ip('addr', 'add', `${hostAddress}/32`, 'dev', vh);
    ip('link', 'set', vh, 'up');
    for (const a of addresses) ip('route', 'add', `${a}/32`, 'dev', vh);
    ip('-n', name, 'link', 'set', 'lo', 'up');
    for (const a of addresses) ip('-n', name, 'addr', 'add', `${a}/32`, 'dev', vn);
    ip('-n', name, 'link', 'set', vn, 'up');
    ip('-n', name, 'route', 'add', `${hostAddress}/32`, 'dev', vn);
  } catch (err) {
    try {
      ip('netns', 'del', name);
    } catch {
      /* gone */
    }
    throw err;
  }
  return {
    name,
    hostAddress,
    address,
    addresses,
    run(argv, opts = {}) {
      const p = spawn('ip', ['netns', 'exec', name, ...argv], { stdio: opts.stdio ?? 'ignore', env: opts.env ?? process.env });
      procs.push(p);
      return p;
    },
    exec(argv) {
      return execFileSync('ip', ['netns', 'exec', name, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
    },
    close() {
      for (const p of procs) {
        if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
      }
      try {
        ip('netns', 'del', name);
      } catch {
        /* gone */
      }
    },
  };
}

/**
 * A JavaScript program run with this Node inside the namespace: `source` is the body of an ES
 * module (it may use `process.argv`). Resolves once it prints its first line (e.g. "listening").
 */
export async function runNode(ns: TestNetns, source: string, args: string[] = []): Promise<{ proc: ChildProcess; firstLine: string }> {
  const proc = ns.run([process.execPath, '--input-type=module', '-e', source, '--', ...args], { stdio: 'pipe' });
  const firstLine = await new Promise<string>((resolve, reject) => {
    let out = '';
    let err = '';
    proc.stdout!.on('data', (d: Buffer) => {
      out += d;
      const nl = out.indexOf('\n');
      if (nl >= 0) resolve(out.slice(0, nl));
    });
    proc.stderr!.on('data', (d: Buffer) => (err += d));
    proc.once('exit', (code) => reject(new Error(`the program in ${ns.name} exited (${code}): ${err}`)));
  });
  return { proc, firstLine };
}
