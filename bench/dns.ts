/**
 * The host side of the guest's network, without a guest: what the daemon adds to a DNS answer and
 * to opening a connection.
 *   DNS, cached   — one query packet → DnsResponder.answer → the answer packet, for a name already
 *                   in the sprite's cache (in process; and through a loopback UDP socket, as a
 *                   datagram transport would add);
 *   DNS, uncached — a new name each time: the responder asks a real dns.promises.Resolver pointed at
 *                   a tiny DNS server on 127.0.0.1 (vm/net/dns-test-server.ts), so no query leaves;
 *   connect       — EgressConnector.connect to a server on this machine's own non-loopback address
 *                   (policy allow=<that address>, this computer's interfaces read for every
 *                   decision, as in the daemon) against a direct net.connect to the same server,
 *                   interleaved; by address literal (the HTTP proxy's CONNECT to an IP) and as a
 *                   transparent connection decided by the name the guest resolved.
 *   throughput    — a download of SIZE MiB through the HTTP proxy's CONNECT tunnel (unix socket →
 *                   proxy → connector socket → origin) against the same download direct, median of 5:
 *                   the host's share of today's egress path (the guest, socat and slirp not included).
 *   node bin/run-ts.js bench/dns.ts [N=2000] [SIZE_MIB=256]
 */
import dgram from 'node:dgram';
import dns from 'node:dns';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import fs from 'node:fs';
import crypto from 'node:crypto';
import { QTYPE } from '../vm/net/dns-message.ts';
import { DnsResponder } from '../vm/net/dns-responder.ts';
import { makeQuery, readAnswer, TestDnsServer, type TestZoneEntry } from '../vm/net/dns-test-server.ts';
import { EgressConnector } from '../vm/net/egress-connector.ts';
import { EgressProxy } from '../vm/net/egress-proxy.ts';
import { parseNetworkPolicy } from '../vm/net/egress-policy.ts';
import { ResolvedNames } from '../vm/net/resolved-names.ts';
import { median } from './stats.ts';

const N = Math.max(1000, Number(process.argv[2] ?? 2000));
const SIZE_MIB = Number(process.argv[3] ?? 256);
const PUBLIC = '93.184.215.14';

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}
const ms = (x: number) => `${x.toFixed(3)} ms`;
const row = (what: string, xs: number[]) => console.log(`| ${what} | ${ms(median(xs))} | ${ms(pct(xs, 99))} | ${xs.length} |`);

// ------------------------------------------------------------------------------------------ DNS
const zone: Record<string, TestZoneEntry> = { 'cached.example': { A: [{ address: PUBLIC, ttl: 300 }], AAAA: [] } };
for (let i = 0; i < N + 100; i++) zone[`n${i}.bench.example`] = { A: [{ address: PUBLIC, ttl: 300 }] };
const server = await new TestDnsServer(zone).start();
const resolver = new dns.promises.Resolver({ timeout: 1000, tries: 1 });
resolver.setServers([server.server]);
const responder = new DnsResponder({ sprite: 'bench', policy: () => parseNetworkPolicy('internet'), resolver, names: new ResolvedNames() });

const cachedQuery = makeQuery('cached.example', QTYPE.A);
const first = readAnswer((await responder.answer(cachedQuery))!);
if (first.answers[0]?.data !== PUBLIC) throw new Error(`unexpected answer ${JSON.stringify(first)}`);
for (let i = 0; i < 200; i++) await responder.answer(cachedQuery);
const cached: number[] = [];
for (let i = 0; i < N; i++) {
  const t = performance.now();
  await responder.answer(cachedQuery);
  cached.push(performance.now() - t);
}

// the same through a UDP socket pair on loopback: the transport a datagram carrier adds
const udpServer = dgram.createSocket('udp4');
udpServer.on('message', (msg, r) => void responder.answer(msg).then((out) => out && udpServer.send(out, r.port, r.address)));
await new Promise<void>((r) => udpServer.bind(0, '127.0.0.1', r));
const udpClient = dgram.createSocket('udp4');
await new Promise<void>((r) => udpClient.bind(0, '127.0.0.1', r));
const viaUdp: number[] = [];
for (let i = 0; i < N + 200; i++) {
  const t = performance.now();
  await new Promise<void>((resolve) => {
    udpClient.once('message', () => resolve());
    udpClient.send(cachedQuery, udpServer.address().port, '127.0.0.1');
  });
  if (i >= 200) viaUdp.push(performance.now() - t);
}

for (let i = 0; i < 100; i++) await responder.answer(makeQuery(`n${N + i}.bench.example`, QTYPE.A)); // warm the resolver
const uncached: number[] = [];
for (let i = 0; i < N; i++) {
  const q = makeQuery(`n${i}.bench.example`, QTYPE.A);
  const t = performance.now();
  const out = await responder.answer(q);
  uncached.push(performance.now() - t);
  if (readAnswer(out!).answers.length !== 1) throw new Error(`n${i}: no answer`);
}
// the resolver alone, for the share that is ours
const resolverOnly: number[] = [];
for (let i = 0; i < Math.min(N, 1000); i++) {
  const t = performance.now();
  await Promise.all([resolver.resolve4(`n${i}.bench.example`, { ttl: true }), resolver.resolve6(`n${i}.bench.example`, { ttl: true }).catch(() => [])]);
  resolverOnly.push(performance.now() - t);
}
udpServer.close();
udpClient.close();
server.close();

// -------------------------------------------------------------------------------------- connect
const lan = Object.values(os.networkInterfaces()).flatMap((l) => l ?? []).find((i) => i.family === 'IPv4' && !i.internal)?.address;
if (!lan) throw new Error('needs a non-loopback IPv4 address on this machine');
const origin = net.createServer((s) => s.destroy());
await new Promise<void>((r) => origin.listen({ port: 0, host: lan, backlog: 1024 }, r));
const port = (origin.address() as net.AddressInfo).port;
const names = new ResolvedNames();
names.record('origin.example', [lan], 300, Date.now());
const connector = new EgressConnector({ sprite: 'bench', policy: () => parseNetworkPolicy(`allow=${lan}`), names, maxConnections: 10_000 });
const transparentConnector = new EgressConnector({ sprite: 'bench', policy: () => parseNetworkPolicy(`allow=origin.example,${lan}`), names, maxConnections: 10_000 });

function direct(): Promise<number> {
  const t = performance.now();
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: lan, port, noDelay: true });
    s.once('connect', () => {
      const d = performance.now() - t;
      s.destroy();
      resolve(d);
    });
    s.once('error', reject);
  });
}

async function through(c: EgressConnector, req: Parameters<EgressConnector['connect']>[0]): Promise<number> {
  const t = performance.now();
  const r = await c.connect(req);
  const d = performance.now() - t;
  if (!r.ok) throw new Error(r.message);
  r.socket.destroy();
  return d;
}

const directs: number[] = [];
const literal: number[] = [];
const transparent: number[] = [];
for (let i = 0; i < 100; i++) {
  await direct();
  await through(connector, { host: lan, port });
}
for (let i = 0; i < N; i++) {
  directs.push(await direct());
  literal.push(await through(connector, { host: lan, port }));
  transparent.push(await through(transparentConnector, { address: lan, port }));
}
connector.close();
transparentConnector.close();
origin.close();

// ----------------------------------------------------------------------------------- throughput
const chunk = crypto.randomBytes(1024 * 1024);
const blob = net.createServer((s) => {
  s.on('error', () => {});
  let left = SIZE_MIB;
  const pump = () => {
    while (left > 0) {
      left--;
      if (!s.write(chunk)) return void s.once('drain', pump);
    }
    s.end();
  };
  pump();
});
await new Promise<void>((r) => blob.listen(0, lan, r));
const blobPort = (blob.address() as net.AddressInfo).port;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-dns-'));
const proxy = new EgressProxy({ sprite: 'bench', socketPath: path.join(dir, 'egress.sock'), policy: () => parseNetworkPolicy(`allow=${lan}`), treatAsPublic: [] });
await proxy.listen();

function download(viaProxy: boolean): Promise<number> {
  const t = performance.now();
  return new Promise((resolve, reject) => {
    const s = viaProxy ? net.connect(path.join(dir, 'egress.sock')) : net.connect(blobPort, lan);
    let got = 0;
    let header = viaProxy;
    s.on('data', (c: Buffer) => {
      if (header) {
        const end = c.indexOf('\r\n\r\n');
        if (end < 0) return;
        header = false;
        c = c.subarray(end + 4);
      }
      got += c.length;
    });
    s.on('end', () => {
      if (got !== SIZE_MIB * chunk.length) return reject(new Error(`got ${got} bytes`));
      resolve(SIZE_MIB / ((performance.now() - t) / 1000));
    });
    s.on('error', reject);
    if (viaProxy) s.write(`CONNECT ${lan}:${blobPort} HTTP/1.1\r\n\r\n`);
  });
}
const viaProxy: number[] = [];
const straight: number[] = [];
for (let i = 0; i < 5; i++) {
  straight.push(await download(false));
  viaProxy.push(await download(true));
}
proxy.close();
blob.close();
fs.rmSync(dir, { recursive: true, force: true });

console.log(`\nnetwork, host side — Node ${process.version}, ${os.cpus().length} cores, load ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}, N=${N}\n`);
console.log('| what | p50 | p99 | n |');
console.log('| --- | ---: | ---: | ---: |');
row('DNS answer, cached name (packet in → packet out, in process)', cached);
row('DNS answer, cached name, through a loopback UDP socket', viaUdp);
row('DNS answer, uncached name (responder + Resolver + local DNS server)', uncached);
row('the Resolver alone, A + AAAA, same server', resolverOnly);
row('direct net.connect to this machine', directs);
row('connector, address literal (decision + connect)', literal);
row('connector, transparent, decided by the resolved name', transparent);
console.log(`\nconnector overhead over direct (p50): address ${ms(median(literal) - median(directs))}, transparent ${ms(median(transparent) - median(directs))}`);
console.log(`uncached DNS, the responder's share (p50): ${ms(median(uncached) - median(resolverOnly))}`);
console.log(`\nthroughput, ${SIZE_MIB} MiB, median of 5: direct ${median(straight).toFixed(0)} MiB/s (${straight.map((x) => x.toFixed(0)).join(', ')}), through the proxy's CONNECT tunnel ${median(viaProxy).toFixed(0)} MiB/s (${viaProxy.map((x) => x.toFixed(0)).join(', ')})`);
