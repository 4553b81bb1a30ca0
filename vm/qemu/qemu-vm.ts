/**
 * One running QEMU process as the engine sees it: QMP for control, the guest agent for fix-ups,
 * and an `exit` event that says how it ended (we quit it, the guest powered off, or it died).
 * This is the QEMU side of the driver boundary (vm/engine/driver.ts); nothing above it builds
 * argv or speaks QMP.
 */
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import { buildQemuArgv, shellQuote, type VmSpec } from './argv.ts';
import { GuestAgent } from './guest-agent.ts';
import { QmpClient } from './qmp-client.ts';
import { isOurQemu, killPid, launchQemu, sleep, waitForExit } from './qemu-process.ts';

export function fsyncFile(file: string): void {
  const fd = fs.openSync(file, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

function diskFullHint(file: string): string {
  try {
    const st = fs.statfsSync(file.slice(0, file.lastIndexOf('/')) || '/');
    const free = st.bavail * st.bsize;
    return free < 1024 ** 3 ? ` (the disk holding the data dir is nearly full: ${(free / 2 ** 20).toFixed(0)} MiB free)` : '';
  } catch {
    return '';
  }
}

export type ExitReason = 'quit' | 'poweroff' | 'crash';

/** 7.2's default migration bandwidth is 32 MiB/s: a 300 MiB save would take 9 s. */
const MIGRATE_MAX_BANDWIDTH = 100 * 1024 ** 3;

export interface AttachInfo {
  pid: number;
  qmpSocket: string;
  agentSocket: string;
}

export class QemuVm extends EventEmitter<{ exit: [ExitReason] }> {
  private quitting = false;
  private guestPoweredOff = false;
  private agentClient: GuestAgent | null = null;
  private exited = false;
  private detached = false;

  private constructor(
    readonly pid: number,
    readonly qmp: QmpClient,
    readonly qmpSocket: string,
    readonly agentSocket: string,
  ) {
    super();
    qmp.on('event', (e) => {
      if (e.event === 'SHUTDOWN' && (e.data as any)?.guest) this.guestPoweredOff = true;
    });
    qmp.closed.then(() => this.onQmpClosed());
  }

  /** Starts QEMU for `spec` (booting, or restoring `spec.incomingStateFile`). */
  static async launch(spec: VmSpec, logFile: string): Promise<QemuVm> {
    const { pid } = await launchQemu(buildQemuArgv(spec), { logFile, qmpSocket: spec.qmpSocket });
    try {
      const qmp = await QmpClient.connect(spec.qmpSocket);
      return new QemuVm(pid, qmp, spec.qmpSocket, spec.agentSocket);
    } catch (err) {
      killPid(pid);
      throw err;
    }
  }

  /** Re-attaches to a QEMU that outlived a daemon; null when it is not running any more. */
  static async attach(info: AttachInfo): Promise<QemuVm | null> {
    if (!isOurQemu(info.pid, info.qmpSocket)) return null;
    const qmp = await QmpClient.connect(info.qmpSocket).catch(() => null);
    if (!qmp) return null;
    return new QemuVm(info.pid, qmp, info.qmpSocket, info.agentSocket);
  }

  private async onQmpClosed(): Promise<void> {
    if (this.detached) return;
    // QEMU closes QMP as it exits; give it a moment to be gone before judging.
    const gone = await waitForExit(this.pid, this.qmpSocket, 3000);
    if (!gone) {
      // The socket dropped but QEMU lives on: treat as a crash of our view; kill to keep one owner.
      killPid(this.pid);
    }
    this.exited = true;
    this.agentClient?.disconnect();
    this.emit('exit', this.quitting ? 'quit' : this.guestPoweredOff ? 'poweroff' : 'crash');
  }

  get isRunning(): boolean {
    return !this.exited;
  }

  async status(): Promise<string> {
    const s = await this.qmp.execute<{ status: string }>('query-status');
    return s.status;
  }

  /** After `-incoming`, waits until the migration has landed and the guest runs. */
  async waitRunning(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const st = await this.status();
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

  /**
   * Saves RAM + device state to `file` (the guest must be paused, or is paused by this call and
   * stays paused). Returns the bytes written.
   */
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

  async resizeDisk(node: string, bytes: number): Promise<void> {
    await this.qmp.execute('block_resize', { 'node-name': node, size: bytes });
  }

  /** The guest agent, connected and synced (waits up to `timeoutMs` for it to answer). */
  async agent(timeoutMs = 30_000): Promise<GuestAgent> {
    if (this.agentClient) {
      try {
        await this.agentClient.ping(2000);
        return this.agentClient;
      } catch {
        this.agentClient.disconnect();
        this.agentClient = null;
      }
    }
    const agent = new GuestAgent(this.agentSocket);
    await agent.connect(Date.now() + timeoutMs);
    this.agentClient = agent;
    return agent;
  }

  /** Ends QEMU now (no guest shutdown): QEMU flushes its caches to the image files as it quits. */
  async quit(timeoutMs = 10_000): Promise<void> {
    this.quitting = true;
    await this.qmp.execute('quit').catch(() => {});
    if (!(await waitForExit(this.pid, this.qmpSocket, timeoutMs))) killPid(this.pid);
    await this.qmp.closed;
  }

  kill(): void {
    this.quitting = true;
    killPid(this.pid);
  }

  /** Lets go of QEMU without ending it (the daemon is shutting down and leaves VMs running). */
  detach(): void {
    this.detached = true;
    this.agentClient?.disconnect();
    this.qmp.close();
  }
}
