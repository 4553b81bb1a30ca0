/**
 * One running QEMU process as a driver Machine: QMP for control (pause, save RAM, disk snapshots,
 * forwards), named virtio-serial sockets as guest ports, and an `exit` event that says how it
 * ended (we quit it, the guest powered off, or it died). Nothing outside vm/qemu/ speaks QMP.
 */
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import { z } from 'zod';
import { GUEST_PORTS, type ExitReason, type GuestPortName, type Machine, type MachineEvents, type MachineState, type PortForward } from '../driver/driver.ts';
import { safeText } from '../safe-text.ts';
import { fsyncFileAsync } from '../store/atomic-json.ts';
import { GUEST_IP, shellQuote } from './argv.ts';
import { QmpClient } from './qmp-client.ts';
import { SerialLog } from './serial-log.ts';
import { cpuSeconds, isOurQemu, killPid, sleep, tailOfLog, waitForExit } from './qemu-process.ts';
import { attachView, detachView, endAllViews, listViews, removePlaceholders, type ViewHost } from './snapshot-views.ts';

/** What runtime.json keeps for a QEMU machine (the field names of the runtime files before the driver boundary). */
export const QemuHandle = z.object({
  pid: z.number().int(),
  qmpSocket: z.string(),
  agentSocket: z.string(),
  envSocket: z.string(),
  /** Absent in handles written before the spritely agent's port existed (their QEMU has none). */
  spritelyAgentSocket: z.string().optional(),
  serialSocket: z.string().optional(),
  /** Where the daemon keeps the serial console's log (absent in older handles: serial.log beside logFile). */
  serialLog: z.string().optional(),
  logFile: z.string().optional(),
  /** The machine's dir and disk (snapshot views need them; absent in handles written before machines could be re-homed). */
  dir: z.string().optional(),
  disk: z.string().optional(),
});
export type QemuHandle = z.infer<typeof QemuHandle>;

/** 7.2's default migration bandwidth is 32 MiB/s: a 300 MiB save would take 9 s. */
const MIGRATE_MAX_BANDWIDTH = 100 * 1024 ** 3;

function diskFullHint(file: string): string {
  try {
    const st = fs.statfsSync(file.slice(0, file.lastIndexOf('/')) || '/');
    const free = st.bavail * st.bsize;
    return free < 1024 ** 3 ? ` (the disk holding the data dir is nearly full: ${(free / 2 ** 20).toFixed(0)} MiB free)` : '';
  } catch {
    return '';
  }
}

/** Where a machine's serial log goes: the handle says, or (older handles) beside its QEMU log. */
export function serialLogOf(handle: QemuHandle): string | null {
  return handle.serialLog ?? (handle.logFile ? path.join(path.dirname(handle.logFile), 'serial.log') : null);
}

export class QemuMachine extends EventEmitter<MachineEvents> implements Machine {
  private quitting = false;
  private guestPoweredOff = false;
  private detached = false;
  private readonly serial: SerialLog | null;
  private placeholders: string[];

  constructor(
    public handle: QemuHandle,
    readonly qmp: QmpClient,
    opts: {
      log?: (msg: string) => void;
      keepSerialLog?: boolean;
      /** Views the restored state had: unplugged once it has landed, before the guest runs. */
      placeholders?: string[];
    } = {},
  ) {
    super();
    this.placeholders = opts.placeholders ?? [];
    const serialLog = serialLogOf(handle);
    this.serial = opts.keepSerialLog !== false && handle.serialSocket && serialLog ? new SerialLog({ socketPath: handle.serialSocket, file: serialLog, log: opts.log }) : null;
    qmp.on('event', (e) => {
      if (e.event === 'SHUTDOWN' && (e.data as { guest?: unknown } | undefined)?.guest) {
        this.guestPoweredOff = true;
        this.emit('poweroff');
      }
    });
    qmp.closed.then(() => this.onQmpClosed());
  }

  get pid(): number {
    return this.handle.pid;
  }

  private async onQmpClosed(): Promise<void> {
    this.serial?.close();
    if (this.detached) return;
    // QEMU closes QMP as it exits; give it a moment to be gone before judging.
    const gone = await waitForExit(this.pid, this.handle.qmpSocket, 3000);
    // The socket dropped but QEMU lives on: treat as a crash of our view; kill to keep one owner.
    if (!gone) killPid(this.pid);
    this.endViews();
    const reason: ExitReason = this.quitting ? 'quit' : this.guestPoweredOff ? 'poweroff' : 'crash';
    const said = this.handle.logFile ? tailOfLog(this.handle.logFile, 3) : '(no log)';
    this.emit('exit', reason, this.qmp.closeReason ? `${this.qmp.closeReason} (its log: ${said})` : said);
  }

  async state(): Promise<MachineState> {
    let status: string;
    try {
      status = (await this.qmp.execute<{ status: string }>('query-status')).status;
    } catch {
      return 'other';
    }
    switch (status) {
      case 'running':
        return 'running';
      case 'paused':
        return 'paused';
      case 'postmigrate':
      case 'finish-migrate':
        return 'saving';
      case 'shutdown':
        return 'shutdown';
      case 'inmigrate':
      case 'restore-vm':
      case 'prelaunch':
        return 'starting';
      default:
        return 'other';
    }
  }

  async waitRunning(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const { status: st } = await this.qmp.execute<{ status: string }>('query-status');
      if (st === 'running') return;
      if (st === 'paused' || st === 'postmigrate' || st === 'prelaunch') {
        if (this.placeholders.length) {
          await removePlaceholders(this.qmp, this.placeholders);
          this.placeholders = [];
        }
        await this.qmp.execute('cont');
        continue;
      }
      if (st !== 'inmigrate' && st !== 'restore-vm' && st !== 'finish-migrate') throw new Error(`VM is in state "${st}" instead of running`);
      if (Date.now() > deadline) throw new Error(`VM did not finish restoring within ${timeoutMs} ms (state ${st})`);
      await sleep(5);
    }
  }

  async waitLanded(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const { status: st } = await this.qmp.execute<{ status: string }>('query-status');
      if (st === 'paused' || st === 'postmigrate' || st === 'prelaunch') return;
      if (st === 'running') return void (await this.qmp.execute('stop'));
      if (st !== 'inmigrate' && st !== 'restore-vm' && st !== 'finish-migrate') throw new Error(`VM is in state "${st}" instead of restored`);
      if (Date.now() > deadline) throw new Error(`VM did not finish restoring within ${timeoutMs} ms (state ${st})`);
      await sleep(5);
    }
  }

  /**
   * QEMU keeps its open files across a rename, so the disk and the logs simply move (same
   * filesystem: the data dir); the sockets stay where the handle says. Only for machines launched
   * with their dir and disk in the handle.
   */
  async rehome(to: { id: string; dir: string; disk: string }): Promise<void> {
    const { dir, disk } = this.handle;
    if (!dir || !disk) throw new Error('this machine cannot be moved (it was started by an older daemon)');
    fs.renameSync(disk, to.disk);
    const moved: Partial<QemuHandle> = { dir: to.dir, disk: to.disk };
    for (const f of ['qemu.log', 'serial.log', 'qemu.pid']) {
      try {
        fs.renameSync(path.join(dir, f), path.join(to.dir, f));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
    if (this.handle.logFile && path.dirname(this.handle.logFile) === dir) moved.logFile = path.join(to.dir, path.basename(this.handle.logFile));
    this.handle = { ...this.handle, ...moved };
  }

  async pause(): Promise<void> {
    await this.qmp.execute('stop');
  }

  async resume(): Promise<void> {
    await this.qmp.execute('cont');
  }

  async saveState(file: string, opts: { timeoutMs?: number; fsync?: boolean } = {}): Promise<number> {
    const timeoutMs = opts.timeoutMs ?? 120_000;
    await this.qmp.execute('stop');
    await this.qmp.execute('migrate-set-parameters', { 'max-bandwidth': MIGRATE_MAX_BANDWIDTH });
    const tmp = `${file}.partial`;
    fs.rmSync(tmp, { force: true });
    fs.rmSync(file, { force: true });
    // The shell renames only after `cat` has exited, i.e. written every byte: QEMU reports
    // "completed" when it has closed the pipe, which can be before `cat` is done.
    await this.qmp.execute('migrate', { uri: `exec:cat > ${shellQuote(tmp)} && mv -f ${shellQuote(tmp)} ${shellQuote(file)}` });
    const deadline = Date.now() + timeoutMs;
    let completed = false;
    let completedAt = 0;
    for (;;) {
      if (!completed) {
        const m = await this.qmp.execute<{ status?: string; 'error-desc'?: string }>('query-migrate');
        if (m.status === 'failed' || m.status === 'cancelled') {
          fs.rmSync(tmp, { force: true });
          throw new Error(`saving the VM state failed: ${safeText(String(m['error-desc'] ?? m.status), { maxChars: 500 })}${diskFullHint(tmp)}`);
        }
        completed = m.status === 'completed';
        if (completed) completedAt = Date.now();
      }
      if (completed && fs.existsSync(file)) break;
      if (completed && Date.now() - completedAt > 15_000) {
        fs.rmSync(tmp, { force: true });
        throw new Error(`the VM state was sent but could not be written to ${file}${diskFullHint(tmp)}`);
      }
      if (Date.now() > deadline) {
        await this.qmp.execute('migrate_cancel').catch(() => {});
        fs.rmSync(tmp, { force: true });
        throw new Error(`saving the VM state took longer than ${timeoutMs} ms${diskFullHint(tmp)}`);
      }
      await sleep(completed ? 2 : 5);
    }
    // (off the event loop: a sleep state of a few hundred MiB took 100+ ms of the daemon's thread)
    if (opts.fsync !== false) await fsyncFileAsync(file);
    return fs.statSync(file).size;
  }

  async snapshotDisk(name: string): Promise<void> {
    await this.qmp.execute('blockdev-snapshot-internal-sync', { device: 'disk0', name });
  }

  async deleteDiskSnapshot(name: string): Promise<void> {
    await this.qmp.execute('blockdev-snapshot-delete-internal-sync', { device: 'disk0', name });
  }

  async resizeDisk(bytes: number): Promise<void> {
    await this.qmp.execute('block_resize', { 'node-name': 'disk0', size: bytes });
  }

  /** QMP has no command for user-network forwards: HMP's hostfwd_remove/add, which answer errors as text. */
  async setForward(f: PortForward): Promise<void> {
    await this.qmp.hmp(`hostfwd_remove n0 tcp:127.0.0.1:${f.hostPort}`);
    const out = await this.qmp.hmp(`hostfwd_add n0 tcp:127.0.0.1:${f.hostPort}-${GUEST_IP}:${f.guestPort}`);
    if (out.trim()) throw new Error(`QEMU refused the new forward: ${safeText(out.trim(), { maxChars: 500 })}`);
  }

  openPort(name: GuestPortName): Promise<Duplex> {
    const socketPath = { [GUEST_PORTS.control]: this.handle.agentSocket, [GUEST_PORTS.env]: this.handle.envSocket, [GUEST_PORTS.agent]: this.handle.spritelyAgentSocket }[name];
    if (!socketPath) return Promise.reject(new Error(`this machine has no guest port ${name} (it was started before that port existed)`));
    return new Promise((resolve, reject) => {
      const s = net.connect(socketPath);
      s.once('connect', () => {
        s.off('error', reject);
        resolve(s);
      });
      s.once('error', reject);
    });
  }

  private views(): ViewHost {
    const { disk, dir } = this.handle;
    if (!disk || !dir) throw new Error('this machine was started before checkpoints could be shown inside it; stop and start the sprite once');
    return { qmp: this.qmp, disk, dir, socketPrefix: this.handle.qmpSocket.replace(/\.qmp$/, '') };
  }

  private endViews(): void {
    if (this.handle.dir) endAllViews({ dir: this.handle.dir, socketPrefix: this.handle.qmpSocket.replace(/\.qmp$/, '') });
  }

  attachSnapshot(name: string): Promise<{ serial: string }> {
    return attachView(this.views(), name);
  }

  async detachSnapshot(name: string): Promise<void> {
    await detachView(this.views(), name);
  }

  attachedSnapshots(): Promise<string[]> {
    return listViews(this.qmp);
  }

  async powerDown(): Promise<void> {
    await this.qmp.execute('system_powerdown');
  }

  async waitPowerOff(timeoutMs: number): Promise<void> {
    await this.qmp.waitForEvent((e) => e.event === 'SHUTDOWN', timeoutMs);
  }

  async repair(): Promise<void> {
    await this.qmp.execute('migrate_cancel').catch(() => {});
    await this.qmp.execute('cont');
  }

  cpuSeconds(): number {
    return cpuSeconds(this.pid);
  }

  async quit(timeoutMs = 10_000): Promise<void> {
    this.quitting = true;
    await this.qmp.execute('quit').catch(() => {});
    if (!(await waitForExit(this.pid, this.handle.qmpSocket, timeoutMs))) killPid(this.pid);
    await this.qmp.closed;
    this.endViews();
  }

  async kill(): Promise<void> {
    this.quitting = true;
    killPid(this.pid);
    await this.qmp.closed;
    await waitForExit(this.pid, this.handle.qmpSocket, 3000);
    this.endViews();
  }

  detach(): void {
    this.detached = true;
    this.serial?.close();
    this.qmp.close();
  }

  /**
   * Re-attaches to a QEMU that outlived a daemon; null when it is not running any more. A QEMU
   * started before the daemon kept the serial log writes it itself (its argv has `logfile=`); the
   * daemon leaves that one alone until the machine next starts.
   */
  static async attach(handle: QemuHandle, opts: { log?: (msg: string) => void } = {}): Promise<QemuMachine | null> {
    if (!isOurQemu(handle.pid, handle.qmpSocket)) return null;
    const qmp = await QmpClient.connect(handle.qmpSocket).catch(() => null);
    if (!qmp) return null;
    return new QemuMachine(handle, qmp, { log: opts.log, keepSerialLog: !qemuLogsSerialItself(handle.pid) });
  }
}

/** True when that QEMU was started with a chardev log file (before the daemon kept the serial log). */
function qemuLogsSerialItself(pid: number): boolean {
  try {
    return /,logfile=/.test(fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8'));
  } catch {
    return false;
  }
}
