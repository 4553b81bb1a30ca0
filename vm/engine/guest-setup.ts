/**
 * What the engine does inside a guest, through its control channel (no network needed): give a
 * restored or forked machine its own identity, set the clock of a machine that was restored from
 * a saved moment, grow the filesystem to the disk, and find out why SSH into it keeps failing.
 */
import type { Machine } from '../driver/driver.ts';
import type { GuestControl } from '../guest/guest-control.ts';
import type { KeyPair } from '../ssh/keys.ts';
import { APPLY_IDENTITY, identityPayload, newMachineId } from './identity.ts';

/** Epoch nanoseconds, as apply-identity's `time` wants them. */
export function toNs(epochMs: number): bigint {
  return BigInt(epochMs) * 1_000_000n;
}

/** A new hostname, machine-id, SSH host key (made on the host, pinned by us), authorized key and RNG seed. */
export async function applyIdentity(guest: GuestControl, opts: { name: string; hostKey: KeyPair; authorizedKey: string; nowMs: number }): Promise<void> {
  const applied = await guest.exec(APPLY_IDENTITY, [], {
    stdin: identityPayload({
      hostname: opts.name,
      machineId: newMachineId(),
      hostKey: opts.hostKey.privateKey,
      hostKeyPub: opts.hostKey.publicKey,
      authorizedKeys: opts.authorizedKey,
      timeNs: toNs(opts.nowMs),
    }),
    timeoutMs: 60_000,
  });
  if (applied.exitCode !== 0) throw new Error(`the guest refused its identity (exit ${applied.exitCode}): ${applied.stderr.toString().trim()}`);
}

/**
 * A restored guest's clock is where it was when the state was saved. apply-identity's `time` sets
 * it with `date`; the agent's guest-set-time would also write the RTC (`hwclock -w`, up to 1 s).
 */
export async function setGuestClock(guest: GuestControl, nowMs: number): Promise<void> {
  const r = await guest.exec(APPLY_IDENTITY, [], { stdin: identityPayload({ timeNs: toNs(nowMs) }), timeoutMs: 30_000 });
  if (r.exitCode !== 0) throw new Error(`setting the guest clock failed: ${r.stderr.toString().trim()}`);
}

/** Grows the virtual disk to `bytes` and the guest's filesystem with it (online). */
export async function growDisk(machine: Machine, guest: GuestControl, bytes: number): Promise<void> {
  await machine.resizeDisk(bytes);
  const r = await guest.exec(APPLY_IDENTITY, [], { stdin: identityPayload({ resize: `/dev/vda ${bytes}` }), timeoutMs: 120_000 });
  if (r.exitCode !== 0) throw new Error(`growing the filesystem failed: ${r.stderr.toString().trim()}`);
}

/** Grows the filesystem to the disk after a cold boot of a sprite whose filesystem never was. */
export async function growFilesystem(guest: GuestControl): Promise<void> {
  await guest.exec('/sbin/resize2fs', ['/dev/vda'], { timeoutMs: 120_000 });
}

/** Flushes the guest's caches before the machine is ended without a shutdown (best effort). */
export async function syncGuest(guest: Promise<GuestControl>): Promise<void> {
  try {
    await (await guest).exec('/bin/sync', [], { timeoutMs: 10_000 });
  } catch {
    /* best effort: the hypervisor still flushes its own caches as the machine ends */
  }
}

/**
 * Run in the guest when SSH into it keeps failing: says whether the per-connection sshd socket
 * listens and what the network looks like, and restarts the socket when it is down.
 */
export const SSH_DIAGNOSIS = [
  'state=$(systemctl is-active spritely-sshd.socket)',
  'echo "spritely-sshd.socket: $state"',
  'ip -brief address 2>/dev/null | tr -s " " | tr "\\n" ";"',
  'echo',
  'if [ "$state" != active ]; then',
  '  journalctl -u spritely-sshd.socket -n 5 --no-pager -o cat 2>/dev/null',
  '  systemctl reset-failed spritely-sshd.socket 2>/dev/null',
  '  systemctl restart spritely-sshd.socket && echo "restarted spritely-sshd.socket"',
  'fi',
].join('\n');

/** What the guest says about its SSH server (restarting it when it is down), on one line. */
export async function diagnoseSsh(guest: GuestControl): Promise<string> {
  const r = await guest.exec('/bin/sh', ['-c', SSH_DIAGNOSIS], { timeoutMs: 30_000 });
  return (r.stdout.toString() + r.stderr.toString()).trim().replace(/\s*\n\s*/g, ' | ');
}
