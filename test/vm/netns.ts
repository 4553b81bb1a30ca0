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

const DNS_SERVER = `
import dgram from 'node:dgram';
const [addr, ...pairs] = process.argv.slice(1);
const table = new Map(pairs.map((p) => p.split('=')));
const s = dgram.createSocket('udp4');
s.on('message', (m, r) => {
  if (m.length < 17) return;
  let o = 12;
  const labels = [];
  while (o < m.length && m[o] !== 0) { labels.push(m.subarray(o + 1, o + 1 + m[o]).toString('latin1')); o += m[o] + 1; }
  const qtype = m.readUInt16BE(o + 1);
  const ip = table.get(labels.join('.').toLowerCase());
  const h = Buffer.from(m.subarray(0, 12));
  h[2] = 0x84 | (m[2] & 1);
  h[3] = ip ? 0x80 : 0x83;
  h.writeUInt16BE(1, 4); h.writeUInt16BE(ip && qtype === 1 ? 1 : 0, 6); h.writeUInt32BE(0, 8);
  const parts = [h, m.subarray(12, o + 5)];
  if (ip && qtype === 1) parts.push(Buffer.from([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, ...ip.split('.').map(Number)]));
  s.send(Buffer.concat(parts), r.port, r.address);
});
s.bind(53, addr, () => console.log('listening'));
`;

/**
 * A DNS server (UDP, port 53 on `address` in the namespace) answering A queries from `table`
 * (name → IPv4 address); other types of a known name get no answer, unknown names NXDOMAIN.
 */
export async function startDnsServer(ns: TestNetns, address: string, table: Record<string, string>): Promise<ChildProcess> {
  const { proc } = await runNode(ns, DNS_SERVER, [address, ...Object.entries(table).map(([k, v]) => `${k.toLowerCase()}=${v}`)]);
  return proc;
}
