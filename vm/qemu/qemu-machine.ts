/**
 * One running QEMU process as a driver Machine: QMP for control (pause, save RAM, disk snapshots,
 * forwards), named virtio-serial sockets as guest ports, and an `exit` event that says how it
 * ended (we quit it, the guest powered off, or it died). Nothing outside vm/qemu/ speaks QMP.
 */
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { z } from 'zod';
import { GUEST_PORTS, type ExitReason, type GuestPortName, type Machine, type MachineEvents, type MachineState, type PortForward } from '../driver/driver.ts';
import { fsyncFile } from '../store/atomic-json.ts';
import { GUEST_IP, shellQuote } from './argv.ts';
import { QmpClient } from './qmp-client.ts';
import { cpuSeconds, isOurQemu, killPid, sleep, tailOfLog, waitForExit } from './qemu-process.ts';

/** What runtime.json keeps for a QEMU machine (the field names of the runtime files before the driver boundary). */
export const QemuHandle = z.object({
  pid: z.number().int(),
  qmpSocket: z.string(),
  agentSocket: z.string(),
  envSocket: z.string(),
  /** Absent in handles written before the spritely agent's port existed (their QEMU has none). */
  spritelyAgentSocket: z.string().optional(),
  serialSocket: z.string().optional(),
  logFile: z.string().optional(),
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

export class QemuMachine extends EventEmitter<MachineEvents> implements Machine {
  private quitting = false;
  private guestPoweredOff = false;
  private detached = false;

  constructor(
    readonly handle: QemuHandle,
    readonly qmp: QmpClient,
  ) {
    super();
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
    if (this.detached) return;
    // QEMU closes QMP as it exits; give it a moment to be gone before judging.
    const gone = await waitForExit(this.pid, this.handle.qmpSocket, 3000);
    // The socket dropped but QEMU lives on: treat as a crash of our view; kill to keep one owner.
    if (!gone) killPid(this.pid);
    const reason: ExitReason = this.quitting ? 'quit' : this.guestPoweredOff ? 'poweroff' : 'crash';
    this.emit('exit', reason, this.handle.logFile ? tailOfLog(this.handle.logFile, 3) : '(no log)');
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
        await this.qmp.execute('cont');
        continue;
      }
      if (st !== 'inmigrate' && st !== 'restore-vm' && st !== 'finish-migrate') throw new Error(`VM is in state "${st}" instead of running`);
      if (Date.now() > deadline) throw new Error(`VM did not finish restoring within ${timeoutMs} ms (state ${st})`);
      await sleep(5);
    }
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
          throw new Error(`saving the VM state failed: ${m['error-desc'] ?? m.status}${diskFullHint(tmp)}`);
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
    if (opts.fsync !== false) fsyncFile(file);
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
    if (out.trim()) throw new Error(`QEMU refused the new forward: ${out.trim()}`);
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
  }

  async kill(): Promise<void> {
    this.quitting = true;
    killPid(this.pid);
    await this.qmp.closed;
  }

  detach(): void {
    this.detached = true;
    this.qmp.close();
  }

  /** Re-attaches to a QEMU that outlived a daemon; null when it is not running any more. */
  static async attach(handle: QemuHandle): Promise<QemuMachine | null> {
    if (!isOurQemu(handle.pid, handle.qmpSocket)) return null;
    const qmp = await QmpClient.connect(handle.qmpSocket).catch(() => null);
    if (!qmp) return null;
    return new QemuMachine(handle, qmp);
  }
}
