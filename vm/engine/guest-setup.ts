/**
 * What the engine does inside a guest (no network needed): give a restored or forked machine its
 * own identity and set the clock of a machine restored from a saved moment, both through the
 * spritely agent; grow the filesystem to the disk; flush the guest's caches before an abrupt
 * end, and repair a guest agent that stopped answering — those two through qemu-guest-agent,
 * the independent second channel (a checkpoint's flush tries the spritely agent first).
 * What the guest prints is its own choice (root there is untrusted): it reaches an error or the
 * log only through `guestSaid`, inert and bounded.
 */
import crypto from 'node:crypto';
import type { Machine } from '../driver/driver.ts';
import type { AgentClient } from '../guest/agent-client.ts';
import type { IdentityResult } from '../guest/agent-protocol.ts';
import type { GuestControl } from '../guest/guest-control.ts';
import { safeText } from '../safe-text.ts';
import { identityRequest, toNs, type NewIdentity } from './identity.ts';

/** Guest output for a message: terminal controls shown as escapes, one line, at most 500 characters. */
export function guestSaid(output: Buffer | string, maxChars = 500): string {
  return safeText(output.toString().trim(), { maxChars }) || '(nothing)';
}

/** A new hostname, machine-id, SSH host key (made on the host, pinned by us), authorized key, RNG seed and clock; and a bigger filesystem when the disk was grown. */
export async function applyIdentity(agent: AgentClient, id: NewIdentity, timeoutMs = 60_000): Promise<IdentityResult> {
  return agent.identity(identityRequest(id), timeoutMs);
}

/** A restored guest's clock is where it was when the state was saved; fresh randomness too (a restore repeats the RNG's state). */
export async function setGuestClock(agent: AgentClient, nowMs: number, timeoutMs = 30_000): Promise<void> {
  await agent.identity({ timeNs: toNs(nowMs), seed: crypto.randomBytes(32) }, timeoutMs);
}

/** Grows the virtual disk to `bytes` (the guest's filesystem follows with the identity's `resize`). */
export async function growDisk(machine: Machine, bytes: number): Promise<void> {
  await machine.resizeDisk(bytes);
}

/** Grows the filesystem to the disk after a cold boot of a sprite whose filesystem never was. */
export async function growFilesystem(agent: AgentClient, diskBytes: number): Promise<void> {
  await agent.identity({ resize: { device: '/dev/vda', minBytes: diskBytes } }, 240_000);
}

/**
 * Flushes the guest's caches before a checkpoint (best effort): `sync` through the spritely agent
 * when its channel is open (one round trip, ~45 ms under TCG; through qemu-guest-agent, guest-exec
 * and status polling on a link that is often still connecting after a restore, it took 100–300 ms),
 * else — or when it cannot run it — through qemu-guest-agent.
 */
export async function syncGuestQuickly(agent: AgentClient, guest: () => Promise<GuestControl>, timeoutMs = 10_000): Promise<void> {
  if (agent.isReady) {
    try {
      const ch = await agent.exec({ argv: ['/bin/sync'], timeoutMs }, 2_000);
      ch.resume();
      ch.stderr.resume();
      ch.end();
      let timer: NodeJS.Timeout | undefined;
      const r = await Promise.race([ch.done, new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), timeoutMs)))]).finally(() => clearTimeout(timer));
      if (!r) {
        // (a sync that hangs here would hang through the other channel too)
        ch.destroy();
        return;
      }
      if (r.code === 0) return;
    } catch {
      /* the other channel below */
    }
  }
  await syncGuest(guest());
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
 * Run through qemu-guest-agent when the spritely agent does not answer: says what systemd knows
 * of it and restarts it (a guest that stopped, killed or replaced it gets the real one back, as far
 * as its port is free).
 */
export const AGENT_REPAIR = [
  'state=$(systemctl is-active spritely-agent.service)',
  'echo "spritely-agent: $state"',
  'journalctl -u spritely-agent.service -n 3 --no-pager -o cat 2>/dev/null',
  'systemctl reset-failed spritely-agent.service 2>/dev/null',
  'if systemctl restart spritely-agent.service; then echo "restarted spritely-agent"; else echo "could not restart spritely-agent"; fi',
  'sleep 1; echo "now: $(systemctl is-active spritely-agent.service)"',
].join('\n');

/** What the guest says about its agent (restarting it), on one line. */
export async function repairAgent(guest: GuestControl): Promise<string> {
  const r = await guest.exec('/bin/sh', ['-c', AGENT_REPAIR], { timeoutMs: 30_000 });
  return guestSaid((r.stdout.toString() + r.stderr.toString()).trim().replace(/\s*\n\s*/g, ' | '), 2000);
}
