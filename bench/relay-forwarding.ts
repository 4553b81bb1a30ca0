/**
 * The daemon's side of a tunneled request, alone: an HTTP/2 stream in, an HTTP/1.1 request to the
 * app out. Compares what the tunnel client does (`proxyRequest` over `OriginPools`, undici's
 * dispatch) with Node's `http.request` + keep-alive `http.Agent` piping the same stream. Three
 * processes: this one (the forwarding side, whose CPU is measured), an HTTP/2 load generator, and the
 * app — either keeping connections alive or closing each one (as Python's http.server does).
 * Prints CPU µs per request at 50 concurrent streams and sequential p50/p90 latency. Not a test.
 *
 *   node bin/run-ts.js bench/relay-forwarding.ts [ROUNDS=3]
 */
import { fork, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { OriginPools, proxyRequest } from '../relay/origin-proxy.ts';
import { median } from './stats.ts';

const here = fileURLToPath(import.meta.url);
const role = process.argv[2];

function send(message: unknown): void {
  process.send?.(message);
}

if (role === 'app') {
  const closing = process.argv[3] === 'closing';
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '12', ...(closing ? { connection: 'close' } : {}) });
    res.end('hello world\n');
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1', () => send((server.address() as AddressInfo).port));
} else if (role === 'load') {
  // Commands from the parent: {kind: 'burst', count} (50 concurrent) or {kind: 'sequential', count}.
  const session = http2.connect(`http://127.0.0.1:${process.argv[3]}`, { settings: { initialWindowSize: 1 << 20 } });
  const one = () =>
    new Promise<number>((resolve, reject) => {
      const started = performance.now();
      const stream = session.request({ ':path': '/', 'spritely-sprite': 'dev', 'x-forwarded-for': '203.0.113.7', 'user-agent': 'bench' }, { endStream: true });
      stream.resume();
      stream.on('end', () => resolve(performance.now() - started));
      stream.on('error', reject);
    });
  process.on('message', async (command: { kind: 'burst' | 'sequential'; count: number }) => {
    const times: number[] = [];
    if (command.kind === 'burst') {
      await Promise.all(Array.from({ length: 50 }, async () => {
        for (let i = 0; i < command.count / 50; i += 1) await one();
      }));
    } else {
      for (let i = 0; i < command.count; i += 1) times.push(await one());
    }
    send(times);
  });
  send('ready');
} else {
  await main();
}

function start(args: string[]): Promise<{ proc: ChildProcess; first: unknown }> {
  const proc = fork(here, args, { execArgv: ['--import', 'tsx'] });
  return new Promise((resolve) => proc.once('message', (first) => resolve({ proc, first })));
}

function ask(proc: ChildProcess, command: object): Promise<number[]> {
  return new Promise((resolve) => {
    proc.once('message', (times) => resolve(times as number[]));
    proc.send(command);
  });
}

async function main(): Promise<void> {
  const rounds = Number(process.argv[2] ?? 3);
  const children: ChildProcess[] = [];
  try {
    console.log(`# forwarding an HTTP/2 stream to an HTTP/1.1 app (${os.cpus().length} × ${os.cpus()[0].model}, node ${process.version}, load ${os.loadavg()[0].toFixed(1)}); median of ${rounds} rounds`);
    console.log('| app | forwarder | CPU µs/request (50 concurrent) | sequential p50 ms | p90 ms |');
    console.log('| --- | --- | ---: | ---: | ---: |');
    for (const appMode of ['keep-alive', 'closing']) {
      const app = await start(['app', appMode]);
      children.push(app.proc);
      const target = { host: '127.0.0.1', port: app.first as number };
      const pools = new OriginPools();
      const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
      let forwarder: 'undici pools (ours)' | 'http.request + Agent' = 'undici pools (ours)';
      const server = net.createServer((socket) => {
        http2.performServerHandshake(socket, { settings: { initialWindowSize: 1 << 20, maxConcurrentStreams: 10_000 } }).on('stream', (stream, headers) => {
          stream.on('error', () => undefined);
          if (forwarder === 'undici pools (ours)') return proxyRequest(stream, headers, target, pools);
          const request = http.request({ ...target, path: headers[':path'], method: headers[':method'], agent });
          request.setNoDelay(true);
          request.on('response', (response) => {
            stream.respond({ ':status': response.statusCode ?? 502, 'content-length': response.headers['content-length'] });
            response.pipe(stream);
          });
          request.on('error', () => stream.close());
          stream.pipe(request);
        });
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const load = await start(['load', String((server.address() as AddressInfo).port)]);
      children.push(load.proc);
      const results = new Map<string, { cpu: number[]; p50: number[]; p90: number[] }>();
      const burst = appMode === 'keep-alive' ? 30_000 : 10_000;
      for (let round = 0; round < rounds + 1; round += 1) {
        for (const mode of ['undici pools (ours)', 'http.request + Agent'] as const) {
          forwarder = mode;
          const before = process.cpuUsage();
          await ask(load.proc, { kind: 'burst', count: burst });
          const used = process.cpuUsage(before);
          const times = (await ask(load.proc, { kind: 'sequential', count: 2000 })).sort((a, b) => a - b);
          if (round === 0) continue; // warm-up
          const row = results.get(mode) ?? { cpu: [], p50: [], p90: [] };
          row.cpu.push((used.user + used.system) / burst);
          row.p50.push(times[Math.floor(times.length / 2)]);
          row.p90.push(times[Math.floor(times.length * 0.9)]);
          results.set(mode, row);
        }
      }
      for (const [mode, row] of results) {
        console.log(`| ${appMode} | ${mode} | ${median(row.cpu).toFixed(1)} | ${median(row.p50).toFixed(3)} | ${median(row.p90).toFixed(3)} |`);
      }
      load.proc.kill();
      app.proc.kill();
      server.close();
      await pools.close();
      agent.destroy();
    }
  } finally {
    for (const proc of children) proc.kill();
  }
  process.exit(0);
}
