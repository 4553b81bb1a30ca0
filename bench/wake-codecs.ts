/**
 * Waking a sprite from its sleep state raw, compressed with lz4 in 64 KiB blocks (what the daemon
 * writes now) and in lz4's default 4 MiB blocks (what it wrote before 1 Dec 2026): sleep, wait
 * for the background compression, wake → running (the engine's own timing), then `exec true`.
 * The three forms in turn each round, so a load that drifts hits all alike. `fill` first writes
 * 200 MB of random data into the guest's RAM (then frees it: the pages keep their contents, so
 * the state stays large). Medians of N rounds.
 * Runs the engine in-process on a temporary data dir sharing the test image cache.
 *   node bin/run-ts.js bench/wake-codecs.ts [N=5] [fill]
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { LZ4_BLOCK, LZ4_LEVEL } from '../vm/checkpoints/ram-compressor.ts';
import { completeState } from '../vm/checkpoints/state-files.ts';
import { Engine } from '../vm/engine/engine.ts';
import { realIo } from '../vm/engine/engine-io.ts';
import { layout } from '../vm/paths.ts';
import { QemuDriver } from '../vm/qemu/qemu-driver.ts';
import { makeHome, killQemusOf, testImagesDir } from '../test/vm/harness.ts';
import { execScript } from './engine-exec.ts';
import { median } from './stats.ts';

const N = Number(process.argv[2] ?? 5);
const FILL = process.argv[3] === 'fill';
/** The form being measured: null is raw (the compressor is off). */
const forms: Record<string, string | null> = { raw: null, lz4: LZ4_BLOCK, lz4_4M: '-B7' };
let block = LZ4_BLOCK;

process.env.SPRITELY_IMAGES_DIR = testImagesDir();
const home = makeHome();
const l = layout(home);
// the real compressor's command, with the block size of the form being measured
const compress = (src: string, dest: string, signal: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const args = ['-n', '19', 'lz4', '-q', `-${LZ4_LEVEL}`, block, '--no-frame-crc', '-f', '--', src, dest];
    const child = spawn('nice', args, { stdio: 'ignore', signal });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`lz4 exited ${code}`))));
  });
const engine = new Engine(l, { driver: new QemuDriver({ runDir: l.runDir, accelCacheFile: l.accelCacheFile }), io: { ...realIo, compress } });
await engine.init();

const exec = (script: string) => execScript(engine, 'w', script);

const res: Record<string, { running: number[]; exec: number[]; bytes: number[] }> = {};
try {
  await engine.create({ name: 'w' });
  await exec('true');
  if (FILL) await exec('head -c 200M /dev/urandom > /dev/shm/fill && rm /dev/shm/fill');
  for (let i = 0; i < N; i++) {
    for (const [name, b] of Object.entries(forms)) {
      engine.compressor.enabled = b !== null;
      if (b) block = b;
      await engine.sleep('w');
      await engine.compressor.idle();
      const state = completeState(path.join(home, 'sprites/w/sleep.state'));
      if (!state || (b !== null) !== state.endsWith('.lz4')) throw new Error(`${name}: the sleep state is ${state}`);
      const r = (res[name] ??= { running: [], exec: [], bytes: [] });
      r.bytes.push(fs.statSync(state).size);
      const t0 = performance.now();
      r.running.push((await engine.wake('w')).timings.runningMs);
      await exec('true');
      r.exec.push(Math.round(performance.now() - t0));
    }
  }
  const out = Object.fromEntries(
    Object.entries(res).map(([k, r]) => [k, { MiB: +(median(r.bytes) / 2 ** 20).toFixed(1), runningMs: median(r.running), running: r.running, execMs: median(r.exec), exec: r.exec }]),
  );
  console.log(JSON.stringify({ accel: engine.knownAccelerator?.name, n: N, fill: FILL, ...out }, null, 2));
} finally {
  engine.detachAll();
  killQemusOf(home);
  fs.rmSync(home, { recursive: true, force: true });
}
