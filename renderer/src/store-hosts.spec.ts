import { describe, expect, it } from 'vitest';
import { FakeTransport, sprite } from './testing/fake-transport.ts';
import { applyEvent, createAppStore, initialState, openTab, pickForCompare, spriteGroups, unreachableHost, type UiState } from './store.ts';
import type { HostStatus } from './transport.ts';

const host = (name: string, over: Partial<HostStatus> = {}): HostStatus => ({
  name,
  url: `ssh://me@${name}`,
  state: 'connected',
  reason: null,
  retryAt: null,
  since: '2026-11-30T00:00:00.000Z',
  version: '0.1.0',
  accel: 'kvm',
  accelReason: 'canary ok',
  qemuVersion: '7.2.22',
  sshPid: 42,
  ...over,
});

function world(): UiState {
  let s = applyEvent(initialState, { type: 'hello', sprites: [sprite('dev')] });
  s = applyEvent(s, { type: 'hosts.changed', hosts: [host('box'), host('gpu')] });
  s = applyEvent(s, { type: 'host.event', host: 'box', event: { type: 'hello', sprites: [sprite('dev'), sprite('web')] } });
  return s;
}

describe('remote hosts in the store', () => {
  it('keys a host\'s sprites NAME@HOST: the same name on two machines is two sprites', () => {
    const s = world();
    expect(Object.keys(s.sprites).sort()).toEqual(['dev', 'dev@box', 'web@box']);
    expect(s.sprites['web@box'].name).toBe('web');
  });

  it('each machine\'s hello replaces only that machine\'s sprites', () => {
    let s = world();
    s = applyEvent(s, { type: 'hello', sprites: [] });
    expect(Object.keys(s.sprites).sort()).toEqual(['dev@box', 'web@box']);
    s = applyEvent(s, { type: 'host.event', host: 'box', event: { type: 'hello', sprites: [sprite('web')] } });
    expect(Object.keys(s.sprites)).toEqual(['web@box']);
  });

  it('a host\'s changes, removals and checkpoints land on its keys', () => {
    let s = world();
    s = applyEvent(s, { type: 'host.event', host: 'box', event: { type: 'sprite.changed', sprite: sprite('web', { state: 'sleeping' }) } });
    expect(s.sprites['web@box'].state).toBe('sleeping');
    expect(s.sprites.dev.state).toBe('running');
    s = applyEvent(s, { type: 'host.event', host: 'box', event: { type: 'checkpoints.changed', name: 'web', checkpoints: [] } });
    expect(s.checkpoints['web@box']).toEqual([]);
    s = openTab(s, 'dev@box', 't1');
    s = applyEvent(s, { type: 'host.event', host: 'box', event: { type: 'sprite.removed', name: 'dev' } });
    expect(s.sprites['dev@box']).toBeUndefined();
    expect(s.tabs).toEqual([]);
    expect(s.sprites.dev).toBeDefined();
  });

  it('a remote sprite\'s comparison goes with it (removed there, or its host removed); the same name here keeps its own', () => {
    let s = world();
    const cps = [{ id: 'v1' }, { id: 'v2' }] as never;
    s = { ...s, checkpoints: { dev: cps, 'dev@box': cps, 'web@box': cps } };
    for (const k of ['dev', 'dev@box', 'web@box']) s = pickForCompare(s, k, 'v1');
    expect(Object.keys(s.compare).sort()).toEqual(['dev', 'dev@box', 'web@box']);
    s = applyEvent(s, { type: 'host.event', host: 'box', event: { type: 'sprite.removed', name: 'dev' } });
    expect(Object.keys(s.compare).sort()).toEqual(['dev', 'web@box']);
    s = applyEvent(s, { type: 'hosts.changed', hosts: [host('gpu')] });
    expect(Object.keys(s.compare)).toEqual(['dev']);
  });

  it('a host\'s relay and hosts events stay its own', () => {
    const s = world();
    const relay = { configured: true, url: 'https://r', status: 'connected' as const, reason: null, account: null, published: [] };
    expect(applyEvent(s, { type: 'host.event', host: 'box', event: { type: 'relay.changed', relay } }).relay).toBeNull();
    expect(applyEvent(s, { type: 'host.event', host: 'box', event: { type: 'hosts.changed', hosts: [] } }).hosts.length).toBe(2);
  });

  it('an unreachable host keeps its last known sprites (shown as such); a removed host takes them and their tabs along', () => {
    let s = openTab(world(), 'web@box', 't1');
    s = applyEvent(s, { type: 'hosts.changed', hosts: [host('box', { state: 'unreachable', reason: 'ssh: Connection refused', retryAt: '2026-11-30T00:00:10.000Z' }), host('gpu')] });
    expect(s.sprites['web@box']).toBeDefined();
    expect(unreachableHost(s, 'web@box')?.reason).toBe('ssh: Connection refused');
    expect(unreachableHost(s, 'dev')).toBeNull();
    s = applyEvent(s, { type: 'hosts.changed', hosts: [host('gpu')] });
    expect(Object.keys(s.sprites)).toEqual(['dev']);
    expect(s.tabs).toEqual([]);
    expect(unreachableHost(s, 'web@box')?.reason).toMatch(/no longer configured/);
  });

  it('groups the list: this computer first, then each host, names sorted', () => {
    const groups = spriteGroups(world());
    expect(groups.map((g) => [g.host?.name ?? 'local', g.keys])).toEqual([
      ['local', ['dev']],
      ['box', ['dev@box', 'web@box']],
      ['gpu', []],
    ]);
  });

  it('actions on a remote sprite are calls with its key (the transport routes them); a fork stays on its host', async () => {
    const t = new FakeTransport();
    t.methods.add('sprites.fork');
    t.handlers['sprites.fork'] = () => ({ sprite: sprite('copy'), timings: { totalMs: 1 } });
    t.handlers['sprites.get'] = () => sprite('copy');
    t.methods.add('sprites.get');
    const store = createAppStore({ transport: t, newId: () => 'tab-1' });
    await store.getState().actions.forkSprite('web@box', 'v1', 'copy');
    expect(t.calls.find((c) => c.method === 'sprites.fork')?.input).toEqual({ name: 'web@box', checkpoint: 'v1', newName: 'copy@box' });
    expect(store.getState().tabs.map((x) => x.sprite)).toEqual(['copy@box']);
  });

  it('host add: a refusal is returned as the daemon\'s sentence (the form shows it), success as a toast', async () => {
    const t = new FakeTransport();
    t.methods.add('hosts.add');
    t.handlers['hosts.add'] = (input: { acceptNewHostKey?: boolean }) => {
      if (!input.acceptNewHostKey) throw new Error('The SSH host key of host "box" is not in your known_hosts; it shows ssh-ed25519 SHA256:abc.');
      return { host: host('box'), checks: [{ name: 'qemu', ok: true, detail: 'qemu 7.2' }], hostKey: 'ssh-ed25519 SHA256:abc', hostKeyAdded: true };
    };
    const store = createAppStore({ transport: t });
    const refused = await store.getState().actions.addHost({ name: 'box', url: 'ssh://me@box' });
    expect(refused).toEqual({ ok: false, message: expect.stringContaining('SHA256:abc') });
    expect(store.getState().toasts).toEqual([]);
    const added = await store.getState().actions.addHost({ name: 'box', url: 'ssh://me@box', acceptNewHostKey: true });
    expect(added.ok).toBe(true);
    expect(store.getState().toasts[0].message).toContain('Added host box: qemu ok');
  });
});
