/**
 * Chooses the accelerator. `/dev/kvm` existing proves little: a nested or software KVM module
 * (as on our build machines) can accept the VM and then die with "KVM internal error … emulation
 * failure". So a canary boots the image's kernel with no root disk under the candidate and must
 * reach the kernel's late "VFS … mount root" panic; otherwise TCG it is. The result is cached per
 * host boot, QEMU version and kernel, and always logged with its reason.
 */
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import type { Accel } from './argv.ts';

export interface AccelChoice {
  accel: Accel;
  reason: string;
  checkedAt: string;
  canaryMs?: number;
}

/** The kernel's last words with no root fs: it got through all of its init under the accelerator. */
const CANARY_MARKER = /Kernel panic - not syncing|VFS: Unable to mount root|No working init found/;
const CANARY_FAILURE = /KVM internal error|emulation failure|failed to initialize|Could not access KVM|hvf.*error/i;

export async function runCanary(opts: { qemuBinary: string; accel: 'kvm' | 'hvf'; kernel: string; timeoutMs?: number }): Promise<{ ok: boolean; detail: string; ms: number }> {
  const started = Date.now();
  const argv = [
    '-machine', 'q35', '-accel', opts.accel, '-cpu', 'host', '-m', '256', '-smp', '1',
    '-nodefaults', '-no-user-config', '-display', 'none', '-no-reboot',
    '-kernel', opts.kernel, '-append', 'console=ttyS0 panic=-1 root=/dev/spritely-canary-none',
    '-serial', 'stdio',
  ];
  return new Promise((resolve) => {
    const child = spawn(opts.qemuBinary, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let done = false;
    const finish = (ok: boolean, detail: string) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      child.kill('SIGKILL');
      resolve({ ok, detail, ms: Date.now() - started });
    };
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      if (CANARY_MARKER.test(out)) finish(true, 'canary kernel booted to its root-mount stage');
      else if (CANARY_FAILURE.test(out)) finish(false, (CANARY_FAILURE.exec(out)?.[0] ?? 'failure') + ' during the canary boot');
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('error', (err) => finish(false, err.message));
    child.on('exit', () => finish(CANARY_MARKER.test(out), CANARY_MARKER.test(out) ? 'canary reached its marker' : `QEMU exited early: ${out.trim().split('\n').slice(-2).join(' | ')}`));
    const timer = setTimeout(() => finish(false, `canary did not reach its marker in ${opts.timeoutMs ?? 20_000} ms`), opts.timeoutMs ?? 20_000);
  });
}

function hostBootId(): string {
  try {
    return fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return 'unknown';
  }
}

function kvmUsable(): string | null {
  try {
    fs.accessSync('/dev/kvm', fs.constants.R_OK | fs.constants.W_OK);
    return null;
  } catch (err) {
    return fs.existsSync('/dev/kvm') ? `/dev/kvm is not accessible (${(err as NodeJS.ErrnoException).code}); add yourself to the kvm group` : '/dev/kvm does not exist';
  }
}

export async function chooseAccelerator(opts: {
  qemuBinary: string;
  qemuVersion: string;
  kernel: string;
  cacheFile: string;
  log: (msg: string) => void;
}): Promise<AccelChoice> {
  const forced = process.env.SPRITELY_ACCEL;
  if (forced === 'tcg' || forced === 'kvm' || forced === 'hvf') {
    const choice = { accel: forced, reason: `forced by SPRITELY_ACCEL=${forced}`, checkedAt: new Date().toISOString() } as AccelChoice;
    opts.log(`accelerator: ${choice.accel} (${choice.reason})`);
    return choice;
  }
  const key = crypto
    .createHash('sha256')
    .update(JSON.stringify([hostBootId(), opts.qemuVersion, opts.qemuBinary, fileTag(opts.kernel)]))
    .digest('hex');
  try {
    const cached = JSON.parse(fs.readFileSync(opts.cacheFile, 'utf8'));
    if (cached.key === key) {
      opts.log(`accelerator: ${cached.choice.accel} (${cached.choice.reason}; cached from ${cached.choice.checkedAt})`);
      return cached.choice;
    }
  } catch {
    /* no cache */
  }
  let choice: AccelChoice;
  const candidate: 'kvm' | 'hvf' | null = process.platform === 'darwin' ? 'hvf' : process.platform === 'linux' ? 'kvm' : null;
  const blocked = candidate === 'kvm' ? kvmUsable() : null;
  if (!candidate) {
    choice = { accel: 'tcg', reason: `no hardware accelerator on ${process.platform}`, checkedAt: new Date().toISOString() };
  } else if (blocked) {
    choice = { accel: 'tcg', reason: blocked, checkedAt: new Date().toISOString() };
  } else {
    const canary = await runCanary({ qemuBinary: opts.qemuBinary, accel: candidate, kernel: opts.kernel });
    choice = canary.ok
      ? { accel: candidate, reason: `${candidate} canary passed in ${canary.ms} ms`, checkedAt: new Date().toISOString(), canaryMs: canary.ms }
      : { accel: 'tcg', reason: `${candidate} canary failed (${canary.detail}); using software emulation (TCG), expect ~10x slower guests`, checkedAt: new Date().toISOString(), canaryMs: canary.ms };
  }
  opts.log(`accelerator: ${choice.accel} (${choice.reason})`);
  fs.writeFileSync(opts.cacheFile, JSON.stringify({ key, choice }, null, 2) + '\n', { mode: 0o600 });
  return choice;
}

function fileTag(file: string): string {
  try {
    const st = fs.statSync(file);
    return `${file}:${st.size}:${st.mtimeMs}`;
  } catch {
    return file;
  }
}
