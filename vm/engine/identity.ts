/**
 * A sprite restored from a shared RAM image starts as a copy of the golden machine: same hostname,
 * machine-id, SSH host keys and RNG state. Before anyone sees it, the engine gives it its own, by
 * piping one payload into the image's `/usr/lib/spritely/apply-identity` through the guest agent
 * (one round trip; no network, no crypto in the guest). Keys are made on the host.
 */
import crypto from 'node:crypto';

export const APPLY_IDENTITY = '/usr/lib/spritely/apply-identity';

export interface Identity {
  hostname?: string;
  machineId?: string;
  hostKey?: string;
  hostKeyPub?: string;
  authorizedKeys?: string;
  /** Block device whose filesystem should grow to the disk's size, if any. */
  resize?: string;
  timeNs?: bigint;
}

export function newMachineId(): string {
  return crypto.randomBytes(16).toString('hex');
}

/** The `KEY BASE64` lines apply-identity reads on stdin. */
export function identityPayload(id: Identity, seed: Buffer = crypto.randomBytes(64)): string {
  const b64 = (s: string | Buffer) => Buffer.from(s).toString('base64');
  const lines: [string, string][] = [];
  if (id.hostname !== undefined) lines.push(['hostname', b64(id.hostname)]);
  if (id.machineId !== undefined) lines.push(['machine_id', b64(id.machineId)]);
  if (id.hostKey !== undefined) lines.push(['host_key', b64(id.hostKey)]);
  if (id.hostKeyPub !== undefined) lines.push(['host_key_pub', b64(id.hostKeyPub.trim() + '\n')]);
  if (id.authorizedKeys !== undefined) lines.push(['authorized_keys', b64(id.authorizedKeys.trim() + '\n')]);
  lines.push(['seed', b64(seed)]);
  if (id.resize) lines.push(['resize', b64(id.resize)]);
  if (id.timeNs !== undefined) lines.push(['time', b64(String(id.timeNs))]);
  return lines.map(([k, v]) => `${k} ${v}`).join('\n') + '\n';
}
