/**
 * Where a `spritely cp` of 20 MiB spends its time inside the sprite: each part of the path timed
 * alone through the engine's agent exec (no CLI, no API), so bench/cli.ts's end-to-end numbers can
 * be split into what the guest costs and what the host adds.
 *   - host → guest: stdin into `cat > /dev/null` (the transport alone), into `cat > file`, into
 *     the guest's `tar -x` as cp runs it (with its progress acks); `tar -x` of the same archive
 *     from the guest's own /dev/shm (unpacking into ext4 alone, timed inside the guest);
 *   - guest → host: `cat file` (the transport alone), `tar -c` as cp runs it, `head -c` of /dev/zero.
 * Medians of N rounds (the first round is a warm-up). Runs the engine in-process on a temporary
 * data dir sharing the test image cache.
 *   node bin/run-ts.js bench/cp-parts.ts [N=5]
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { guestExtractArgv } from '../vm/cli/cp-plan.ts';
import { Engine } from '../vm/engine/engine.ts';
import { layout } from '../vm/paths.ts';
import { QemuDriver } from '../vm/qemu/qemu-driver.ts';
import { makeHome, killQemusOf, testImagesDir } from '../test/vm/harness.ts';
import { median } from './stats.ts';

const N = Number(process.argv[2] ?? 5);
const BYTES = 20 * 1024 * 1024;
process.env.SPRITELY_IMAGES_DIR = testImagesDir();
const home = makeHome();
const l = layout(home);
const engine = new Engine(l, { driver: new QemuDriver({ runDir: l.runDir, accelCacheFile: l.accelCacheFile }) });
await engine.init();

/** Runs argv in the sprite with `input` as its stdin; wall ms, and its stderr's tail. */
async function run(argv: string[], input?: Buffer): Promise<{ ms: number; err: string }> {
  const t0 = performance.now();
  const ch = await (await engine.agent('c')).exec({ argv });
  let err = '';
  ch.resume();
  ch.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-2000)));
  if (input) {
    for (let i = 0; i < input.length; i += 256 * 1024) {
      if (!ch.write(input.subarray(i, i + 256 * 1024))) await new Promise((r) => ch.once('drain', r));
    }
  }
  ch.end(Buffer.alloc(0));
  const r = await ch.done;
  if (r.code !== 0) throw new Error(`${argv.join(' ')} exited ${r.code}: ${err}`);
  return { ms: Math.round(performance.now() - t0), err };
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spritely-cp-parts-'));
execFileSync('sh', ['-c', `head -c ${BYTES} /dev/urandom > "$1"`, 'sh', path.join(dir, 'f')]);
const archive = execFileSync('tar', ['-c', '-f', '-', '-C', dir, 'f'], { maxBuffer: 64 << 20 });
// the guest's tar exactly as `spritely cp` runs it (into /tmp, no rename)
const extract = guestExtractArgv({ extractDir: '/tmp', rename: null } as Parameters<typeof guestExtractArgv>[0]);
const rows: Record<string, number[]> = {};
try {
  await engine.create({ name: 'c' });
  await run(['true']);
  for (let i = 0; i <= N; i++) {
    const add = (k: string, ms: number) => i > 0 && (rows[k] ??= []).push(ms);
    add('exec true', (await run(['true'])).ms);
    add('here → sprite: stdin → cat > /dev/null', (await run(['sh', '-c', 'cat > /dev/null'], archive)).ms);
    add('here → sprite: stdin → cat > file', (await run(['sh', '-c', 'cat > /tmp/g'], archive)).ms);
    add('here → sprite: stdin → tar -x (as cp)', (await run(extract, archive)).ms);
    const t = await run(['sh', '-c', 'cat > /dev/shm/t.tar; s=$(date +%s%N); tar -x -f /dev/shm/t.tar -b 256 -C /tmp; e=$(date +%s%N); rm /dev/shm/t.tar; echo $(( (e-s)/1000000 )) >&2'], archive);
    add('in the guest: tar -x from /dev/shm alone', Number(t.err.trim().split('\n').pop()));
    add('sprite → here: cat file → stdout', (await run(['cat', '/tmp/f'])).ms);
    add('sprite → here: tar -c → stdout (as cp)', (await run(['tar', '-c', '-f', '-', '-b', '256', '-C', '/tmp', 'f'])).ms);
    add('sprite → here: head -c 20M /dev/zero', (await run(['head', '-c', String(BYTES), '/dev/zero'])).ms);
  }
  console.log(`n=${N} per row, ${os.cpus().length} CPUs, load ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}, accel ${engine.knownAccelerator?.name}, 20 MiB of random bytes`);
  for (const [k, v] of Object.entries(rows)) {
    const ms = median(v);
    const rate = k.startsWith('exec true') ? '' : `  ${(BYTES / 2 ** 20 / (ms / 1000)).toFixed(1)} MiB/s`;
    console.log(`${k.padEnd(42)} ${String(ms).padStart(6)} ms  (${Math.min(...v)}–${Math.max(...v)})${rate}`);
  }
} finally {
  engine.detachAll();
  killQemusOf(home);
  fs.rmSync(home, { recursive: true, force: true });
  fs.rmSync(dir, { recursive: true, force: true });
}
