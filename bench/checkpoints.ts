/**
 * Checkpoint numbers (512 MiB guest): guest pause and total for a checkpoint; restore → running and
 * → `exec true` from a raw and from a compressed (lz4) RAM state; bytes per checkpoint raw and
 * compressed (and the background compression time) for an idle guest and after writing 200 MB of
 * random data into RAM; wake → running from a raw and from a compressed sleep state; what deleting
 * a checkpoint gives back (and what it said it would); `checkpoint diff` between a fresh
 * checkpoint and after installing a small Debian package (hello); and QEMU's own snapshot-save /
 * snapshot-load jobs (RAM inside the qcow2) side by side. Medians of N rounds; raw and compressed
 * rounds alternate, so a load that drifts hits both alike.
 * Runs the engine in-process on a temporary data dir sharing the test image cache.
 *   node bin/run-ts.js bench/checkpoints.ts [N=5]
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { completeState } from '../vm/checkpoints/state-files.ts';
import { Engine } from '../vm/engine/engine.ts';
import { layout } from '../vm/paths.ts';
import { QemuDriver } from '../vm/qemu/qemu-driver.ts';
import type { QemuMachine } from '../vm/qemu/qemu-machine.ts';
import { makeHome, killQemusOf, testImagesDir } from '../test/vm/harness.ts';
import { median } from './stats.ts';

const N = Number(process.argv[2] ?? 5);
const MiB = (n: number) => +(n / 2 ** 20).toFixed(1);
const range = (xs: number[]) => [Math.min(...xs), Math.max(...xs)];

process.env.SPRITELY_IMAGES_DIR = testImagesDir();
const home = makeHome();
const l = layout(home);
const engine = new Engine(l, { driver: new QemuDriver({ runDir: l.runDir, accelCacheFile: l.accelCacheFile }) });
await engine.init();
const disk = path.join(home, 'sprites/cp/disk.qcow2');
const allocated = () => fs.statSync(disk).blocks * 512;

async function exec(script: string, stdin?: Buffer): Promise<void> {
  const ch = await (await engine.agent('cp')).exec({ argv: ['sh', '-c', script] });
  ch.resume();
  ch.stderr.resume();
  ch.end(stdin ?? Buffer.alloc(0));
  const code = (await ch.done).code;
  if (code !== 0) throw new Error(`${script} exited ${code}`);
}

/** Checkpoint, (compress), restore → running → exec true: one round. */
async function round(compressed: boolean, comment: string) {
  const r = await engine.createCheckpoint('cp', { comment });
  let compressMs = 0;
  if (compressed) {
    // (the engine keeps the newest two raw; here each one is compressed at once, to time restoring it)
    const t = performance.now();
    engine.compressor.enqueue(path.join(home, 'sprites/cp/checkpoints', `${r.checkpoint.id}.state`), 'cp');
    await engine.compressor.idle();
    compressMs = Math.round(performance.now() - t);
  }
  const file = completeState(path.join(home, 'sprites/cp/checkpoints', `${r.checkpoint.id}.state`))!;
  const bytes = fs.statSync(file).size;
  const t0 = performance.now();
  const rr = await engine.restoreCheckpoint('cp', r.checkpoint.id, { backup: false });
  await exec('true');
  return { pauseMs: r.timings.pauseMs, totalMs: r.timings.totalMs, rawBytes: r.checkpoint.ramBytes, bytes, compressMs, file: path.basename(file), runningMs: rr.timings.runningMs, execMs: Math.round(performance.now() - t0) };
}

type Round = Awaited<ReturnType<typeof round>>;
const summary = (rs: Round[]) => ({
  pauseMs: median(rs.map((r) => r.pauseMs)),
  checkpointTotalMs: median(rs.map((r) => r.totalMs)),
  restoreToRunningMs: median(rs.map((r) => r.runningMs)),
  restoreRunningRange: range(rs.map((r) => r.runningMs)),
  restoreToExecMs: median(rs.map((r) => r.execMs)),
  ramMiB: MiB(median(rs.map((r) => r.bytes))),
  rawRamMiB: MiB(median(rs.map((r) => r.rawBytes))),
  compressMs: median(rs.map((r) => r.compressMs)),
  files: [...new Set(rs.map((r) => r.file.replace(/^v\d+/, 'vN')))],
});

try {
  await engine.create({ name: 'cp' });
  await exec('true');

  // 1. idle guest, raw states (compression off) and compressed states, rounds interleaved (the load drifts)
  const rawIdle: Round[] = [];
  const packedIdle: Round[] = [];
  for (let i = 0; i < N; i++) {
    engine.compressor.enabled = false;
    rawIdle.push(await round(false, `raw ${i}`));
    engine.compressor.enabled = true;
    packedIdle.push(await round(true, `lz4 ${i}`));
  }

  // 2. after 200 MB of random data in RAM
  await exec('head -c 200M /dev/urandom > /dev/shm/fill');
  const rawBusy: Round[] = [];
  const packedBusy: Round[] = [];
  for (let i = 0; i < Math.max(3, Math.ceil(N / 2)); i++) {
    engine.compressor.enabled = false;
    rawBusy.push(await round(false, `busy raw ${i}`));
    engine.compressor.enabled = true;
    packedBusy.push(await round(true, `busy lz4 ${i}`));
  }
  await exec('rm /dev/shm/fill');

  // 3. wake from a raw and from a compressed sleep state
  const wake = { raw: [] as number[], packed: [] as number[], packedBytes: [] as number[], rawBytes: [] as number[] };
  for (let i = 0; i < N; i++) {
    for (const kind of ['raw', 'packed'] as const) {
      engine.compressor.enabled = kind === 'packed';
      await engine.sleep('cp');
      const file = path.join(home, 'sprites/cp/sleep.state');
      await engine.compressor.idle();
      if (kind === 'raw') wake.rawBytes.push(fs.statSync(file).size);
      else wake.packedBytes.push(fs.statSync(completeState(file)!).size);
      wake[kind].push((await engine.wake('cp')).timings.runningMs);
      await exec('true');
    }
  }

  engine.compressor.enabled = true;

  // 4. what deleting a checkpoint gives back
  await exec('head -c 300M /dev/urandom > /root/big && sync');
  const held = await engine.createCheckpoint('cp', { comment: 'holds 300 MB' });
  await exec('rm /root/big && sync && fstrim / || true');
  await engine.createCheckpoint('cp', { comment: 'after rm' });
  await engine.compressor.idle();
  // what the list says (counted in the background)
  engine.listCheckpoints('cp');
  await new Promise((r) => setTimeout(r, 1500));
  const said = engine.listCheckpoints('cp').find((c) => c.id === held.checkpoint.id)!;
  const ramFile = completeState(path.join(home, 'sprites/cp/checkpoints', `${held.checkpoint.id}.state`));
  const ramOnDisk = ramFile ? fs.statSync(ramFile).blocks * 512 : 0;
  const before = allocated();
  await engine.deleteCheckpoint('cp', held.checkpoint.id);
  const freedDisk = before - allocated();

  // 5. checkpoint diff: a fresh checkpoint vs after installing a small package
  const deb = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-deb-'));
  execFileSync('apt-get', ['download', 'hello'], { cwd: deb, stdio: 'ignore' });
  const debFile = path.join(deb, fs.readdirSync(deb).find((f) => f.endsWith('.deb'))!);
  const base = await engine.createCheckpoint('cp', { comment: 'before hello' });
  await exec('cat > /tmp/hello.deb && dpkg -i /tmp/hello.deb >/dev/null && rm /tmp/hello.deb', fs.readFileSync(debFile));
  fs.rmSync(deb, { recursive: true, force: true });
  const diffNow: number[] = [];
  let listed = 0;
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    const r = await engine.diffCheckpoints('cp', { from: base.checkpoint.id, to: 'now' });
    diffNow.push(Math.round(performance.now() - t0));
    listed = r.entries.length;
  }
  const after = await engine.createCheckpoint('cp', { comment: 'after hello' });
  const diffPair: number[] = [];
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    await engine.diffCheckpoints('cp', { from: base.checkpoint.id, to: after.checkpoint.id });
    diffPair.push(Math.round(performance.now() - t0));
  }

  // 6. baseline: QEMU's snapshot-save / snapshot-load jobs with the RAM inside the qcow2
  const vm = engine.machine('cp') as unknown as QemuMachine;
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
    idle: { raw: summary(rawIdle), lz4: summary(packedIdle) },
    busy200MB: { raw: summary(rawBusy), lz4: summary(packedBusy) },
    wake: {
      rawRunningMs: median(wake.raw),
      rawRange: range(wake.raw),
      lz4RunningMs: median(wake.packed),
      lz4Range: range(wake.packed),
      rawMiB: MiB(median(wake.rawBytes)),
      lz4MiB: MiB(median(wake.packedBytes)),
    },
    deleting: { saidFreesMiB: said.freeBytes === null ? null : MiB(said.freeBytes), ramStateMiB: MiB(ramOnDisk), diskFreedMiB: MiB(freedDisk), totalFreedMiB: MiB(freedDisk + ramOnDisk) },
    diff: { helloEntries: listed, checkpointToNowMs: median(diffNow), nowRange: range(diffNow), checkpointToCheckpointMs: median(diffPair) },
    baselineSnapshotSaveMs: median(saveMs),
    baselineSnapshotLoadMs: median(loadMs),
  };
  console.log(JSON.stringify(result, null, 2));
} finally {
  engine.detachAll();
  killQemusOf(home);
  fs.rmSync(home, { recursive: true, force: true });
}
