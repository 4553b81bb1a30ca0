/**
 * The golden state: per image and machine shape, one cold boot that settles and then saves its RAM
 * and devices to a file (LAB.md: stop → save with the bandwidth raised → quit). Every create
 * restores it onto a fresh overlay of the golden disk instead of booting — 27 s becomes ~1 s under
 * TCG. A state only fits the driver's exact version and device set it was saved with, so it is keyed
 * by the driver's signature and rebuilt whenever that changes. Both files are read-only once written.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { BootFiles, Driver, Machine, MachineShape } from '../driver/driver.ts';
import { GUEST_PORTS } from '../driver/driver.ts';
import { GuestAgentLink } from '../guest/guest-agent.ts';
import { readJson, writeJsonAtomic } from '../store/atomic-json.ts';
import { freeLoopbackPort } from '../net/free-port.ts';

export interface GoldenInfo {
  signature: string;
  imageId: string;
  disk: string;
  stateFile: string;
  stateBytes: number;
  diskVirtualBytes: number;
  createdAt: string;
  bootMs: number;
  saveMs: number;
}

export interface GoldenRequest {
  driver: Driver;
  imageId: string;
  imageDir: string;
  baseDisk: string;
  boot: BootFiles;
  diskVirtualBytes: number;
  shape: MachineShape;
  /** Short dir for the golden boot's sockets (nothing listens on its egress socket: it has no egress). */
  runDir: string;
  log: (msg: string) => void;
  onProgress?: (p: { phase: string; message: string }) => void;
}

const inFlight = new Map<string, Promise<GoldenInfo>>();

/** Bump when the golden boot's steps change, so old golden states are not reused. */
const GOLDEN_FORMAT = process.env.SPRITELY_GOLDEN_DROP_CACHES === '1' ? 3.1 : 3;

/** Run in the golden boot before its RAM is saved: reads what every new sprite reads first. */
export const GOLDEN_WARM_UP = [
  'true; /bin/true; env >/dev/null; id >/dev/null',
  'bash -l -i -c true </dev/null >/dev/null 2>&1',
  'cat /etc/hostname /etc/hosts /etc/machine-id /etc/ssh/ssh_host_ed25519_key.pub /root/.ssh/authorized_keys /etc/environment /etc/default/locale >/dev/null 2>&1',
  'ls / /root /tmp >/dev/null; uname -a >/dev/null; sync',
].join('\n');

export async function goldenSignature(req: GoldenRequest): Promise<string> {
  return crypto
    .createHash('sha256')
    .update(JSON.stringify([GOLDEN_FORMAT, await req.driver.signature(req.shape, req.boot), req.diskVirtualBytes]))
    .digest('hex')
    .slice(0, 16);
}

function readGolden(dir: string): GoldenInfo | null {
  const info = readJson<GoldenInfo>(path.join(dir, 'golden.json'));
  if (!info || !fs.existsSync(info.stateFile) || !fs.existsSync(info.disk)) return null;
  return info;
}

/** The golden state for this image + machine if it has been made (never builds one). */
export async function findGolden(req: GoldenRequest): Promise<GoldenInfo | null> {
  return readGolden(path.join(req.imageDir, `golden-${await goldenSignature(req)}`));
}

/** Returns the golden state for this image + machine, building it (one cold boot) if missing. */
export async function ensureGolden(req: GoldenRequest): Promise<GoldenInfo> {
  const sig = await goldenSignature(req);
  const existing = readGolden(path.join(req.imageDir, `golden-${sig}`));
  if (existing) return existing;
  const key = `${req.imageDir}:${sig}`;
  let p = inFlight.get(key);
  if (!p) {
    p = buildGolden(req, sig).finally(() => inFlight.delete(key));
    inFlight.set(key, p);
  }
  return p;
}

async function buildGolden(req: GoldenRequest, sig: string): Promise<GoldenInfo> {
  const finalDir = path.join(req.imageDir, `golden-${sig}`);
  const dir = `${finalDir}.partial-${process.pid}-${crypto.randomBytes(3).toString('hex')}`;
  const tag = crypto.createHash('sha256').update(dir).digest('hex').slice(0, 8);
  fs.mkdirSync(dir, { recursive: true });
  const progress = (phase: string, message: string) => {
    req.log(`golden ${req.imageId}/${sig}: ${message}`);
    req.onProgress?.({ phase, message });
  };
  let machine: Machine | null = null;
  let guest: GuestAgentLink | null = null;
  try {
    // Relative backing path: the directory is renamed into place afterwards.
    const disk = path.join(dir, 'gold.qcow2');
    await req.driver.disks.createOverlay({ file: disk, backing: req.baseDisk, virtualBytes: req.diskVirtualBytes, relativeTo: dir });
    const accel = await req.driver.accelerator(req.boot);
    progress('golden-boot', `booting the image once to save a golden state (${accel.name}${accel.emulated ? '; under software emulation this takes about half a minute' : ''})`);
    const t0 = Date.now();
    machine = await req.driver.launch({
      id: `golden-${tag}`,
      dir,
      disk,
      shape: req.shape,
      boot: req.boot,
      forwards: [{ hostPort: await freeLoopbackPort(), guestPort: 22 }],
      egressSocket: path.join(req.runDir, `gold-${tag}.egress`),
      netSocket: path.join(req.runDir, `gold-${tag}.net`),
    });
    const m = machine;
    guest = new GuestAgentLink(() => m.openPort(GUEST_PORTS.control));
    const agent = await guest.ready(accel.emulated ? 300_000 : 120_000);
    const settled = await agent.exec('/bin/systemctl', ['is-system-running', '--wait'], { timeoutMs: 240_000 });
    const state = settled.stdout.toString().trim();
    if (state !== 'running' && state !== 'degraded') throw new Error(`the golden boot did not settle: systemd says "${state}"`);
    if (state === 'degraded') {
      const failed = await agent.exec('/bin/systemctl', ['--failed', '--no-legend', '--plain']);
      req.log(`golden boot is degraded; failed units: ${failed.stdout.toString().trim().replace(/\n/g, '; ')}`);
    }
    // Grow the filesystem to the golden disk's size once here, so clones of the default size
    // need no resize (an online resize costs seconds under TCG, in every clone).
    const grown = await agent.exec('/sbin/resize2fs', ['/dev/vda'], { timeoutMs: 240_000 });
    if (grown.exitCode !== 0) throw new Error(`resize2fs in the golden boot failed: ${grown.stderr.toString().trim()}`);
    // Every sprite starts as this RAM: what its first seconds read should already be in the page
    // cache (a cold cache made the first exec after each restore ~0.5 s under TCG). So the cache is
    // kept, not dropped, and warmed with what a new sprite does first: the guest agent's exec, a
    // login shell for the terminal, the files its identity rewrites.
    await agent.exec('/bin/sh', ['-c', GOLDEN_WARM_UP], { timeoutMs: 120_000 });
    if (process.env.SPRITELY_GOLDEN_DROP_CACHES === '1') await agent.exec('/bin/sh', ['-c', 'sync; echo 3 > /proc/sys/vm/drop_caches']);
    const bootMs = Date.now() - t0;
    progress('golden-save', `saving the golden state (booted and settled in ${(bootMs / 1000).toFixed(1)} s)`);
    const t1 = Date.now();
    const stateFile = path.join(dir, 'gold.state');
    const stateBytes = await machine.saveState(stateFile);
    const saveMs = Date.now() - t1;
    await machine.quit();
    machine = null;
    guest.close();
    req.driver.release(`golden-${tag}`);
    for (const f of ['gold.qcow2', 'gold.state']) fs.chmodSync(path.join(dir, f), 0o444);
    const info: GoldenInfo = {
      signature: sig,
      imageId: req.imageId,
      disk: path.join(finalDir, 'gold.qcow2'),
      stateFile: path.join(finalDir, 'gold.state'),
      stateBytes,
      diskVirtualBytes: req.diskVirtualBytes,
      createdAt: new Date().toISOString(),
      bootMs,
      saveMs,
    };
    await writeJsonAtomic(path.join(dir, 'golden.json'), info, 0o644);
    const other = readJson(path.join(finalDir, 'golden.json')) as GoldenInfo | null;
    if (other) {
      // another daemon (another data dir sharing these images) finished the same golden first;
      // sprites may already be backed by it, so it must never be replaced
      fs.rmSync(dir, { recursive: true, force: true });
      return other;
    }
    fs.rmSync(finalDir, { recursive: true, force: true });
    fs.renameSync(dir, finalDir);
    progress('golden-done', `golden state saved (${(stateBytes / 2 ** 20).toFixed(0)} MiB in ${saveMs} ms)`);
    return info;
  } catch (err) {
    guest?.close();
    await machine?.kill();
    fs.rmSync(dir, { recursive: true, force: true });
    throw new Error(`could not prepare the golden state for ${req.imageId}: ${(err as Error).message}`);
  }
}
