/**
 * A sprite as clients see it (the API's `Sprite`): the manifest's durable facts, the machine of
 * the moment if it is awake, what the engine is doing to it, and its usage. Pure.
 */
import { formatNetworkPolicy } from '../net/egress-policy.ts';
import type { Manifest, Runtime } from '../store/sprite-manifest.ts';
import type { SpriteUsage } from './metering.ts';

export type SpriteState = 'running' | 'sleeping' | 'stopped' | 'crashed';

export interface SpriteView {
  name: string;
  state: SpriteState;
  /** What the engine is doing to it right now (creating, starting, stopping, …), or null. */
  operation: string | null;
  image: string;
  createdAt: string;
  startedAt: string | null;
  uptimeSeconds: number | null;
  memoryMiB: number;
  cpus: number;
  diskGiB: number;
  accel: string | null;
  pid: number | null;
  sshPort: number | null;
  lastError: string | null;
  urlPort: number;
  idleTimeoutSec: number | null;
  /** `internet`, `none` or `allow=HOST,…` (see vm/net/egress-policy.ts). */
  network: string;
  usage: SpriteUsage;
}

/** The machine that runs the sprite now, as far as a view needs it. */
export interface AwakeMachine {
  runtime: Runtime;
  pid: number | null;
}

/** A manifest that says running without a machine is a crash the engine has not recorded yet. */
export function stateOf(m: Manifest, awake: boolean): SpriteState {
  if (m.status === 'running') return awake ? 'running' : 'crashed';
  return m.status === 'creating' ? 'stopped' : m.status;
}

export function spriteView(m: Manifest, machine: AwakeMachine | null, operation: string | null, usage: SpriteUsage, now: number): SpriteView {
  const running = m.status === 'running' && machine !== null;
  const rt = running ? machine.runtime : null;
  const startedAt = rt ? rt.startedAt : null;
  return {
    name: m.name,
    state: stateOf(m, machine !== null),
    operation,
    image: m.image,
    createdAt: m.createdAt,
    startedAt,
    uptimeSeconds: startedAt ? Math.round((now - Date.parse(startedAt)) / 1000) : null,
    memoryMiB: m.memoryMiB,
    cpus: m.cpus,
    diskGiB: m.diskGiB,
    accel: rt ? rt.accel : null,
    pid: running ? machine.pid : null,
    sshPort: rt ? rt.sshPort : null,
    lastError: m.lastError,
    urlPort: m.urlPort,
    idleTimeoutSec: m.idleTimeoutSec,
    network: formatNetworkPolicy(m.network),
    usage,
  };
}
