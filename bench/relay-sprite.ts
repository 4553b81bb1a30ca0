/**
 * Public URLs end to end into a real sprite: the same request to the same app in the guest over
 * three paths, side by side in one run —
 *   hostfwd — QEMU's host-forward on 127.0.0.1 (the floor: slirp + the TCG guest),
 *   local   — the daemon's local URL proxy (http://NAME.localhost:PORT/),
 *   relay   — a real relay on loopback (TLS, self-signed wildcard) → the daemon's tunnel → the app.
 * Sequential latency (keep-alive to the first hop; a fresh connection to the app per request, as the
 * guest's server closes each),
 * autocannon at 10 connections, and a 100 MiB download. Under TCG the guest is the limit.
 *   node bin/run-ts.js bench/relay-sprite.ts [SEQUENTIAL=200] [SECONDS=10]
 */
import http from 'node:http';
import https from 'node:https';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startDaemon } from '../test/vm/harness.ts';
import { addAccount, makeCerts, removeDir, startTestRelay, writeEmptyTokens } from '../test/relay/harness.ts';
import { median } from './stats.ts';

const SEQ = Number(process.argv[2] ?? 200);
const SECONDS = Number(process.argv[3] ?? 10);

/** One process, one connection at a time; `/big` streams 100 MiB. */
const SERVER = String.raw`perl -MIO::Socket::INET -e '$s=IO::Socket::INET->new(LocalPort=>8080,Listen=>128,ReuseAddr=>1) or die; $b="x" x 1048576; while($c=$s->accept){ $r=""; while(<$c>){ $r.=$_; last if $_ eq "\r\n" } if($r=~m{^GET /big}){ print $c "HTTP/1.1 200 OK\r\nContent-Length: 104857600\r\nConnection: close\r\n\r\n"; print $c $b for 1..100 } else { print $c "HTTP/1.1 200 OK\r\nContent-Length: 12\r\nConnection: close\r\n\r\nhello world\n" } close $c }'`;

interface Target {
  name: string;
  /** Keep-alive to the first hop, as a browser or phone does (the app side is fresh anyway). */
  agent?: http.Agent;
  url: string;
  host?: string;
  ca?: string;
  headers?: Record<string, string>;
}

function once(t: Target, p = '/'): Promise<{ ms: number; bytes: number; status: number }> {
  const u = new URL(t.url);
  const secure = u.protocol === 'https:';
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    let bytes = 0;
    const req = (secure ? https : http).get(
      { host: '127.0.0.1', port: u.port, path: p, agent: t.agent ?? (t.agent = secure ? new https.Agent({ keepAlive: true, maxSockets: 1 }) : new http.Agent({ keepAlive: true, maxSockets: 1 })), headers: { ...(t.host ? { host: t.host } : {}), ...t.headers }, servername: t.host?.split(':')[0], ca: t.ca },
      (res) => {
        res.on('data', (c: Buffer) => (bytes += c.length));
        res.on('end', () => resolve({ ms: Number(process.hrtime.bigint() - t0) / 1e6, bytes, status: res.statusCode ?? 0 }));
      },
    );
    req.on('error', (error) => reject(new Error(`${t.name}: ${error.message}`)));
  });
}

async function cannon(t: Target): Promise<{ rps: number; p50: number; p99: number; errors: number; non2xx: number }> {
  const { default: autocannon } = await import('autocannon');
  const u = new URL(t.url);
  const r = await autocannon({ url: `${u.protocol}//127.0.0.1:${u.port}/`, connections: 10, duration: SECONDS, headers: { ...(t.host ? { host: t.host } : {}), ...t.headers }, servername: t.host?.split(':')[0], ca: t.ca } as never);
  return { rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, errors: r.errors + r.timeouts, non2xx: r.non2xx };
}

const certs = makeCerts();
const tokensFile = path.join(certs.dir, 'tokens.json');
writeEmptyTokens(tokensFile);
const token = addAccount(tokensFile, 'bench').token;
const relay = await startTestRelay(certs, tokensFile);
fs.writeFileSync(path.join(certs.dir, 'ca.pem'), certs.cert);
const d = await startDaemon();
let targets: Target[] = [];
try {
  await d.api.call('sprites.create', { name: 'web' }, { timeoutMs: 900_000 });
  await d.api.call('sprites.exec', { name: 'web', argv: ['sh', '-c', `setsid ${SERVER} >/dev/null 2>&1 </dev/null &`] });
  await d.api.call('config.set', { idleTimeoutSec: 0, sprite: 'web' });
  const connect = await d.cli(['relay', 'connect', `https://127.0.0.1:${relay.port}`, '--ca', path.join(certs.dir, 'ca.pem'), '--json'], { input: token });
  if (connect.code !== 0) throw new Error(connect.stderr);
  const pub = JSON.parse((await d.cli(['url', 'web', '--public', '--auth', 'public', '--json'])).stdout);
  const publicUrl = new URL(pub.public);
  const rt = JSON.parse(fs.readFileSync(path.join(d.home, 'sprites/web/runtime.json'), 'utf8'));
  const urlPort = Number(fs.readFileSync(path.join(d.home, 'url-port'), 'utf8'));
  targets = [
    { name: 'hostfwd (floor)', url: `http://127.0.0.1:${rt.urlHostPort}/` },
    { name: 'local URL proxy', url: `http://127.0.0.1:${urlPort}/`, host: `web.localhost:${urlPort}` },
    { name: 'relay (TLS)', url: `https://127.0.0.1:${publicUrl.port}/`, host: publicUrl.host, ca: certs.cert },
  ];
  for (const t of targets) {
    const r = await once(t);
    if (r.status !== 200) throw new Error(`${t.name}: HTTP ${r.status}`);
  }
  // A reset is counted and reported, not fatal (seen now and then on the raw host-forward path).
  const seq = new Map<string, number[]>(targets.map((t) => [t.name, []]));
  const failures = new Map<string, string[]>(targets.map((t) => [t.name, []]));
  const attempt = async (t: Target, record: boolean) => {
    try {
      const ms = (await once(t)).ms;
      if (record) seq.get(t.name)!.push(ms);
    } catch (error) {
      failures.get(t.name)!.push((error as Error).message);
    }
  };
  // warm-up, then interleaved rounds
  for (const t of targets) for (let i = 0; i < 20; i++) await attempt(t, false);
  for (let i = 0; i < SEQ; i++) for (const t of targets) await attempt(t, true);
  const q = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * p)];
  console.log(`end to end into a sprite (${(await d.api.call('sprites.get', { name: 'web' })).accel}, ${os.cpus().length} cores, load ${os.loadavg()[0].toFixed(1)}); the guest's server closes every connection`);
  console.log(`sequential, ${SEQ} requests each (keep-alive to the first hop, fresh connection to the app):`);
  const floor = median(seq.get(targets[0].name)!);
  for (const t of targets) {
    const xs = seq.get(t.name)!;
    const failed = failures.get(t.name)!;
    console.log(`  ${t.name.padEnd(16)} p50 ${median(xs).toFixed(2)} ms  p99 ${q(xs, 0.99).toFixed(2)} ms  added p50 ${(median(xs) - floor).toFixed(2)} ms  failed ${failed.length}${failed.length ? ` (${failed[0]})` : ''}`);
  }
  console.log(`autocannon, 10 connections, ${SECONDS} s:`);
  for (const t of targets) {
    const c = await cannon(t);
    console.log(`  ${t.name.padEnd(16)} ${Math.round(c.rps)} req/s  p50 ${c.p50} ms  p99 ${c.p99} ms  errors ${c.errors}  non-2xx ${c.non2xx}`);
  }
  console.log('100 MiB download:');
  for (const t of [targets[0], targets[2]]) {
    const r = await once(t, '/big');
    if (r.bytes !== 100 * 2 ** 20) throw new Error(`${t.name}: got ${r.bytes} bytes`);
    console.log(`  ${t.name.padEnd(16)} ${(r.bytes / 2 ** 20 / (r.ms / 1000)).toFixed(1)} MiB/s`);
  }
} finally {
  for (const t of targets) t.agent?.destroy();
  await d.cleanup();
  await relay.close();
  removeDir(certs.dir);
}
