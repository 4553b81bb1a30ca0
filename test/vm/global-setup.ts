/**
 * Builds the shared image and golden state once per run (or finds them in the cache, keyed by the
 * recipe's hash and the device signature), through the real daemon, so every VM test starts from
 * a restore instead of a 27 s boot. First it rebuilds the CLI bundle if it is older than its
 * sources, so every daemon and CLI the tests spawn (bin/spritely.js) runs the code under test.
 */
import { ensureCliBuilt } from '../../scripts/build-cli.mjs';
import { startDaemon, testImagesDir } from './harness.ts';

export default async function setup(): Promise<void> {
  await ensureCliBuilt({ log: (m) => process.stderr.write(`[vm tests] ${m}\n`) });
  const t0 = Date.now();
  const d = await startDaemon();
  try {
    const img = await d.api.call('images.build', {}, { timeoutMs: 1_800_000 });
    const r = await d.api.call('sprites.create', { name: 'warmup' }, { timeoutMs: 900_000 });
    await d.api.call('sprites.destroy', { name: 'warmup' });
    process.stderr.write(`[vm tests] image ${img.id} + golden state ready in ${((Date.now() - t0) / 1000).toFixed(1)} s (cache ${testImagesDir()}; warm-up create ${r.timings.totalMs} ms, ${JSON.stringify(r.timings)})\n`);
  } finally {
    await d.cleanup();
  }
}
