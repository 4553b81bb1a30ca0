/**
 * What a restored sprite's first seconds cost, straight on the QEMU driver (no daemon): from `cont`
 * (the guest agent's HELLO already in its port) to the agent's answer, a full identity (as a create
 * sends it), the first `exec true`, and the first login-shell prompt on a pty — N fresh restores of
 * the golden state of the default image. Run it twice to compare golden states: as built now (page
 * cache kept and warmed) and with SPRITELY_GOLDEN_DROP_CACHES=1 (the cache dropped before the save,
 * as golden states were made before); each builds its own golden state once.
 *   node bin/run-ts.js bench/restore-warmth.ts [N=5]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AgentClient } from '../vm/guest/agent-client.ts';
import { GUEST_PORTS } from '../vm/driver/driver.ts';
import { ensureGolden } from '../vm/images/golden.ts';
import { bootFiles, ImageStore } from '../vm/images/image-store.ts';
import { freeLoopbackPort } from '../vm/net/free-port.ts';
import { QemuDriver } from '../vm/qemu/qemu-driver.ts';
import { qemuDisks } from '../vm/qemu/qemu-img.ts';
import { generateEd25519 } from '../vm/ssh/keys.ts';
import { identityRequest } from '../vm/engine/identity.ts';
import { testImagesDir } from '../test/vm/harness.ts';
import { median } from './stats.ts';

const N = Number(process.argv[2] ?? 5);
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'spr-warm-'));
const driver = new QemuDriver({ runDir: work, accelCacheFile: path.join(work, 'accel.json'), log: () => {} });
const images = new ImageStore(testImagesDir(), (m) => console.log(m), qemuDisks);
const image = await images.ensure(undefined, () => {});
const boot = bootFiles(image);
const shape = { memoryMiB: 512, cpus: 1 };
const golden = await ensureGolden({
  driver, imageId: image.id, imageDir: image.dir, baseDisk: image.baseDisk, boot, diskVirtualBytes: 100 * 2 ** 30, shape, runDir: work,
  log: (m) => console.log(m),
});
const rows: Record<string, number[]> = { helloMs: [], identityMs: [], firstExecMs: [], promptMs: [] };
try {
  for (let i = 0; i < N; i++) {
    const dir = fs.mkdtempSync(path.join(work, 'm-'));
    const disk = path.join(dir, 'disk.qcow2');
    await qemuDisks.createOverlay({ file: disk, backing: golden.disk, virtualBytes: golden.diskVirtualBytes });
    const m = await driver.launch({ id: `warm-${i}`, dir, disk, shape, boot, forwards: [{ hostPort: await freeLoopbackPort(), guestPort: 22 }], egressSocket: path.join(dir, 'x'), netSocket: path.join(dir, 'n'), restoreFrom: golden.stateFile });
    const agent = new AgentClient({ connect: () => m.openPort(GUEST_PORTS.agent) });
    try {
      let ran!: () => void;
      const running = new Promise<void>((r) => (ran = r));
      const ready = agent.ready(60_000, { after: running });
      await new Promise<void>((r) => agent.once('hello', () => r()));
      await m.waitRunning(60_000);
      const t0 = performance.now();
      ran();
      await ready;
      rows.helloMs.push(performance.now() - t0);
      let t = performance.now();
      await agent.identity(identityRequest({ name: `warm${i}`, hostKey: generateEd25519('x'), authorizedKey: 'ssh-ed25519 AAAA x', nowMs: Date.now() }));
      rows.identityMs.push(performance.now() - t);
      t = performance.now();
      const ch = await agent.exec({ argv: ['true'] });
      ch.resume();
      await ch.done;
      rows.firstExecMs.push(performance.now() - t);
      t = performance.now();
      const sh = await agent.pty({ cols: 80, rows: 24 });
      let screen = '';
      sh.on('data', (b: Buffer) => (screen += b));
      while (!/# $/.test(screen)) await new Promise((r) => setTimeout(r, 2));
      rows.promptMs.push(performance.now() - t);
      sh.close();
    } finally {
      agent.close();
      await m.quit().catch(() => m.kill());
      driver.release(`warm-${i}`);
    }
  }
  const out = Object.fromEntries(Object.entries(rows).map(([k, xs]) => [k, Math.round(median(xs))]));
  console.log(JSON.stringify({ dropCaches: process.env.SPRITELY_GOLDEN_DROP_CACHES === '1', n: N, goldenStateMiB: Math.round(golden.stateBytes / 2 ** 20), medians: out, all: Object.fromEntries(Object.entries(rows).map(([k, xs]) => [k, xs.map(Math.round)])) }));
} finally {
  fs.rmSync(work, { recursive: true, force: true });
}
