/**
 * Engine numbers (issue: create in about a second). Prints, for N sprites created one after
 * another on the real daemon: create → running (QEMU side), create → `exec true` succeeds (client
 * side, through the API), then the same image's cold boot (stop + start → `exec true`) side by side
 * and the ratio, and daemon / QEMU RSS with the sprites running.
 *   node bin/run-ts.js bench/engine.ts [N=5] [BOOTS=3]
 */
import fs from 'node:fs';
import { startDaemon } from '../test/vm/harness.ts';
import { median } from './stats.ts';

const N = Number(process.argv[2] ?? 5);
const BOOTS = Number(process.argv[3] ?? 3);
const rss = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;

const d = await startDaemon();
try {
  // One throw-away create so the golden state exists and caches are warm, as for a user.
  await d.api.call('sprites.create', { name: 'warm' }, { timeoutMs: 900_000 });
  await d.api.call('sprites.destroy', { name: 'warm' });
  const running: number[] = [];
  const total: number[] = [];
  const toExec: number[] = [];
  let accel = '';
  for (let i = 0; i < N; i++) {
    const t0 = performance.now();
    const r = await d.api.call('sprites.create', { name: `b${i}` }, { timeoutMs: 300_000 });
    await d.api.call('sprites.exec', { name: `b${i}`, argv: ['true'] }, { timeoutMs: 120_000 });
    toExec.push(performance.now() - t0);
    running.push(r.timings.runningMs);
    total.push(r.timings.totalMs);
    accel = r.sprite.accel ?? '';
    console.log(`create b${i}: ${JSON.stringify(r.timings)}; → exec true ${(performance.now() - t0).toFixed(0)} ms`);
  }
  const info = await d.api.call('sprites.list');
  const qemuRss = info.filter((s) => s.pid).map((s) => rss(s.pid!));
  const daemonRss = rss(d.pid);
  const boots: number[] = [];
  const bootToExec: number[] = [];
  for (let i = 0; i < BOOTS; i++) {
    await d.api.call('sprites.stop', { name: 'b0', force: true });
    const t0 = performance.now();
    const r = await d.api.call('sprites.start', { name: 'b0' }, { timeoutMs: 600_000 });
    await d.api.call('sprites.exec', { name: 'b0', argv: ['true'] }, { timeoutMs: 120_000 });
    boots.push(r.timings.totalMs);
    bootToExec.push(performance.now() - t0);
    console.log(`cold boot b0: agent ready ${r.timings.totalMs} ms; → exec true ${(performance.now() - t0).toFixed(0)} ms`);
  }
  const result = {
    accel,
    n: N,
    createToRunningMs: median(running),
    createTotalMs: median(total),
    createToExecMs: Math.round(median(toExec)),
    coldBootToAgentMs: median(boots),
    coldBootToExecMs: Math.round(median(bootToExec)),
    ratioRunning: +(median(boots) / median(running)).toFixed(1),
    ratioExec: +(median(bootToExec) / median(toExec)).toFixed(1),
    daemonRssMiB: Math.round(daemonRss),
    qemuRssMiB: qemuRss.map(Math.round),
    ranges: { running: [Math.min(...running), Math.max(...running)], toExec: [Math.round(Math.min(...toExec)), Math.round(Math.max(...toExec))] },
  };
  console.log(JSON.stringify(result, null, 2));
} finally {
  await d.cleanup();
}
