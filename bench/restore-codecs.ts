/**
 * Restoring a checkpoint from its RAM state raw, compressed with zstd -3 (what older versions
 * wrote), with lz4 -1 without frame checksum in 64 KiB blocks (what the daemon writes now) and in
 * lz4's default 4 MiB blocks (what it wrote before): restore → running
 * and → `exec true`, the three forms of the same state in turn each round, so a load that drifts
 * hits all alike. `fill` first puts 200 MB of random data in the guest's RAM. Medians of N rounds.
 * Runs the engine in-process on a temporary data dir sharing the test image cache.
 *   node bin/run-ts.js bench/restore-codecs.ts [N=5] [fill]
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Engine } from '../vm/engine/engine.ts';
import { layout } from '../vm/paths.ts';
import { QemuDriver } from '../vm/qemu/qemu-driver.ts';
import { makeHome, killQemusOf, testImagesDir } from '../test/vm/harness.ts';
import { execScript } from './engine-exec.ts';
import { median } from './stats.ts';

const N = Number(process.argv[2] ?? 5);
const FILL = process.argv[3] === 'fill';
process.env.SPRITELY_IMAGES_DIR = testImagesDir();
const home = makeHome();
const l = layout(home);
const engine = new Engine(l, { driver: new QemuDriver({ runDir: l.runDir, accelCacheFile: l.accelCacheFile }) });
await engine.init();
// the bench makes each form itself
engine.compressor.enabled = false;

const exec = (script: string) => execScript(engine, 'cp', script);

/** Each form: how to make it from the raw state (IN → OUT) and its suffix. */
const forms: Record<string, { make: string[] | null; suffix: string }> = {
  raw: { make: null, suffix: '' },
  zstd3: { make: ['zstd', '-q', '-3', '-T1', '-f', '-o', 'OUT', '--', 'IN'], suffix: '.zst' },
  lz4: { make: ['lz4', '-q', '-1', '-B4', '--no-frame-crc', '-f', '--', 'IN', 'OUT'], suffix: '.lz4' },
  // what the daemon wrote before 1 Dec 2026: lz4's default 4 MiB blocks
  lz4_4M: { make: ['lz4', '-q', '-1', '--no-frame-crc', '-f', '--', 'IN', 'OUT'], suffix: '.lz4' },
};
const res: Record<string, { running: number[]; exec: number[]; bytes: number }> = {};
try {
  await engine.create({ name: 'cp' });
  await exec('true');
  if (FILL) await exec('head -c 200M /dev/urandom > /dev/shm/fill');
  const cp = await engine.createCheckpoint('cp', { comment: 'restored in every form' });
  const raw = path.join(home, 'sprites/cp/checkpoints', `${cp.checkpoint.id}.state`);
  const keep = `${raw}.keep`;
  fs.linkSync(raw, keep);
  for (let i = 0; i < N; i++) {
    for (const [name, form] of Object.entries(forms)) {
      for (const x of ['.zst', '.lz4']) fs.rmSync(raw + x, { force: true });
      if (!fs.existsSync(raw)) fs.linkSync(keep, raw);
      if (form.make) {
        execFileSync(form.make[0], form.make.slice(1).map((a) => (a === 'IN' ? keep : a === 'OUT' ? `${raw}.tmp` : a)));
        fs.renameSync(`${raw}.tmp`, raw + form.suffix);
        fs.rmSync(raw);
      }
      const bytes = fs.statSync(raw + form.suffix).size;
      const t0 = performance.now();
      const r = await engine.restoreCheckpoint('cp', cp.checkpoint.id, { backup: false });
      await exec('true');
      const e = Math.round(performance.now() - t0);
      (res[name] ??= { running: [], exec: [], bytes }).running.push(r.timings.runningMs);
      res[name].exec.push(e);
    }
  }
  const out = Object.fromEntries(
    Object.entries(res).map(([k, r]) => [k, { MiB: +(r.bytes / 2 ** 20).toFixed(1), runningMs: median(r.running), running: r.running, execMs: median(r.exec), exec: r.exec }]),
  );
  console.log(JSON.stringify({ accel: engine.knownAccelerator?.name, n: N, fill: FILL, ...out }, null, 2));
} finally {
  engine.detachAll();
  killQemusOf(home);
  fs.rmSync(home, { recursive: true, force: true });
}
