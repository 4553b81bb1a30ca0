/**
 * Engine numbers (issue: create in about a second). Prints, for N sprites created one after
 * another on the real daemon: create → running (QEMU side), create → `exec true` succeeds (client
 * side, through the API); the same with a warm spare (when the daemon has them: each create takes
 * the spare, the sprite is destroyed again and the next round waits for a new spare); restore of a
 * checkpoint *with its undo checkpoint* → `exec true`; then the same image's cold boot (stop +
 * start → `exec true`) side by side and the ratio, and daemon / QEMU RSS with the sprites running.
 *   node bin/run-ts.js bench/engine.ts [N=5] [BOOTS=3]
 */
import fs from 'node:fs';
import { startDaemon, waitFor } from '../test/vm/harness.ts';
import { median } from './stats.ts';

const N = Number(process.argv[2] ?? 5);
const BOOTS = Number(process.argv[3] ?? 3);
const rss = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;
const range = (xs: number[]) => [Math.round(Math.min(...xs)), Math.round(Math.max(...xs))];

// Spares off for the plain creates (the daemon's default may be on): each create restores the golden state itself.
const d = await startDaemon(undefined, { SPRITELY_WARM_SPARE: 'off' });
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

  // Restore a checkpoint, with the undo checkpoint a restore takes first, → `exec true`.
  await d.api.call('sprites.exec', { name: 'b0', argv: ['true'] });
  const { checkpoint } = await d.api.call('checkpoints.create', { name: 'b0', comment: 'bench' });
  const restoreExec: number[] = [];
  for (let i = 0; i < N; i++) {
    const t0 = performance.now();
    const r = await d.api.call('checkpoints.restore', { name: 'b0', id: checkpoint.id }, { timeoutMs: 300_000 });
    await d.api.call('sprites.exec', { name: 'b0', argv: ['true'] }, { timeoutMs: 120_000 });
    restoreExec.push(performance.now() - t0);
    console.log(`restore b0 ${checkpoint.id} (undo checkpoint ${r.backup}): ${JSON.stringify(r.timings)}; → exec true ${(performance.now() - t0).toFixed(0)} ms`);
  }

  // With a warm spare (a daemon without them refuses the setting: skipped).
  const spareExec: number[] = [];
  let spareRssMiB: number | null = null;
  const spares = await d.api.call('config.set', { warmSpare: true } as never).then(() => true, (err: Error) => (console.log(`warm spare: not available (${err.message})`), false));
  if (spares) {
    for (const s of info) if (s.name !== 'b0') await d.api.call('sprites.destroy', { name: s.name });
    for (let i = 0; i < N; i++) {
      const ready = await waitFor('a warm spare', async () => ((await d.api.call('config.get')) as any).spares?.find((x: { state: string }) => x.state === 'ready'), 300_000, 100);
      if (ready.pid) spareRssMiB = rss(ready.pid);
      const t0 = performance.now();
      const r = await d.api.call('sprites.create', { name: `s${i}` }, { timeoutMs: 300_000 });
      await d.api.call('sprites.exec', { name: `s${i}`, argv: ['true'] }, { timeoutMs: 120_000 });
      spareExec.push(performance.now() - t0);
      console.log(`create s${i} from the warm spare: ${JSON.stringify(r.timings)}; → exec true ${(performance.now() - t0).toFixed(0)} ms`);
      await d.api.call('sprites.destroy', { name: `s${i}` });
    }
    await d.api.call('config.set', { warmSpare: false } as never);
  }
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
    restoreWithUndoToExecMs: Math.round(median(restoreExec)),
    spareCreateToExecMs: spareExec.length ? Math.round(median(spareExec)) : null,
    spareRssMiB: spareRssMiB === null ? null : Math.round(spareRssMiB),
    ratioRunning: +(median(boots) / median(running)).toFixed(1),
    ratioExec: +(median(bootToExec) / median(toExec)).toFixed(1),
    daemonRssMiB: Math.round(daemonRss),
    qemuRssMiB: qemuRss.map(Math.round),
    ranges: { running: range(running), toExec: range(toExec), restoreToExec: range(restoreExec), ...(spareExec.length ? { spareToExec: range(spareExec) } : {}) },
  };
  console.log(JSON.stringify(result, null, 2));
} finally {
  await d.cleanup();
}
