/**
 * A sprite restored from a shared RAM image starts as a copy of the golden machine: same hostname,
 * machine-id, SSH host keys and RNG state. Before anyone sees it, the engine gives it its own in one
 * request to the guest agent (docs/guest-agent.md, IDENTITY: no network, no crypto in the guest).
 * Keys, the machine-id and the RNG seed are made on the host; this module builds the request.
 */
import crypto from 'node:crypto';
import type { AgentIdentity } from '../guest/agent-protocol.ts';
import type { KeyPair } from '../ssh/keys.ts';

export function newMachineId(): string {
  return crypto.randomBytes(16).toString('hex');
}

/** Epoch nanoseconds, as the agent's `timeNs` wants them. */
export function toNs(epochMs: number): bigint {
  return BigInt(Math.round(epochMs)) * 1_000_000n;
}

export interface NewIdentity {
  name: string;
  hostKey: KeyPair;
  /** The installation's SSH client key (for `ssh-config`, scp, VS Code Remote-SSH). */
  authorizedKey: string;
  nowMs: number;
  /** The virtual disk was grown to this many bytes: grow the filesystem with it. */
  diskBytes?: number;
}

/** Everything a new sprite's guest needs to be itself, as one IDENTITY request. */
export function identityRequest(id: NewIdentity, seed: Buffer = crypto.randomBytes(64)): AgentIdentity {
  return {
    hostname: id.name,
    machineId: newMachineId(),
    hostKey: id.hostKey.privateKey,
    hostKeyPub: id.hostKey.publicKey.trim(),
    authorizedKeys: id.authorizedKey.trim() + '\n',
    seed,
    timeNs: toNs(id.nowMs),
    ...(id.diskBytes ? { resize: { device: '/dev/vda', minBytes: id.diskBytes } } : {}),
  };
}
