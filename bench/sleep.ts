/**
 * Sleep/wake numbers: sleep, wake → running, wake → `exec true`, first byte of an HTTP request that
 * woke the sprite, the local-URL proxy's overhead against the raw QEMU host-forward (autocannon:
 * added p50 latency and req/s), and what 20 sleeping sprites cost (QEMU processes, RSS).
 *   node bin/run-ts.js bench/sleep.ts [N=5] [SLEEPERS=20]
 */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import autocannon from 'autocannon';
import { qemuPidsOf, startDaemon } from '../test/vm/harness.ts';

const N = Number(process.argv[2] ?? 5);
const SLEEPERS = Number(process.argv[3] ?? 20);
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const rssMiB = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;

const SERVER = `perl -MIO::Socket::INET -e '$s=IO::Socket::INET->new(LocalPort=>8080,Listen=>64,ReuseAddr=>1) or die; while($c=$s->accept){ while(<$c>){ last if $_ eq "\\r\\n" } print $c "HTTP/1.1 200 OK\\r\\nContent-Length: 3\\r\\nConnection: close\\r\\n\\r\\nok\\n"; close $c }'`;

const d = await startDaemon();
try {
  await d.api.call('sprites.create', { name: 'w' }, { timeoutMs: 900_000 });
  await d.api.call('sprites.exec', { name: 'w', argv: ['sh', '-c', `setsid ${SERVER} >/dev/null 2>&1 </dev/null &`] });
  const urlPort = Number(fs.readFileSync(path.join(d.home, 'url-port'), 'utf8'));
  const firstByte = () =>
    new Promise<number>((resolve, reject) => {
      const t0 = performance.now();
      const req = http.request({ host: '127.0.0.1', port: urlPort, path: '/', headers: { Host: `w.localhost:${urlPort}` }, agent: false }, (res) => {
        res.once('data', () => resolve(performance.now() - t0));
        res.resume();
      });
      req.on('error', reject);
      req.end();
    });
  const sleepMs: number[] = [];
  const wakeRunning: number[] = [];
  const wakeExec: number[] = [];
  const wakeHttp: number[] = [];
  for (let i = 0; i < N; i++) {
    sleepMs.push((await d.api.call('sprites.sleep', { name: 'w' })).timings.totalMs);
    const t0 = performance.now();
    const w = await d.api.call('sprites.wake', { name: 'w' });
    await d.api.call('sprites.exec', { name: 'w', argv: ['true'] });
    wakeRunning.push(w.timings.runningMs);
    wakeExec.push(Math.round(performance.now() - t0));
    await d.api.call('sprites.sleep', { name: 'w' });
    wakeHttp.push(Math.round(await firstByte()));
  }
  // Proxy overhead: the same tiny server through the raw host-forward and through the proxy.
  const s = await d.api.call('sprites.get', { name: 'w' });
  const rt = JSON.parse(fs.readFileSync(path.join(d.home, 'sprites/w/runtime.json'), 'utf8'));
  const run = (url: string, host?: string) =>
    autocannon({ url, connections: 1, duration: 10, headers: host ? { host } : {} }) as unknown as Promise<{ latency: { p50: number; p99: number }; requests: { average: number } }>;
  const raw = await run(`http://127.0.0.1:${rt.urlHostPort}/`);
  const proxied = await run(`http://127.0.0.1:${urlPort}/`, `w.localhost:${urlPort}`);
  // What sleeping costs.
  for (let i = 0; i < SLEEPERS; i++) {
    await d.api.call('sprites.create', { name: `z${i}` }, { timeoutMs: 300_000 });
    await d.api.call('sprites.sleep', { name: `z${i}` });
  }
  await d.api.call('sprites.sleep', { name: 'w' });
  const result = {
    accel: s.accel,
    n: N,
    sleepMs: median(sleepMs),
    wakeToRunningMs: median(wakeRunning),
    wakeToExecMs: median(wakeExec),
    wakingRequestFirstByteMs: median(wakeHttp),
    ranges: { sleep: [Math.min(...sleepMs), Math.max(...sleepMs)], wakeRunning: [Math.min(...wakeRunning), Math.max(...wakeRunning)] },
    proxy: {
      rawP50Ms: raw.latency.p50,
      proxiedP50Ms: proxied.latency.p50,
      addedP50Ms: +(proxied.latency.p50 - raw.latency.p50).toFixed(2),
      rawReqPerSec: Math.round(raw.requests.average),
      proxiedReqPerSec: Math.round(proxied.requests.average),
    },
    sleepers: SLEEPERS + 1,
    qemuProcessesWhileAllSleep: qemuPidsOf(d.home).length,
    daemonRssMiB: Math.round(rssMiB(d.pid)),
  };
  console.log(JSON.stringify(result, null, 2));
} finally {
  await d.cleanup();
}
