/**
 * Relay benchmark (prints numbers; not a test). Every party runs in its own process, as in real life:
 * a plain Node HTTP origin (the stand-in sprite app), the relay, the tunnel client (the daemon's half)
 * and autocannon. Reports direct vs through-the-relay req/s, p50, p99 at 1 and 50 connections, a
 * 100 MB download's throughput, and the relay's RSS with 100 connected tunnels.
 *
 *   node bin/run-ts.js bench/relay.ts [--runs 3] [--duration 5] [--plain]
 *   node bin/run-ts.js bench/relay.ts carrier   # why the tunnel is not HTTP/2-over-WebSocket
 *   node bin/run-ts.js bench/relay.ts floor     # the same hops with no relay logic, no TLS, one process
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(import.meta.url);
const DOMAIN = 'relay.test';
const role = process.argv[2];

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i !== -1 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

function ready(info: object): void {
  process.stdout.write(`READY ${JSON.stringify(info)}\n`);
}

// ── child roles ──────────────────────────────────────────────────────────────────────────────────

async function origin(): Promise<void> {
  const big = Buffer.alloc(1 << 20, 7);
  const server = http.createServer((req, res) => {
    if (req.url?.startsWith('/big')) {
      const total = Number(new URL(req.url, 'http://x').searchParams.get('mb') ?? 100);
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(total * big.length) });
      let sent = 0;
      const pump = () => {
        while (sent < total) {
          sent += 1;
          if (!res.write(big)) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '12' });
    res.end('hello world\n');
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1', () => ready({ port: (server.address() as AddressInfo).port }));
}

async function relayRole(): Promise<void> {
  const { startRelay } = await import('../relay/relay-server.ts');
  const dir = arg('dir', '');
  const plain = process.argv.includes('--plain');
  const relay = await startRelay({
    domain: DOMAIN,
    host: '127.0.0.1',
    port: 0,
    tls: plain ? undefined : { cert: readFileSync(path.join(dir, 'cert.pem')), key: readFileSync(path.join(dir, 'key.pem')) },
    tokensFile: path.join(dir, 'tokens.json'),
    limits: { ratePerSecond: 0, maxStreamsPerTunnel: 10_000 },
  });
  ready({ port: relay.port });
  process.on('SIGTERM', () => void relay.close().then(() => process.exit(0)));
  process.stdin.on('data', () => {
    (globalThis as { gc?: () => void }).gc?.();
    const rss = process.memoryUsage().rss;
    process.stdout.write(`RSS ${JSON.stringify({ rss, tunnels: relay.tunnelCount() })}\n`);
  });
}

async function clientRole(): Promise<void> {
  const { createTunnelClient } = await import('../relay/tunnel-client.ts');
  const dir = arg('dir', '');
  const relayUrl = arg('relay', '');
  const originPort = Number(arg('origin', '0'));
  const tokens = readFileSync(path.join(dir, 'bench-tokens.txt'), 'utf8').trim().split('\n');
  const count = Number(arg('count', '1'));
  const ca = readFileSync(path.join(dir, 'cert.pem'));
  const clients = tokens.slice(0, count).map((token) =>
    createTunnelClient({ relayUrl, token, ca, resolveTarget: async () => ({ host: '127.0.0.1', port: originPort }) }),
  );
  await Promise.all(
    clients.map(
      (client) =>
        new Promise<void>((resolve) => {
          if (client.state.status === 'connected') return resolve();
          const off = client.on('state', (state) => {
            if (state.status === 'connected') {
              off();
              resolve();
            }
          });
        }),
    ),
  );
  await Promise.all(clients.map((client) => client.publish('dev', { auth: 'public' })));
  ready({ url: clients[0].urlFor('dev') });
  process.on('SIGTERM', () => void Promise.all(clients.map((client) => client.close())).then(() => process.exit(0)));
}

// ── the driver ───────────────────────────────────────────────────────────────────────────────────

function child(args: string[], nodeFlags: string[] = []): Promise<{ proc: ChildProcess; info: Record<string, unknown> }> {
  const profile = process.argv.includes('--cpu-prof') && args[0] !== 'origin' ? ['--cpu-prof', `--cpu-prof-dir=${path.join(os.tmpdir(), 'relay-bench-prof')}`] : [];
  const proc = spawn(process.execPath, [...profile, ...nodeFlags, '--import', 'tsx', here, ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let buffer = '';
    const onData = (chunk: Buffer) => {
      buffer += chunk.toString();
      const match = /READY (.*)\n/.exec(buffer);
      if (match) {
        proc.stdout?.off('data', onData);
        resolve({ proc, info: JSON.parse(match[1]) });
      }
    };
    proc.stdout?.on('data', onData);
    proc.once('exit', (code) => reject(new Error(`${args[0]} exited with ${code}`)));
  });
}

interface Cannon {
  /** CPU µs per request spent in the relay and in the tunnel client (relay runs only). */
  relayCpuUs?: number;
  clientCpuUs?: number;
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  non2xx: number;
}

/** CPU seconds a child has used so far (utime + stime from /proc). */
function cpuSeconds(pid: number | undefined): number {
  if (!pid) return 0;
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // CLK_TCK is 100 on Linux
}

async function cannon(url: string, connections: number, duration: number, host?: string): Promise<Cannon> {
  const target = new URL(url);
  const { default: autocannon } = await import('autocannon');
  const result = await autocannon({
    url: host ? `${target.protocol}//127.0.0.1:${target.port}${target.pathname}` : url,
    connections,
    duration,
    headers: host ? { host } : undefined,
    servername: host?.split(':')[0],
  } as import('autocannon').Options);
  return { rps: result.requests.average, p50: result.latency.p50, p99: result.latency.p99, errors: result.errors + result.timeouts, non2xx: result.non2xx };
}

/**
 * Sequential requests on one keep-alive connection, timed in µs (autocannon's histogram has whole
 * milliseconds, too coarse for "added p50"). The Node client's own cost is the same on both paths.
 */
async function sequentialLatency(url: string, count: number, host?: string, ca?: Buffer): Promise<{ p50: number; p99: number; mean: number }> {
  const target = new URL(url);
  const secure = target.protocol === 'https:';
  const agent = secure ? new https.Agent({ keepAlive: true, maxSockets: 1 }) : new http.Agent({ keepAlive: true, maxSockets: 1 });
  const samples: number[] = [];
  const one = () =>
    new Promise<void>((resolve, reject) => {
      const started = process.hrtime.bigint();
      const options = { host: '127.0.0.1', port: target.port, path: '/', agent, headers: host ? { host } : {}, servername: host?.split(':')[0], ca };
      const request = (secure ? https : http).get(options, (response) => {
        response.resume();
        response.on('end', () => {
          samples.push(Number(process.hrtime.bigint() - started) / 1e6);
          resolve();
        });
      });
      request.on('error', reject);
    });
  for (let i = 0; i < count; i += 1) await one();
  agent.destroy();
  const sorted = [...samples].sort((a, b) => a - b);
  return { p50: sorted[Math.floor(sorted.length * 0.5)], p99: sorted[Math.floor(sorted.length * 0.99)], mean: samples.reduce((a, b) => a + b, 0) / samples.length };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

async function download(url: string, host: string, ca: Buffer): Promise<number> {
  const target = new URL(url);
  const started = process.hrtime.bigint();
  let bytes = 0;
  await new Promise<void>((resolve, reject) => {
    const request = https.get({ host: '127.0.0.1', port: target.port, path: '/big?mb=100', servername: host.split(':')[0], headers: { host }, ca }, (response) => {
      response.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
      });
      response.on('end', resolve);
      response.on('error', reject);
    });
    request.on('error', reject);
  });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (bytes !== 100 * (1 << 20)) throw new Error(`download got ${bytes} bytes`);
  return bytes / (1 << 20) / seconds;
}

async function main(): Promise<void> {
  const runs = Number(arg('runs', '3'));
  const duration = Number(arg('duration', '5'));
  const plain = process.argv.includes('--plain');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'spritely-relay-bench-'));
  const children: ChildProcess[] = [];
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1',
      '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem'), '-subj', `/CN=${DOMAIN}`,
      '-addext', `subjectAltName=DNS:${DOMAIN},DNS:*.${DOMAIN},IP:127.0.0.1`], { stdio: 'ignore' });
    const { addAccountToken, emptyTokenFile, writeTokenFile } = await import('../relay/token-store.ts');
    let file = emptyTokenFile();
    const tokens: string[] = [];
    for (let i = 0; i < 100; i += 1) {
      const added = addAccountToken(file, `bench-${i}`, new Date());
      file = added.file;
      tokens.push(added.token);
    }
    writeTokenFile(path.join(dir, 'tokens.json'), file);
    const { writeFileSync } = await import('node:fs');
    writeFileSync(path.join(dir, 'bench-tokens.txt'), `${tokens.join('\n')}\n`);

    const originChild = await child(['origin']);
    children.push(originChild.proc);
    const originUrl = `http://127.0.0.1:${originChild.info.port}/`;
    const relayChild = await child(['relay', '--dir', dir, ...(plain ? ['--plain'] : [])]);
    children.push(relayChild.proc);
    const scheme = plain ? 'http' : 'https';
    const relayUrl = `${scheme}://127.0.0.1:${relayChild.info.port}`;
    const clientChild = await child(['client', '--dir', dir, '--relay', relayUrl, '--origin', String(originChild.info.port), '--count', '1']);
    children.push(clientChild.proc);
    const publicUrl = String(clientChild.info.url);
    const host = new URL(publicUrl).host;
    const viaRelay = `${scheme}://127.0.0.1:${relayChild.info.port}/`;

    console.log(`# relay bench: ${os.cpus().length} × ${os.cpus()[0].model}, node ${process.version}, ${plain ? 'plain HTTP' : 'TLS'} public side, ${runs} runs × ${duration}s, load average at start ${os.loadavg()[0].toFixed(1)}`);
    // Warm-up: let V8 optimise the HTTP, HTTP/2 and TLS paths of every process before measuring.
    await cannon(originUrl, 50, 3);
    await cannon(viaRelay, 50, Number(arg('warmup', '8')), host);
    await cannon(viaRelay, 1, 2, host);
    const table: Record<string, { direct: Cannon[]; relay: Cannon[] }> = {};
    const connectionCounts = (arg('conns', '1,50')).split(',').map(Number);
    for (const connections of connectionCounts) {
      table[connections] = { direct: [], relay: [] };
      for (let run = 0; run < runs; run += 1) {
        table[connections].direct.push(await cannon(originUrl, connections, duration));
        const before = [cpuSeconds(relayChild.proc.pid), cpuSeconds(clientChild.proc.pid)];
        const result = await cannon(viaRelay, connections, duration, host);
        const requests = result.rps * duration;
        result.relayCpuUs = ((cpuSeconds(relayChild.proc.pid) - before[0]) / requests) * 1e6;
        result.clientCpuUs = ((cpuSeconds(clientChild.proc.pid) - before[1]) / requests) * 1e6;
        table[connections].relay.push(result);
      }
    }
    console.log('| conns | path | req/s | p50 ms | p99 ms | errors | added p50 ms |');
    console.log('| ---: | --- | ---: | ---: | ---: | ---: | ---: |');
    for (const connections of connectionCounts) {
      const row = table[connections];
      const d = { rps: median(row.direct.map((r) => r.rps)), p50: median(row.direct.map((r) => r.p50)), p99: median(row.direct.map((r) => r.p99)), errors: row.direct.reduce((a, r) => a + r.errors + r.non2xx, 0) };
      const r = { rps: median(row.relay.map((x) => x.rps)), p50: median(row.relay.map((x) => x.p50)), p99: median(row.relay.map((x) => x.p99)), errors: row.relay.reduce((a, x) => a + x.errors + x.non2xx, 0) };
      console.log(`| ${connections} | direct | ${d.rps.toFixed(0)} | ${d.p50} | ${d.p99} | ${d.errors} | |`);
      console.log(`| ${connections} | relay | ${r.rps.toFixed(0)} | ${r.p50} | ${r.p99} | ${r.errors} | ${(r.p50 - d.p50).toFixed(2)} |`);
      console.log(`  relay runs: ${row.relay.map((x) => `${x.rps.toFixed(0)} req/s p50 ${x.p50} (cpu/req: relay ${x.relayCpuUs?.toFixed(0)} µs, client ${x.clientCpuUs?.toFixed(0)} µs)`).join('; ')}`);
    }
    const caPem = readFileSync(path.join(dir, 'cert.pem'));
    const precise: { direct: { p50: number; p99: number; mean: number }[]; relay: { p50: number; p99: number; mean: number }[] } = { direct: [], relay: [] };
    for (let run = 0; run < runs; run += 1) {
      precise.direct.push(await sequentialLatency(originUrl, 3000));
      precise.relay.push(await sequentialLatency(viaRelay, 3000, host, caPem));
    }
    const pick = (rows: { p50: number; p99: number; mean: number }[], key: 'p50' | 'p99' | 'mean') => median(rows.map((row) => row[key]));
    console.log(`1 connection, sequential, µs-timed (median of ${runs} × 3000): direct p50 ${pick(precise.direct, 'p50').toFixed(3)} ms, p99 ${pick(precise.direct, 'p99').toFixed(3)} ms; relay p50 ${pick(precise.relay, 'p50').toFixed(3)} ms, p99 ${pick(precise.relay, 'p99').toFixed(3)} ms; added p50 ${(pick(precise.relay, 'p50') - pick(precise.direct, 'p50')).toFixed(3)} ms`);
    if (!plain && !process.argv.includes('--quick')) {
      const ca = readFileSync(path.join(dir, 'cert.pem'));
      const speeds: number[] = [];
      for (let run = 0; run < runs; run += 1) speeds.push(await download(viaRelay, host, ca));
      console.log(`100 MB download through the relay: ${median(speeds).toFixed(0)} MiB/s (runs: ${speeds.map((s) => s.toFixed(0)).join(', ')})`);
    }
    if (process.argv.includes('--quick')) return;
    // Memory: a fresh relay (no benchmark traffic behind it), measured after a GC with 0, then 100 tunnels.
    const memRelay = await child(['relay', '--dir', dir, ...(plain ? ['--plain'] : [])], ['--expose-gc']);
    children.push(memRelay.proc);
    const idle = await relayRss(memRelay.proc);
    const memUrl = `${scheme}://127.0.0.1:${memRelay.info.port}`;
    const many = await child(['client', '--dir', dir, '--relay', memUrl, '--origin', String(originChild.info.port), '--count', '100']);
    children.push(many.proc);
    const loaded = await relayRss(memRelay.proc);
    console.log(`relay RSS: ${(idle.rss / 2 ** 20).toFixed(1)} MiB idle, ${(loaded.rss / 2 ** 20).toFixed(1)} MiB with ${loaded.tunnels} connected tunnels (${((loaded.rss - idle.rss) / 1024 / loaded.tunnels).toFixed(0)} KiB per tunnel)`);
  } finally {
    for (const proc of children) proc.kill();
    await Promise.all(children.map((proc) => new Promise((resolve) => (proc.exitCode !== null ? resolve(null) : proc.once('exit', resolve)))));
    rmSync(dir, { recursive: true, force: true });
  }
}

function relayRss(proc: ChildProcess): Promise<{ rss: number; tunnels: number }> {
  return new Promise((resolve) => {
    const onData = (chunk: Buffer) => {
      const match = /RSS (.*)\n/.exec(chunk.toString());
      if (match) {
        proc.stdout?.off('data', onData);
        resolve(JSON.parse(match[1]));
      }
    };
    proc.stdout?.on('data', onData);
    proc.stdin?.write('rss\n');
  });
}

// ── carrier comparison: HTTP/2 on the raw socket (our Upgrade) vs on a WebSocket stream ────────────

async function carrierServer(mode: string): Promise<void> {
  const { WebSocketServer, createWebSocketStream } = await import('ws');
  const http2 = await import('node:http2');
  const net = await import('node:net');
  const big = Buffer.alloc(1 << 20, 1);
  const onStream = (stream: import('node:http2').ServerHttp2Stream, headers: import('node:http2').IncomingHttpHeaders) => {
    stream.respond({ ':status': 200 });
    if (headers[':path'] !== '/big') return void stream.end('hello world\n');
    let sent = 0;
    const pump = () => {
      while (sent < 100) {
        sent += 1;
        if (!stream.write(big)) return void stream.once('drain', pump);
      }
      stream.end();
    };
    pump();
  };
  const settings = { initialWindowSize: 1 << 20 };
  if (mode === 'raw') {
    const server = net.createServer((socket) => {
      socket.setNoDelay(true);
      http2.performServerHandshake(socket, { settings }).on('stream', onStream);
    });
    server.listen(0, '127.0.0.1', () => ready({ port: (server.address() as AddressInfo).port }));
  } else {
    const wss: import('ws').WebSocketServer = new WebSocketServer({ port: 0, host: '127.0.0.1' }, (): void => ready({ port: (wss.address() as AddressInfo).port }));
    wss.on('connection', (ws: import('ws').WebSocket) => http2.performServerHandshake(createWebSocketStream(ws), { settings }).on('stream', onStream));
  }
}

async function carrier(): Promise<void> {
  const { WebSocket, createWebSocketStream } = await import('ws');
  const http2 = await import('node:http2');
  const net = await import('node:net');
  console.log(`# HTTP/2 carrier: raw socket vs WebSocket stream (${os.cpus().length} × ${os.cpus()[0].model}, node ${process.version}, load ${os.loadavg()[0].toFixed(1)})`);
  console.log('| carrier | 100 MB MiB/s | req/s at 50 concurrent | sequential ms/req |');
  console.log('| --- | ---: | ---: | ---: |');
  for (const mode of ['raw', 'ws', 'raw', 'ws', 'raw', 'ws']) {
    const server = await child(['carrier-server', mode]);
    let socket: import('node:stream').Duplex;
    if (mode === 'raw') socket = net.connect(Number(server.info.port), '127.0.0.1');
    else {
      const ws = new WebSocket(`ws://127.0.0.1:${server.info.port}`);
      await new Promise((resolve) => ws.once('open', resolve));
      socket = createWebSocketStream(ws);
    }
    const session = http2.connect('http://carrier.invalid', { createConnection: () => socket, settings: { initialWindowSize: 1 << 20 } });
    session.on('connect', () => session.setLocalWindowSize(16 << 20));
    const fetchOne = (requestPath = '/') =>
      new Promise<number>((resolve) => {
        let bytes = 0;
        const stream = session.request({ ':path': requestPath });
        stream.on('data', (chunk: Buffer) => {
          bytes += chunk.length;
        });
        stream.on('end', () => resolve(bytes));
        stream.end();
      });
    const concurrent = async (each: number) => Promise.all(Array.from({ length: 50 }, async () => {
      for (let i = 0; i < each; i += 1) await fetchOne();
    }));
    await concurrent(100);
    let started = performance.now();
    const bytes = await fetchOne('/big');
    const mibs = bytes / 2 ** 20 / ((performance.now() - started) / 1000);
    started = performance.now();
    await concurrent(200);
    const rps = 10_000 / ((performance.now() - started) / 1000);
    started = performance.now();
    for (let i = 0; i < 2000; i += 1) await fetchOne();
    const sequential = (performance.now() - started) / 2000;
    console.log(`| ${mode === 'raw' ? 'raw socket (Upgrade)' : 'WebSocket stream'} | ${mibs.toFixed(0)} | ${rps.toFixed(0)} | ${sequential.toFixed(3)} |`);
    session.destroy();
    server.proc.kill();
  }
}

// ── floor: HTTP/1.1 → HTTP/2 → HTTP/2 → HTTP/1.1 with nothing of ours in between ──────────────────

async function floor(): Promise<void> {
  const http2 = await import('node:http2');
  const net = await import('node:net');
  const listen = (server: import('node:net').Server) => new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
  const originPort = await listen(http.createServer((_req, res) => {
    res.writeHead(200, { 'content-length': '12' });
    res.end('hello world\n');
  }));
  const agent = new http.Agent({ keepAlive: true });
  const tunnelPort = await listen(net.createServer((socket) => {
    socket.setNoDelay(true);
    http2.performServerHandshake(socket).on('stream', (stream, headers) => {
      const request = http.request({ host: '127.0.0.1', port: originPort, path: headers[':path'], method: headers[':method'], agent });
      request.setNoDelay(true);
      request.on('response', (response) => {
        stream.respond({ ':status': response.statusCode ?? 502, 'content-length': response.headers['content-length'] });
        response.pipe(stream);
      });
      stream.pipe(request);
    });
  }));
  const socket = net.connect(tunnelPort, '127.0.0.1');
  socket.setNoDelay(true);
  const session = http2.connect('http://floor.invalid', { createConnection: () => socket });
  const relayPort = await listen(http.createServer((req, res) => {
    const stream = session.request({ ':method': req.method ?? 'GET', ':path': req.url ?? '/' }, { endStream: true });
    stream.on('response', (headers) => {
      res.writeHead(Number(headers[':status']), { 'content-length': headers['content-length'] });
      stream.pipe(res);
    });
  }));
  console.log(`# floor: the same hops as the relay path, no TLS, no relay logic, one process (load ${os.loadavg()[0].toFixed(1)})`);
  for (let run = 0; run < 3; run += 1) {
    const direct = await sequentialLatency(`http://127.0.0.1:${originPort}/`, 3000);
    const chain = await sequentialLatency(`http://127.0.0.1:${relayPort}/`, 3000);
    console.log(`direct p50 ${direct.p50.toFixed(3)} ms · naive chain p50 ${chain.p50.toFixed(3)} ms · added ${(chain.p50 - direct.p50).toFixed(3)} ms`);
  }
  process.exit(0);
}

if (role === 'floor') await floor();
else if (role === 'carrier-server') await carrierServer(process.argv[3]);
else if (role === 'carrier') await carrier();
else if (role === 'origin') await origin();
else if (role === 'relay') await relayRole();
else if (role === 'client') await clientRole();
else await main();
