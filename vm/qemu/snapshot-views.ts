/**
 * Snapshot views: an internal snapshot of a machine's own disk, shown to that running machine as
 * one more disk it can mount (the QEMU side of `Machine.attachSnapshot`). The measured way:
 *
 *   qemu-nbd -r -l snapshot.name=vN (on the disk QEMU holds open: file.locking=off, read-only; a
 *     snapshot's clusters never change while it exists)  ──unix socket in the run dir──▶
 *   QEMU: blockdev-add nbd (read-only) ◀─backing─ a throwaway qcow2 in the machine's dir
 *     ◀─ device_add scsi-hd on the machine's virtio-scsi controller (serial spritely-vN)
 *
 * The throwaway layer is there because a checkpoint of a running machine always holds an ext4
 * journal to replay: mounted with `noload` on a read-only disk, a directory made 6 s before the
 * checkpoint was missing; with a writable layer the kernel replays into it and the view is
 * exact. SCSI (not virtio-blk) because q35 cannot hot-plug onto its root bus, one controller takes
 * any number of disks, and an unplug needs no guest consent. Each view's address (target, LUN) is
 * a function of its name, so a state saved with views attached can be restored with placeholders
 * at the same places (argv.ts) — unplugged here before the guest runs.
 *
 * qemu-nbd runs detached (it outlives the daemon, as QEMU does) and is ended by pid — checked to
 * be that server through /proc — when the view is detached or the machine ends.
 */
import { execFile, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { qemuOptValue, viewDeviceId, type ViewAddress } from './argv.ts';
import { readQcow2Header } from './qcow2-reader.ts';
import { isOurQemu, killPid, sleep, tailOfLog } from './qemu-process.ts';
import type { QmpClient } from './qmp-client.ts';

const execFileP = promisify(execFile);

/** What a machine's views need: its QMP, its disk, its dir (throwaway layers) and the socket prefix in the run dir. */
export interface ViewHost {
  qmp: QmpClient;
  disk: string;
  dir: string;
  /** The machine's socket path without its suffix (`…/run/<tag>`); view sockets get `.n-NAME`. */
  socketPrefix: string;
}

const NAME = /^[A-Za-z0-9_.-]{1,40}$/;
const DEVICE_PREFIX = 'sview-';

function checkName(name: string): void {
  if (!NAME.test(name)) throw new Error(`"${name.slice(0, 50)}" cannot name a snapshot view`);
}

/** The SCSI address of a view: vN at target ⌊N/16384⌋ mod 256, LUN N mod 16384; other names by hash. */
export function viewAddress(name: string): ViewAddress {
  checkName(name);
  const m = /^v(\d+)$/.exec(name);
  const n = m ? Number(m[1]) : crypto.createHash('sha256').update(name).digest().readUInt32BE(0);
  return { name, target: Math.floor(n / 16384) % 256, lun: n % 16384 };
}

export function viewSerial(name: string): string {
  return `spritely-${name}`;
}

function files(h: Pick<ViewHost, 'dir' | 'socketPrefix'>, name: string) {
  return { socket: `${h.socketPrefix}.n-${name}`, pid: `${h.socketPrefix}.n-${name}.pid`, cow: path.join(h.dir, `view-${name}.qcow2`), log: path.join(h.dir, 'qemu-nbd.log') };
}

/**
 * Starts qemu-nbd in its own session (it outlives the daemon) with its output in the machine's
 * log; `--fork` makes the first process exit once the server listens.
 */
function startServer(args: string[], log: string): Promise<void> {
  const fd = fs.openSync(log, 'a', 0o600);
  fs.writeSync(fd, `--- ${new Date().toISOString()} qemu-nbd ${args.join(' ')}\n`);
  const child = spawn('qemu-nbd', args, { detached: true, stdio: ['ignore', fd, fd] });
  fs.closeSync(fd);
  child.unref();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('qemu-nbd did not start within 30 s')), 30_000);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`could not run qemu-nbd: ${err.message}`));
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`qemu-nbd failed (exit ${code}): ${tailOfLog(log, 3)}`));
    });
  });
}

const nodes = (name: string) => ({ nbd: `svn-${name}`, cow: `svc-${name}`, placeholder: `svp-${name}` });

async function qmpQuiet(qmp: QmpClient, cmd: string, args: Record<string, unknown>): Promise<void> {
  await qmp.execute(cmd, args).catch(() => {});
}

/** Names of the views whose devices the machine has now (placeholders included). */
export async function listViews(qmp: QmpClient): Promise<string[]> {
  const children = await qmp.execute<{ name: string; type: string }[]>('qom-list', { path: '/machine/peripheral' });
  return children.filter((c) => c.name.startsWith(DEVICE_PREFIX) && c.type.includes('scsi-hd')).map((c) => c.name.slice(DEVICE_PREFIX.length));
}

async function waitDeviceGone(qmp: QmpClient, name: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((await listViews(qmp)).includes(name)) {
    if (Date.now() > deadline) throw new Error(`the machine did not let go of the view of ${name}`);
    await sleep(20);
  }
}

/** Ends the qemu-nbd serving `name` (only if /proc shows it is that server) and removes its files. */
function endServer(h: Pick<ViewHost, 'dir' | 'socketPrefix'>, name: string): void {
  const f = files(h, name);
  try {
    const pid = Number(fs.readFileSync(f.pid, 'utf8').trim());
    if (Number.isInteger(pid) && pid > 0 && isOurQemu(pid, f.socket)) killPid(pid, 'SIGTERM');
  } catch {
    /* no server */
  }
  for (const x of [f.pid, f.socket, f.cow]) fs.rmSync(x, { force: true });
}

export async function attachView(h: ViewHost, name: string): Promise<{ serial: string }> {
  const addr = viewAddress(name);
  if ((await listViews(h.qmp)).includes(name)) return { serial: viewSerial(name) };
  const f = files(h, name);
  const n = nodes(name);
  endServer(h, name);
  let size: number;
  const fd = fs.openSync(h.disk, 'r');
  try {
    const snap = readQcow2Header(fd, h.disk).snapshots.find((s) => s.name === name);
    if (!snap) throw new Error(`the disk has no snapshot ${name}`);
    size = snap.diskSize;
  } finally {
    fs.closeSync(fd);
  }
  try {
    // The parent returns once the forked server listens.
    await startServer(['-r', '-t', '-e', '1', '--fork', `--pid-file=${f.pid}`, '-k', f.socket, '-l', `snapshot.name=${name}`, '--image-opts', `driver=qcow2,file.driver=file,file.filename=${qemuOptValue(h.disk)},file.locking=off`], f.log);
    await execFileP('qemu-img', ['create', '-q', '-f', 'qcow2', f.cow, String(size)], { timeout: 30_000 });
    fs.chmodSync(f.cow, 0o600);
    await h.qmp.execute('blockdev-add', { driver: 'nbd', 'node-name': n.nbd, server: { type: 'unix', path: f.socket }, 'read-only': true });
    await h.qmp.execute('blockdev-add', { driver: 'qcow2', 'node-name': n.cow, file: { driver: 'file', filename: f.cow }, backing: n.nbd });
    await h.qmp.execute('device_add', { driver: 'scsi-hd', bus: 'scsi0.0', drive: n.cow, id: viewDeviceId(name), serial: viewSerial(name), 'scsi-id': addr.target, lun: addr.lun });
  } catch (err) {
    await qmpQuiet(h.qmp, 'blockdev-del', { 'node-name': n.cow });
    await qmpQuiet(h.qmp, 'blockdev-del', { 'node-name': n.nbd });
    endServer(h, name);
    const msg = ((err as { stderr?: string }).stderr || (err as Error).message).trim();
    throw new Error(/scsi0|Bus .* not found/i.test(msg) ? `this machine was started before checkpoints could be shown inside it; stop and start the sprite once (${msg})` : `could not show snapshot ${name} to the machine: ${msg}`);
  }
  return { serial: viewSerial(name) };
}

export async function detachView(h: ViewHost, name: string): Promise<void> {
  checkName(name);
  const n = nodes(name);
  if ((await listViews(h.qmp)).includes(name)) {
    await h.qmp.execute('device_del', { id: viewDeviceId(name) });
    await waitDeviceGone(h.qmp, name);
  }
  for (const node of [n.cow, n.nbd, n.placeholder]) await qmpQuiet(h.qmp, 'blockdev-del', { 'node-name': node });
  endServer(h, name);
}

/** After a restore landed (still paused): the placeholders go, before the guest runs. */
export async function removePlaceholders(qmp: QmpClient, names: string[]): Promise<void> {
  for (const name of names) {
    await qmpQuiet(qmp, 'device_del', { id: viewDeviceId(name) });
    await waitDeviceGone(qmp, name).catch(() => {});
    await qmpQuiet(qmp, 'blockdev-del', { 'node-name': nodes(name).placeholder });
  }
}

/** The machine ended: every server and throwaway layer of its views goes too. */
export function endAllViews(h: Pick<ViewHost, 'dir' | 'socketPrefix'>): void {
  const dir = path.dirname(h.socketPrefix);
  const prefix = `${path.basename(h.socketPrefix)}.n-`;
  let names: string[] = [];
  try {
    names = fs.readdirSync(dir).filter((f) => f.startsWith(prefix) && f.endsWith('.pid')).map((f) => f.slice(prefix.length, -'.pid'.length));
  } catch {
    /* no run dir */
  }
  for (const name of names) if (NAME.test(name)) endServer(h, name);
  try {
    for (const f of fs.readdirSync(h.dir)) if (/^view-[A-Za-z0-9_.-]+\.qcow2$/.test(f)) fs.rmSync(path.join(h.dir, f), { force: true });
  } catch {
    /* no dir */
  }
}
