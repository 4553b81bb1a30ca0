/**
 * Sleep/wake numbers: sleep, wake → running, wake → `exec true`, first byte of an HTTP request that
 * woke the sprite, the local-URL proxy's overhead against the raw QEMU host-forward (sequential
 * requests on fresh connections: added p50/p99), and what 20 sleeping sprites cost (processes, RSS).
 *   node bin/run-ts.js bench/sleep.ts [N=5] [SLEEPERS=20]
 */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { qemuPidsOf, startDaemon } from '../test/vm/harness.ts';
import { median } from './stats.ts';

const N = Number(process.argv[2] ?? 5);
const SLEEPERS = Number(process.argv[3] ?? 20);
const rssMiB = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;

const SERVER = `perl -MIO::Socket::INET -e '$s=IO::Socket::INET->new(LocalPort=>8080,Listen=>64,ReuseAddr=>1) or die; while($c=$s->accept){ while(<$c>){ last if $_ eq "\\r\\n" } print $c "HTTP/1.1 200 OK\\r\\nContent-Length: 3\\r\\nConnection: close\\r\\n\\r\\nok\\n"; close $c }'`;

// No warm spare: it would be a QEMU process while every sprite sleeps.
const d = await startDaemon(undefined, { SPRITELY_WARM_SPARE: 'off' });
try {
  await d.api.call('sprites.create', { name: 'w' }, { timeoutMs: 900_000 });
  await d.api.call('sprites.exec', { name: 'w', argv: ['sh', '-c', `setsid ${SERVER} >/dev/null 2>&1 </dev/null &`] });
  const urlPort = Number(fs.readFileSync(path.join(d.home, 'url-port'), 'utf8'));
  const firstByte = () =>
    new Promise<number>((resolve, reject) => {
      const t0 = performance.now();
      const req = http.request({ host: '127.0.0.1', port: urlPort, path: '/', headers: { Host: `w.localhost:${urlPort}` }, agent: false }, (res) => {
        // the app's own answer, not the proxy's error page
        if (res.statusCode !== 200) reject(new Error(`the proxy answered ${res.statusCode}, not the app`));
        res.once('data', () => resolve(performance.now() - t0));
        res.resume();
      });
      req.on('error', reject);
      req.end();
    });
  // perl takes a few seconds to listen under TCG: wait for the app's own answer first
  for (let i = 0; ; i++) {
    if (await firstByte().then(() => true, () => false)) break;
    if (i > 120) throw new Error('the test server in the sprite never answered');
    await new Promise((r) => setTimeout(r, 500));
  }
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
    console.log(`round ${i}: wake ${JSON.stringify(w.timings)} → exec true ${wakeExec.at(-1)} ms; HTTP to the sleeping sprite → first byte ${wakeHttp.at(-1)} ms`);
  }
  // Proxy overhead: the same tiny server (it closes every connection) through the raw QEMU
  // host-forward and through the proxy, sequential requests on fresh connections, timed in µs.
  const rt = JSON.parse(fs.readFileSync(path.join(d.home, 'sprites/w/runtime.json'), 'utf8'));
  const s = await d.api.call('sprites.get', { name: 'w' });
  const once = (port: number, host: string) =>
    new Promise<number>((resolve, reject) => {
      const t0 = performance.now();
      const req = http.request({ host: '127.0.0.1', port, path: '/', headers: { Host: host }, agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve(performance.now() - t0));
      });
      req.on('error', reject);
      req.end();
    });
  // A reset (the guest's one-at-a-time server, or slirp, under load) is counted and asked again.
  let resets = 0;
  const series = async (port: number, host: string, n: number) => {
    const xs: number[] = [];
    for (let i = 0; i < n; i++) {
      try {
        xs.push(await once(port, host));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ECONNRESET' || ++resets > 20) throw err;
        i--;
      }
    }
    return xs;
  };
  const raw: number[] = [];
  const proxied: number[] = [];
  let overheadError: string | null = null;
  try {
    await series(rt.urlHostPort, 'w', 20);
    await series(urlPort, `w.localhost:${urlPort}`, 20);
    for (let round = 0; round < 3; round++) {
      raw.push(...(await series(rt.urlHostPort, 'w', 100)));
      proxied.push(...(await series(urlPort, `w.localhost:${urlPort}`, 100)));
    }
  } catch (err) {
    overheadError = `${(err as Error).message} after ${raw.length} raw and ${proxied.length} proxied requests, ${resets} resets`;
    console.log(`proxy overhead: not measured (${overheadError})`);
  }
  const p99 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * 0.99)];
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
    ranges: { sleep: [Math.min(...sleepMs), Math.max(...sleepMs)], wakeRunning: [Math.min(...wakeRunning), Math.max(...wakeRunning)], wakeExec: [Math.min(...wakeExec), Math.max(...wakeExec)], wakingRequest: [Math.min(...wakeHttp), Math.max(...wakeHttp)] },
    proxy: {
      requests: raw.length,
      rawP50Ms: +median(raw).toFixed(2),
      proxiedP50Ms: +median(proxied).toFixed(2),
      addedP50Ms: +(median(proxied) - median(raw)).toFixed(2),
      rawP99Ms: +p99(raw).toFixed(2),
      proxiedP99Ms: +p99(proxied).toFixed(2),
      rawReqPerSec: Math.round(1000 / median(raw)),
      proxiedReqPerSec: Math.round(1000 / median(proxied)),
      resetsAskedAgain: resets,
      error: overheadError,
    },
    sleepers: SLEEPERS + 1,
    qemuProcessesWhileAllSleep: qemuPidsOf(d.home).length,
    daemonRssMiB: Math.round(rssMiB(d.pid)),
  };
  console.log(JSON.stringify(result, null, 2));
} finally {
  await d.cleanup();
}
