/**
 * The guest's own network, timed from inside a real sprite (docs/network.md, "DNS and transparent
 * TCP: the host network stack"). "The internet" is a network namespace made here
 * (test/vm/netns.ts) with a DNS server (the daemon's upstream, SPRITELY_DNS_SERVERS) and a TCP
 * echo server; Node, copied from this machine
 * into the guest, does the timing there, in one process, so no process start is counted:
 *   DNS         — a name already in the sprite's cache, asked N times (c-ares pointed at 10.0.2.3;
 *                 the second NIC carries the query to the host network stack, and it to the
 *                 daemon): p50 / p95;
 *   first byte  — N connections, each sending one byte to the echo server and waiting for it to
 *                 come back: through the sprite's own TCP (second NIC → spritely-net → the
 *                 daemon's netstack link → policy → the server) against the same loop inside the
 *                 guest to a loopback echo server (what the guest itself costs under this
 *                 accelerator) and the same loop on this machine straight to the server (a direct
 *                 connection on the host). connect() in the guest returns once the daemon has
 *                 decided and connected, and the time to the echoed byte is what a client waits
 *                 for a connection to be usable.
 *   node bin/run-ts.js bench/guest-network.ts [N=200]
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { startDaemon, treatAsPublicHere } from '../test/vm/harness.ts';
import { createNetns, runNode, startDnsServer } from '../test/vm/netns.ts';
import { median } from './stats.ts';

const N = Number(process.argv[2] ?? 200);
const NAME = 'echo.spritely.test';

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))];
const fmt = (xs: number[]) => `p50 ${median(xs).toFixed(2)} ms, p95 ${pct(xs, 95).toFixed(2)} ms`;

/** Runs in the guest (and, for the host's loop, here): DNS and first-byte loops, printed as JSON. */
const GUEST = `
import dns from 'node:dns';
import net from 'node:net';
const [name, addr, port, n] = process.argv.slice(2);
const ms = (t) => Number(process.hrtime.bigint() - t) / 1e6;
const firstByte = (host, p) => new Promise((resolve, reject) => {
  const s = net.connect(Number(p), host, () => s.write('x'));
  s.once('data', () => { s.destroy(); resolve(); });
  s.once('error', reject);
});
const loop = async (f) => { const out = []; for (let i = 0; i < Number(n); i++) { const t = process.hrtime.bigint(); await f(); out.push(ms(t)); } return out; };
const r = new dns.promises.Resolver({ timeout: 2000, tries: 1 });
r.setServers(['10.0.2.3']);
await r.resolve4(name);
const local = net.createServer((c) => c.pipe(c));
await new Promise((ok) => local.listen(0, '127.0.0.1', ok));
await firstByte(addr, port);
const out = {
  dns: await loop(() => r.resolve4(name)),
  relay: await loop(() => firstByte(addr, port)),
  loopback: await loop(() => firstByte('127.0.0.1', local.address().port)),
};
local.close();
console.log(JSON.stringify(out));
`;

const ns = createNetns();
const d0 = Date.now();
let d: Awaited<ReturnType<typeof startDaemon>> | null = null;
try {
  await startDnsServer(ns, ns.address, { [NAME]: ns.address });
  await runNode(ns, `import net from 'node:net'; net.createServer((c) => c.pipe(c)).listen(7000, process.argv[1], () => console.log('listening'));`, [ns.address]);
  const here = await treatAsPublicHere();
  d = await startDaemon(undefined, { SPRITELY_DNS_SERVERS: ns.address, SPRITELY_EGRESS_TREAT_AS_PUBLIC: [here, `${ns.address}/32`].filter(Boolean).join(',') });
  await d.api.call('sprites.create', { name: 'n' }, { timeoutMs: 900_000 });
  const cp = await d.cli(['cp', process.execPath, 'n:/usr/local/bin/node'], { timeoutMs: 600_000 });
  if (cp.code !== 0) throw new Error(`copying node into the sprite failed: ${cp.stderr}`);
  await d.api.call('sprites.exec', { name: 'n', argv: ['sh', '-c', 'cat > /root/bench.mjs'], stdin: GUEST });
  const r = await d.api.call('sprites.exec', { name: 'n', argv: ['sh', '-c', `getent hosts ${NAME} >/dev/null && env -i PATH=/usr/local/bin:/usr/bin:/bin node /root/bench.mjs ${NAME} ${ns.address} 7000 ${N}`] }, { timeoutMs: 1_800_000 });
  if (r.exitCode !== 0) throw new Error(`the guest's loop failed: ${r.stderr}`);
  const guest = JSON.parse(r.stdout.trim().split('\n').pop()!) as { dns: number[]; relay: number[]; loopback: number[] };

  // the host's own loop straight to the same server
  const host: number[] = [];
  for (let i = 0; i < N; i++) {
    const t = process.hrtime.bigint();
    await new Promise<void>((resolve, reject) => {
      const s = net.connect(7000, ns.address, () => s.write('x'));
      s.once('data', () => (s.destroy(), resolve()));
      s.once('error', reject);
    });
    host.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  const sprite = await d.api.call('sprites.get', { name: 'n' });
  const load = fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  console.log(`the guest's own network (${sprite.accel}, ${os.cpus().length} cores, load ${load}), N=${N} each, ${((Date.now() - d0) / 1000).toFixed(0)} s in all:`);
  console.log(`  DNS, cached name, in the guest:                     ${fmt(guest.dns)}`);
  console.log(`  first byte through the sprite's own TCP:           ${fmt(guest.relay)}`);
  console.log(`  first byte to a loopback server in the guest:      ${fmt(guest.loopback)}`);
  console.log(`  first byte from this machine, direct:              ${fmt(host)}`);
  console.log(`  setup overhead over a direct connection on the host: ${(median(guest.relay) - median(host)).toFixed(2)} ms p50 (of which the guest's own loopback round: ${median(guest.loopback).toFixed(2)} ms)`);
} finally {
  await d?.cleanup();
  ns.close();
}
