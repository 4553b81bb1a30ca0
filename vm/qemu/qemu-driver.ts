/**
 * The QEMU driver: machines are detached QEMU processes (they outlive the daemon) with QMP on a
 * unix socket, guest ports as virtio-serial sockets, user networking with loopback forwards and a
 * guestfwd to the daemon's egress socket, for current images a second NIC on the host network
 * stack (net-helper.ts), and qcow2 disks handled by qemu-img. The accelerator is
 * chosen once by a canary boot (accel.ts); a state's signature is the normalized argv plus the QEMU
 * version (argv.ts). Per-machine sockets live in the short run dir (unix socket paths are limited
 * to ~108 bytes), logs and the pid file in the machine's own dir.
 */
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Accelerator, BootFiles, Driver, DriverCheck, LaunchSpec, MachineShape } from '../driver/driver.ts';
import { SpritelyError } from '../errors.ts';
import { chooseAccelerator, type AccelChoice } from './accel.ts';
import { buildQemuArgv, deviceSignature, type VmSpec } from './argv.ts';
import { viewAddress } from './snapshot-views.ts';
import { qemuDisks } from './qemu-img.ts';
import { QemuHandle, QemuMachine } from './qemu-machine.ts';
import { missingNetHelper, netHelperBinary, startNetHelper } from './net-helper.ts';
import { killPid, launchQemu, qemuVersion } from './qemu-process.ts';
import { QmpClient } from './qmp-client.ts';

const execFileP = promisify(execFile);

export interface QemuDriverOptions {
  /** Short directory for per-machine unix sockets. */
  runDir: string;
  /** Where the accelerator choice is cached (per host boot, QEMU version and kernel). */
  accelCacheFile: string;
  qemuBinary?: string;
  log?: (msg: string) => void;
}

/** The sockets of machine `id` in the run dir. */
export function qemuSockets(runDir: string, id: string): { qmp: string; agent: string; env: string; spritelyAgent: string; serial: string; netHelper: string } {
  const tag = crypto.createHash('sha256').update(id).digest('hex').slice(0, 12);
  const sock = (kind: string) => path.join(runDir, `${tag}.${kind}`);
  return { qmp: sock('qmp'), agent: sock('qga'), env: sock('env'), spritelyAgent: sock('agent'), serial: sock('serial'), netHelper: sock('nic') };
}

export class QemuDriver implements Driver {
  readonly displayName = 'QEMU';
  readonly qemuBinary: string;
  readonly disks = qemuDisks;
  private ver: string | null = null;
  private accel: AccelChoice | null = null;

  constructor(private readonly opts: QemuDriverOptions) {
    this.qemuBinary = opts.qemuBinary ?? process.env.SPRITELY_QEMU ?? (process.arch === 'arm64' ? 'qemu-system-aarch64' : 'qemu-system-x86_64');
  }

  async version(): Promise<string> {
    if (!this.ver) {
      try {
        this.ver = await qemuVersion(this.qemuBinary);
      } catch (err) {
        throw new SpritelyError('failed_precondition', `QEMU is not installed or does not run (${this.qemuBinary}): ${(err as Error).message}. On Debian/Ubuntu: sudo apt-get install qemu-system-x86 qemu-utils`);
      }
    }
    return this.ver;
  }

  private async accelChoice(boot: BootFiles): Promise<AccelChoice> {
    this.accel ??= await chooseAccelerator({
      qemuBinary: this.qemuBinary,
      qemuVersion: await this.version(),
      kernel: boot.kernel,
      cacheFile: this.opts.accelCacheFile,
      log: this.opts.log ?? (() => {}),
    });
    return this.accel;
  }

  async accelerator(boot: BootFiles): Promise<Accelerator> {
    return toAccelerator(await this.accelChoice(boot));
  }

  get knownAccelerator(): Accelerator | null {
    return this.accel ? toAccelerator(this.accel) : null;
  }

  private async spec(s: Omit<LaunchSpec, 'restoreFrom'> & { restoreFrom?: string }): Promise<VmSpec> {
    const accel = await this.accelChoice(s.boot);
    const sockets = qemuSockets(this.opts.runDir, s.id);
    return {
      name: s.id,
      qemuBinary: this.qemuBinary,
      accel: accel.accel,
      memoryMiB: s.shape.memoryMiB,
      cpus: s.shape.cpus,
      kernel: s.boot.kernel,
      initrd: s.boot.initrd,
      cmdline: s.boot.cmdline,
      disk: s.disk,
      forwards: s.forwards,
      qmpSocket: sockets.qmp,
      agentSocket: sockets.agent,
      envSocket: sockets.env,
      spritelyAgentSocket: sockets.spritelyAgent,
      egressSocket: s.egressSocket,
      netHelperSocket: s.boot.netstack ? sockets.netHelper : undefined,
      serialSocket: sockets.serial,
      pidFile: path.join(s.dir, 'qemu.pid'),
      incomingStateFile: s.restoreFrom,
      placeholders: s.restoreFrom ? s.restoreAttached?.map(viewAddress) : undefined,
    };
  }

  async signature(shape: MachineShape, boot: BootFiles): Promise<string> {
    const spec = await this.spec({ id: 'signature', dir: '/', disk: '', shape, boot, forwards: [], egressSocket: '', netSocket: '' });
    return deviceSignature(spec, await this.version());
  }

  async launch(s: LaunchSpec): Promise<QemuMachine> {
    const spec = await this.spec(s);
    const logFile = path.join(s.dir, 'qemu.log');
    // the network stack first: QEMU connects the guest's second NIC to it as it starts
    const helperPid = spec.netHelperSocket
      ? await startNetHelper({ qemuSocket: spec.netHelperSocket, daemonSocket: s.netSocket, logFile: path.join(s.dir, 'net.log') })
      : 0;
    let pid: number;
    try {
      ({ pid } = await launchQemu(buildQemuArgv(spec), { logFile, qmpSocket: spec.qmpSocket }));
    } catch (err) {
      if (helperPid) killPid(helperPid);
      throw err;
    }
    try {
      const qmp = await QmpClient.connect(spec.qmpSocket);
      const handle = { pid, qmpSocket: spec.qmpSocket, agentSocket: spec.agentSocket, envSocket: spec.envSocket, spritelyAgentSocket: spec.spritelyAgentSocket, serialSocket: spec.serialSocket, serialLog: path.join(s.dir, 'serial.log'), logFile, dir: s.dir, disk: s.disk };
      return new QemuMachine(handle, qmp, { log: this.machineLog(s.id), placeholders: spec.placeholders?.map((p) => p.name) ?? [] });
    } catch (err) {
      killPid(pid);
      throw err;
    }
  }

  async attach(handle: unknown): Promise<QemuMachine | null> {
    const h = QemuHandle.safeParse(handle);
    if (!h.success) return null;
    return QemuMachine.attach(h.data, { log: this.machineLog(path.basename(path.dirname(h.data.logFile ?? '/unknown/x'))) });
  }

  private machineLog(id: string): (msg: string) => void {
    return (msg) => this.opts.log?.(`sprite ${id}: ${msg}`);
  }

  release(id: string): void {
    const sockets = qemuSockets(this.opts.runDir, id);
    for (const s of Object.values(sockets)) fs.rmSync(s, { force: true });
    const prefix = `${path.basename(sockets.qmp).replace(/\.qmp$/, '')}.n-`;
    for (const f of fs.existsSync(this.opts.runDir) ? fs.readdirSync(this.opts.runDir) : []) if (f.startsWith(prefix)) fs.rmSync(path.join(this.opts.runDir, f), { force: true });
  }

  async checks(): Promise<DriverCheck[]> {
    const checks: DriverCheck[] = [];
    const check = async (name: string, fn: () => Promise<string>) => {
      try {
        checks.push({ name, ok: true, detail: await fn() });
      } catch (err) {
        checks.push({ name, ok: false, detail: (err as Error).message });
      }
    };
    await check('qemu', async () => {
      const v = await this.version();
      const [maj, min] = v.split('.').map(Number);
      if (maj < 7 || (maj === 7 && min < 2)) throw new Error(`QEMU ${v} is too old; 7.2 or newer is needed`);
      return `${this.qemuBinary} ${v}`;
    });
    await check('qemu-img', async () => (await execFileP('qemu-img', ['--version'])).stdout.split('\n')[0]);
    await check('qemu-nbd', async () => {
      const { stdout } = await execFileP('qemu-nbd', ['--version']).catch(() => {
        throw new Error('qemu-nbd is missing (it comes with qemu-utils): checkpoints cannot be shown inside sprites');
      });
      return `${stdout.split('\n')[0]}; serves checkpoints to the sprites that mount them`;
    });
    await check('lz4', async () => {
      const { stdout } = await execFileP('lz4', ['--version']).catch(() => {
        throw new Error('lz4 is missing (sudo apt-get install lz4): checkpoints keep their RAM states uncompressed, and compressed ones cannot be restored');
      });
      return `${stdout.trim().split('\n')[0]}; compresses checkpoints' RAM states`;
    });
    await check('zstd', async () => {
      const { stdout } = await execFileP('zstd', ['--version']).catch(() => {
        throw new Error('zstd is missing (sudo apt-get install zstd): RAM states compressed by older versions (.zst) cannot be restored');
      });
      return `${stdout.trim()}; restores RAM states compressed by older versions`;
    });
    await check('network', async () => {
      const binary = netHelperBinary();
      if (!fs.existsSync(binary)) throw new Error(`${missingNetHelper(binary)}; without it sprites of current images do not start`);
      return `${binary}; each sprite's own DNS and TCP, decided by the daemon`;
    });
    await check('egress', async () => {
      const { stdout, stderr } = await execFileP('socat', ['-V']).catch(() => {
        throw new Error('socat is missing (sudo apt-get install socat): without it sprites have no network');
      });
      return `${(stdout || stderr).split('\n').find((l) => /socat version/.test(l))?.trim() ?? 'socat'}; guests reach the network only through the daemon's egress proxy`;
    });
    return checks;
  }
}

function toAccelerator(a: AccelChoice): Accelerator {
  return { name: a.accel, reason: a.reason, emulated: a.accel === 'tcg' };
}
