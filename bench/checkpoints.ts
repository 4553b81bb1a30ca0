/**
 * Checkpoint numbers (512 MiB guest): guest pause and total for a checkpoint, restore → running and
 * → `exec true`, bytes per checkpoint for an idle guest and after writing 200 MB into RAM (raw and
 * gzip -1), and QEMU's own snapshot-save / snapshot-load jobs (RAM inside the qcow2) side by side.
 * Runs the engine in-process on a temporary data dir sharing the test image cache.
 *   node bin/run-ts.js bench/checkpoints.ts [N=5]
 */
import fs from 'node:fs';
import zlib from 'node:zlib';
import { Engine } from '../vm/engine/engine.ts';
import { layout } from '../vm/paths.ts';
import { QemuDriver } from '../vm/qemu/qemu-driver.ts';
import type { QemuMachine } from '../vm/qemu/qemu-machine.ts';
import { makeHome, killQemusOf, testImagesDir } from '../test/vm/harness.ts';
import { median } from './stats.ts';

const N = Number(process.argv[2] ?? 5);
const MiB = (n: number) => +(n / 2 ** 20).toFixed(1);

process.env.SPRITELY_IMAGES_DIR = testImagesDir();
const home = makeHome();
const l = layout(home);
const engine = new Engine(l, { driver: new QemuDriver({ runDir: l.runDir, accelCacheFile: l.accelCacheFile }) });
await engine.init();

async function exec(name: string, script: string): Promise<void> {
  const ch = await engine.ssh(name).exec(['sh', '-c', script]);
  ch.resume();
  ch.stderr.resume();
  const code = await new Promise<number>((r) => ch.on('exit', (c: number) => r(c)));
  if (code !== 0) throw new Error(`${script} exited ${code}`);
}

async function gzipSize(file: string): Promise<{ bytes: number; ms: number }> {
  const t0 = performance.now();
  let bytes = 0;
  await new Promise<void>((resolve, reject) => {
    fs.createReadStream(file)
      .pipe(zlib.createGzip({ level: 1 }))
      .on('data', (c: Buffer) => (bytes += c.length))
      .on('end', () => resolve())
      .on('error', reject);
  });
  return { bytes, ms: Math.round(performance.now() - t0) };
}

try {
  await engine.create({ name: 'cp' });
  await exec('cp', 'true');
  const pause: number[] = [];
  const total: number[] = [];
  const restoreRunning: number[] = [];
  const restoreExec: number[] = [];
  let idleRam = 0;
  for (let i = 0; i < N; i++) {
    const r = await engine.createCheckpoint('cp', { comment: `bench ${i}` });
    pause.push(r.timings.pauseMs);
    total.push(r.timings.totalMs);
    idleRam = r.checkpoint.ramBytes;
    const t0 = performance.now();
    const rr = await engine.restoreCheckpoint('cp', r.checkpoint.id, { backup: false });
    restoreRunning.push(rr.timings.runningMs);
    await exec('cp', 'true');
    restoreExec.push(Math.round(performance.now() - t0));
  }
  const idleFile = `${home}/sprites/cp/checkpoints/${engine.listCheckpoints('cp').find((c) => c.memory)!.id}.state`;
  const idleGz = await gzipSize(idleFile);

  await exec('cp', 'head -c 200M /dev/urandom > /dev/shm/fill');
  const busy = await engine.createCheckpoint('cp', { comment: 'after 200 MB in RAM' });
  const busyGz = await gzipSize(`${home}/sprites/cp/checkpoints/${busy.checkpoint.id}.state`);
  const busyRestore = await engine.restoreCheckpoint('cp', busy.checkpoint.id, { backup: false });

  // Baseline: QEMU's snapshot-save / snapshot-load jobs with the RAM inside the qcow2.
  const vm = engine.machine('cp') as QemuMachine;
  const job = async (cmd: string, args: Record<string, unknown>) => {
    const t0 = performance.now();
    await vm.qmp.execute(cmd, args);
    for (;;) {
      const jobs = await vm.qmp.execute<{ id: string; status: string; error?: string }[]>('query-jobs');
      const j = jobs.find((x) => x.id === args['job-id']);
      if (j?.status === 'concluded') {
        await vm.qmp.execute('job-dismiss', { id: args['job-id'] });
        if (j.error) throw new Error(j.error);
        break;
      }
      await new Promise((r) => setTimeout(r, 5));
    }
    return Math.round(performance.now() - t0);
  };
  const saveMs: number[] = [];
  const loadMs: number[] = [];
  for (let i = 0; i < Math.min(N, 3); i++) {
    saveMs.push(await job('snapshot-save', { 'job-id': `s${i}`, tag: `base${i}`, vmstate: 'disk0', devices: ['disk0'] }));
    loadMs.push(await job('snapshot-load', { 'job-id': `l${i}`, tag: `base${i}`, vmstate: 'disk0', devices: ['disk0'] }));
  }
  const result = {
    accel: engine.knownAccelerator?.name,
    n: N,
    checkpointPauseMs: median(pause),
    checkpointTotalMs: median(total),
    restoreToRunningMs: median(restoreRunning),
    restoreToExecMs: median(restoreExec),
    ranges: { pause: [Math.min(...pause), Math.max(...pause)], restoreRunning: [Math.min(...restoreRunning), Math.max(...restoreRunning)] },
    idleRamMiB: MiB(idleRam),
    idleRamGzipMiB: MiB(idleGz.bytes),
    idleGzipMs: idleGz.ms,
    busyRamMiB: MiB(busy.checkpoint.ramBytes),
    busyRamGzipMiB: MiB(busyGz.bytes),
    busyGzipMs: busyGz.ms,
    busyPauseMs: busy.timings.pauseMs,
    busyRestoreToRunningMs: busyRestore.timings.runningMs,
    baselineSnapshotSaveMs: median(saveMs),
    baselineSnapshotLoadMs: median(loadMs),
  };
  console.log(JSON.stringify(result, null, 2));
} finally {
  engine.detachAll();
  killQemusOf(home);
  fs.rmSync(home, { recursive: true, force: true });
}
