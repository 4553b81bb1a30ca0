/**
 * The golden state: per image and device set, one cold boot that settles and then saves its RAM
 * and devices to a file (LAB.md: stop → migrate with max-bandwidth raised → quit). Every create
 * restores it onto a fresh overlay of the golden disk instead of booting — 27 s becomes ~1 s under
 * TCG. A state only fits the exact QEMU version and device set it was saved with, so it is keyed by
 * `deviceSignature` and rebuilt whenever that changes. Both files are read-only once written.
 */
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { deviceSignature, type VmSpec } from '../qemu/argv.ts';
import { QemuVm } from '../qemu/qemu-vm.ts';
import { readJson, writeJsonAtomic } from '../store/atomic-json.ts';
import { freeLoopbackPort } from '../net/free-port.ts';

const execFileP = promisify(execFile);

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
  imageId: string;
  imageDir: string;
  baseDisk: string;
  kernel: string;
  initrd: string;
  cmdline: string;
  diskVirtualBytes: number;
  /** Machine shape: accel, memory, cpus, QEMU binary. Paths and ports are filled in here. */
  machine: Pick<VmSpec, 'qemuBinary' | 'accel' | 'memoryMiB' | 'cpus'>;
  qemuVersion: string;
  runDir: string;
  log: (msg: string) => void;
  onProgress?: (p: { phase: string; message: string }) => void;
}

const inFlight = new Map<string, Promise<GoldenInfo>>();

export function goldenSpec(req: GoldenRequest, dir: string, sshPort: number): VmSpec {
  const tag = crypto.createHash('sha256').update(dir).digest('hex').slice(0, 8);
  return {
    ...req.machine,
    name: `golden-${tag}`,
    kernel: req.kernel,
    initrd: req.initrd,
    cmdline: req.cmdline,
    disk: path.join(dir, 'gold.qcow2'),
    sshPort,
    forwards: [],
    qmpSocket: path.join(req.runDir, `gold-${tag}.qmp`),
    agentSocket: path.join(req.runDir, `gold-${tag}.qga`),
    envSocket: path.join(req.runDir, `gold-${tag}.env`),
    // nothing listens here: the golden boot has no egress
    egressSocket: path.join(req.runDir, `gold-${tag}.egress`),
    serialSocket: path.join(req.runDir, `gold-${tag}.serial`),
    serialLog: path.join(dir, 'serial.log'),
    pidFile: path.join(dir, 'qemu.pid'),
  };
}

/** Bump when the golden boot's steps change, so old golden states are not reused. */
const GOLDEN_FORMAT = 2;

export function goldenSignature(req: GoldenRequest): string {
  return crypto
    .createHash('sha256')
    .update(JSON.stringify([GOLDEN_FORMAT, deviceSignature(goldenSpec(req, '/x', 1), req.qemuVersion), req.diskVirtualBytes]))
    .digest('hex')
    .slice(0, 16);
}

export function findGolden(req: GoldenRequest): GoldenInfo | null {
  const dir = path.join(req.imageDir, `golden-${goldenSignature(req)}`);
  const info = readJson<GoldenInfo>(path.join(dir, 'golden.json'));
  if (!info || !fs.existsSync(info.stateFile) || !fs.existsSync(info.disk)) return null;
  return info;
}

/** Returns the golden state for this image + machine, building it (one cold boot) if missing. */
export function ensureGolden(req: GoldenRequest): Promise<GoldenInfo> {
  const existing = findGolden(req);
  if (existing) return Promise.resolve(existing);
  const sig = goldenSignature(req);
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
  fs.mkdirSync(dir, { recursive: true });
  const progress = (phase: string, message: string) => {
    req.log(`golden ${req.imageId}/${sig}: ${message}`);
    req.onProgress?.({ phase, message });
  };
  let vm: QemuVm | null = null;
  try {
    // Relative backing path: the directory is renamed into place afterwards.
    await execFileP('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', path.relative(dir, req.baseDisk), '-F', 'qcow2', path.join(dir, 'gold.qcow2'), String(req.diskVirtualBytes)], { cwd: dir });
    const spec = goldenSpec(req, dir, await freeLoopbackPort());
    progress('golden-boot', `booting the image once to save a golden state (${req.machine.accel}; under TCG this takes about half a minute)`);
    const t0 = Date.now();
    vm = await QemuVm.launch(spec, path.join(dir, 'qemu.log'));
    const agent = await vm.agent(req.machine.accel === 'tcg' ? 300_000 : 120_000);
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
    await agent.exec('/bin/sh', ['-c', 'sync; echo 3 > /proc/sys/vm/drop_caches']);
    const bootMs = Date.now() - t0;
    progress('golden-save', `saving the golden state (booted and settled in ${(bootMs / 1000).toFixed(1)} s)`);
    const t1 = Date.now();
    const stateFile = path.join(dir, 'gold.state');
    const stateBytes = await vm.saveState(stateFile);
    const saveMs = Date.now() - t1;
    await vm.quit();
    vm = null;
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
    vm?.kill();
    fs.rmSync(dir, { recursive: true, force: true });
    throw new Error(`could not prepare the golden state for ${req.imageId}: ${(err as Error).message}`);
  }
}
