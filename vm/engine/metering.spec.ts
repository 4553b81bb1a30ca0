import { describe, expect, it } from 'vitest';
import type { Manifest } from '../store/sprite-manifest.ts';
import { closeAwakePeriod, usageOf } from './metering.ts';
import { spriteView, stateOf } from './sprite-view.ts';

const T0 = Date.parse('2030-01-01T00:00:00Z');
const m = (over: Partial<Manifest> = {}): Manifest => ({
  version: 1,
  name: 'dev',
  image: 'img',
  createdAt: '2030-01-01T00:00:00.000Z',
  memoryMiB: 512,
  cpus: 1,
  diskGiB: 100,
  hostKeyPub: 'ssh-ed25519 AAAA',
  status: 'running',
  lastError: null,
  fsGrown: true,
  sleep: null,
  idleTimeoutSec: null,
  urlPort: 8080,
  network: { mode: 'internet', allow: [] },
  usage: { awakeSeconds: 100, cpuSeconds: 10, lastActiveAt: '2029-12-31T00:00:00.000Z' },
  ...over,
});

describe('metering', () => {
  it('adds the current awake period to the finished ones', () => {
    const period = { startedAt: new Date(T0).toISOString(), cpuSeconds: 2.26 };
    expect(usageOf(m(), period, 4096, undefined, T0 + 30_400)).toEqual({ awakeSeconds: 130, cpuSeconds: 12.3, diskBytes: 4096, lastActiveAt: '2029-12-31T00:00:00.000Z' });
    expect(usageOf(m(), null, 0, T0, T0 + 30_000)).toEqual({ awakeSeconds: 100, cpuSeconds: 10, diskBytes: 0, lastActiveAt: new Date(T0).toISOString() });
  });

  it('closing a period moves it into the manifest (nothing when nothing was awake)', () => {
    const closed = closeAwakePeriod(m(), { startedAt: new Date(T0).toISOString(), cpuSeconds: 1.5 }, T0 + 5000, T0 + 60_000);
    expect(closed.usage).toEqual({ awakeSeconds: 160, cpuSeconds: 11.5, lastActiveAt: new Date(T0 + 5000).toISOString() });
    expect(closeAwakePeriod(m(), null, T0, T0)).toEqual(m());
  });
});

describe('sprite view', () => {
  it('a running manifest without a machine is crashed; creating shows as stopped', () => {
    expect(stateOf(m(), true)).toBe('running');
    expect(stateOf(m(), false)).toBe('crashed');
    expect(stateOf(m({ status: 'creating' }), true)).toBe('stopped');
    for (const s of ['sleeping', 'stopped', 'crashed'] as const) expect(stateOf(m({ status: s }), false)).toBe(s);
  });

  it('shows the machine of the moment only while it runs', () => {
    const usage = { awakeSeconds: 0, cpuSeconds: 0, diskBytes: 0, lastActiveAt: null };
    const rt = { startedAt: new Date(T0).toISOString(), accel: 'kvm', sshPort: 2222, urlHostPort: 3333, machine: {} };
    expect(spriteView(m(), { runtime: rt, pid: 77 }, null, usage, T0 + 61_000)).toMatchObject({ state: 'running', startedAt: rt.startedAt, uptimeSeconds: 61, accel: 'kvm', pid: 77, sshPort: 2222, network: 'internet' });
    expect(spriteView(m({ status: 'sleeping' }), null, 'waking', usage, T0)).toMatchObject({ state: 'sleeping', operation: 'waking', startedAt: null, uptimeSeconds: null, accel: null, pid: null, sshPort: null });
    expect(spriteView(m({ network: { mode: 'allow', allow: ['a.example'] } }), null, null, usage, T0).network).toBe('allow=a.example');
  });
});
