// @vitest-environment jsdom
import { act, cleanup, fireEvent, screen, waitFor, within } from '@testing-library/react';
import { afterEach, describe, expect, it } from 'vitest';
import type { Config } from '../settings-state.ts';
import { sprite } from '../testing/fake-transport.ts';
import { renderApp } from '../testing/render-app.tsx';
import type { HostStatus } from '../transport.ts';
import { addHostProblem, asksToTrustKey } from './add-host.tsx';
import { asSentence } from './sprite-list.tsx';

afterEach(cleanup);

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

const CONFIG: Config = { idleTimeoutSec: 300, memoryLimitMiB: 19660, memoryLimitDefault: true, memoryLimitDefaultMiB: 19660, warmSpare: false, checkpointMounts: 4, spares: [] };

function mount(opts: { width?: number; methods?: string[] } = {}) {
  const { t, store } = renderApp({ methods: ['hosts.add', 'hosts.remove', ...(opts.methods ?? [])], width: opts.width });
  t.handlers['config.get'] = async () => CONFIG;
  act(() => {
    t.emit({ type: 'hello', sprites: [sprite('dev')] });
    t.emit({ type: 'hosts.changed', hosts: [host('box')] });
    t.emit({ type: 'host.event', host: 'box', event: { type: 'hello', sprites: [sprite('web'), sprite('dev', { state: 'sleeping', startedAt: null })] } });
  });
  return { t, store };
}

const group = (name: string) => screen.getByRole('region', { name: `Sprites on ${name}` });

describe('the list grouped by host', () => {
  it("shows this computer's sprites and each host's, with the host's state and accelerator", () => {
    mount();
    expect(within(group('This computer')).getByText('dev')).toBeTruthy();
    const box = group('box');
    expect(box.querySelector('[data-host-header="box"]')!.textContent).toMatch(/box.*Connected.*KVM/);
    expect(within(box).getByText('web').closest('button')!.getAttribute('data-sprite')).toBe('web@box');
    expect(within(box).getByText('dev').closest('button')!.textContent).toMatch(/Sleeping/);
  });

  it('a host that drops shows its sprites as unreachable with the reason and the retry; it comes back on its own', () => {
    const { t } = mount();
    act(() => t.emit({ type: 'hosts.changed', hosts: [host('box', { state: 'unreachable', reason: 'Host "box" is unreachable: ssh: connect to host box port 22: Connection refused.', retryAt: new Date(Date.now() + 8000).toISOString() })] }));
    const box = group('box');
    expect(box.getAttribute('data-host-state')).toBe('unreachable');
    expect(box.textContent).toMatch(/Unreachable/);
    expect(box.textContent).toMatch(/Connection refused\. Retrying in [78] s\./);
    expect(within(box).getByText('web').closest('button')!.getAttribute('data-state')).toBe('unreachable');
    // the rest of the window works: this computer's sprite is selectable, its actions offered
    fireEvent.click(within(group('This computer')).getByText('dev').closest('button')!);
    expect(document.querySelector('.sprite-header h1')!.textContent).toBe('dev');
    // a remote sprite's page says why and offers no action
    fireEvent.click(within(box).getByText('web').closest('button')!);
    expect(document.querySelector('.sprite-header')!.textContent).toMatch(/on box.*Unreachable/);
    expect(document.querySelector('.host-away')!.textContent).toMatch(/Host box is not connected/);
    expect(document.querySelectorAll('.sprite-actions [data-action]').length).toBe(0);
    act(() => t.emit({ type: 'hosts.changed', hosts: [host('box')] }));
    expect(group('box').getAttribute('data-host-state')).toBe('connected');
    expect(within(group('box')).getByText('web').closest('button')!.getAttribute('data-state')).toBe('running');
  });

  it('creates on a chosen host: the call carries the remote key', async () => {
    const { t } = mount();
    t.handlers['sprites.create'] = ({ name }) => ({ sprite: sprite(name.split('@')[0]), timings: { totalMs: 1 } });
    fireEvent.change(screen.getByLabelText('Name of the new sprite'), { target: { value: 'fresh' } });
    fireEvent.change(screen.getByLabelText('Where to create it'), { target: { value: 'box' } });
    fireEvent.click(screen.getByRole('button', { name: 'Create' }));
    await waitFor(() => expect(t.calls.some((c) => c.method === 'sprites.create')).toBe(true));
    expect(t.calls.find((c) => c.method === 'sprites.create')!.input).toEqual({ name: 'fresh@box' });
    await waitFor(() => expect(within(group('box')).getByText('fresh')).toBeTruthy());
  });

  it('removes a host after a confirmation', async () => {
    const { t } = mount();
    t.handlers['hosts.remove'] = () => ({ ok: true });
    fireEvent.click(screen.getByRole('button', { name: 'Remove host box' }));
    fireEvent.click(screen.getByRole('button', { name: 'Remove box' }));
    await waitFor(() => expect(t.calls.find((c) => c.method === 'hosts.remove')?.input).toEqual({ host: 'box' }));
  });

  it('adds a host; an unknown key is shown, and trusted only by a second, explicit click', async () => {
    const { t } = mount();
    const seen: unknown[] = [];
    t.handlers['hosts.add'] = (input) => {
      seen.push(input);
      if (!input.acceptNewHostKey) throw new Error('The SSH host key of host "gpu" (ssh://me@gpu) is not in your known_hosts; it shows ssh-ed25519 SHA256:abc. Compare … spritely host add gpu ssh://me@gpu --accept-new-host-key');
      return { host: host('gpu'), checks: [{ name: 'qemu', ok: true, detail: '7.2' }], hostKey: 'ssh-ed25519 SHA256:abc', hostKeyAdded: true };
    };
    fireEvent.click(screen.getByText('Add a host…'));
    fireEvent.change(screen.getByLabelText('Host name'), { target: { value: 'gpu' } });
    fireEvent.change(screen.getByLabelText('SSH address'), { target: { value: 'ssh://me@gpu' } });
    fireEvent.click(screen.getByRole('button', { name: 'Add host' }));
    await waitFor(() => expect(screen.getByRole('alert').textContent).toContain('SHA256:abc'));
    expect(seen).toEqual([{ name: 'gpu', url: 'ssh://me@gpu' }]);
    fireEvent.click(screen.getByRole('button', { name: /trust this key and add/ }));
    await waitFor(() => expect(seen.length).toBe(2));
    expect(seen[1]).toEqual({ name: 'gpu', url: 'ssh://me@gpu', acceptNewHostKey: true });
  });

  it('checks the form before asking the daemon', () => {
    expect(addHostProblem('', 'ssh://x', [])).toMatch(/name/);
    expect(addHostProblem('local', 'ssh://x', [])).toMatch(/this computer/);
    expect(addHostProblem('Box!', 'ssh://x', [])).toMatch(/a–z/);
    expect(addHostProblem('box', 'ssh://x', ['box'])).toMatch(/already/);
    expect(addHostProblem('box', 'me@box', [])).toMatch(/ssh:\/\//);
    expect(addHostProblem('box', 'ssh://me@box:2222', [])).toBeNull();
    expect(asksToTrustKey('… is not in your known_hosts; … --accept-new-host-key')).toBe(true);
    expect(asksToTrustKey('is not the one your known_hosts has … --accept-new-host-key')).toBe(false);
    expect([asSentence('the SSH connection ended (ssh ended by signal SIGKILL)'), asSentence('Connection refused.'), asSentence(' gone? ')]).toEqual(['the SSH connection ended (ssh ended by signal SIGKILL).', 'Connection refused.', 'gone?']);
  });
});

const TOOLS = ['sprites.network', 'config.get', 'config.set', 'sprites.usage', 'sprites.sshConfig'];

describe("a remote sprite's header menu", () => {
  it('offers what routes to its host (network, idle timeout) and sends the key; leaves out usage and ssh-config', async () => {
    const { t, store } = mount({ methods: TOOLS });
    t.handlers['sprites.network'] = async ({ name, policy }) => {
      const s = sprite('web', { network: policy });
      t.emit({ type: 'host.event', host: 'box', event: { type: 'sprite.changed', sprite: s } });
      return s;
    };
    t.handlers['config.set'] = async () => ({ ...CONFIG, idleTimeoutSec: 60 }); // the host's own config
    // this computer's sprite has every tool
    fireEvent.click(screen.getByRole('button', { name: 'More for dev' }));
    expect(screen.getAllByRole('menuitem').map((i) => i.textContent)).toEqual(['Network…', 'Idle timeout…', 'Usage…', 'Copy SSH config']);
    fireEvent.keyDown(screen.getAllByRole('menuitem')[0], { key: 'Escape' });
    fireEvent.click(within(group('box')).getByText('web').closest('button')!);
    const header = document.querySelector('.sprite-header') as HTMLElement;
    expect(header.querySelector('h1')!.textContent).toBe('web');
    expect(header.querySelector('.host-chip')!.textContent).toBe('on box');
    fireEvent.click(screen.getByRole('button', { name: 'More for web@box' }));
    expect(screen.getAllByRole('menuitem').map((i) => i.textContent)).toEqual(['Network…', 'Idle timeout…']);
    await act(async () => fireEvent.click(screen.getByRole('menuitem', { name: 'Network…' })));
    const dialog = screen.getByRole('dialog', { name: 'Network of web on box' });
    fireEvent.click(within(dialog).getByLabelText(/Nothing/));
    await act(async () => fireEvent.click(within(dialog).getByRole('button', { name: 'Apply' })));
    expect(t.calls.find((c) => c.method === 'sprites.network')!.input).toEqual({ name: 'web@box', policy: 'none' });
    expect(within(header).getByRole('button', { name: 'network: none' })).toBeTruthy();
    // the idle timeout: the host's default (not this computer's), set by the key
    await waitFor(() => expect(store.getState().config).toEqual(CONFIG));
    fireEvent.click(within(header).getByRole('button', { name: 'sleeps: default' }));
    const idle = screen.getByRole('dialog', { name: 'When web on box sleeps' });
    expect(within(idle).getByText('The daemon-wide setting of host box')).toBeTruthy();
    fireEvent.click(within(idle).getByLabelText(/Never/));
    await act(async () => fireEvent.click(within(idle).getByRole('button', { name: 'Save' })));
    expect(t.calls.find((c) => c.method === 'config.set')!.input).toEqual({ idleTimeoutSec: 0, sprite: 'web@box' });
    expect(store.getState().config).toEqual(CONFIG); // the host's answer did not replace this computer's settings
  });

  it('offers nothing while its host is away', () => {
    const { t } = mount({ methods: TOOLS });
    act(() => t.emit({ type: 'hosts.changed', hosts: [host('box', { state: 'unreachable', reason: 'gone.' })] }));
    fireEvent.click(within(group('box')).getByText('web').closest('button')!);
    expect(screen.queryByRole('button', { name: 'More for web@box' })).toBeNull();
    expect(screen.getByText('network: internet').tagName).toBe('SPAN');
  });
});

describe('a narrow window (820 px) with hosts', () => {
  it('the rail names each sprite with its host and state; the drawer has the grouped list and Add a host', () => {
    const { t } = mount({ width: 820 });
    act(() => t.emit({ type: 'hosts.changed', hosts: [host('box', { state: 'unreachable', reason: 'gone.' })] }));
    const rail = screen.getByRole('navigation', { name: 'Sprites' });
    expect([...rail.querySelectorAll('.rail-sprite')].map((b) => b.getAttribute('aria-label'))).toEqual(['dev: Running', 'dev on box: Unreachable', 'web on box: Unreachable']);
    expect(screen.queryByRole('region', { name: 'Sprites on box' })).toBeNull();
    fireEvent.click(screen.getByRole('button', { name: 'Show the sprite list' }));
    expect(group('box').getAttribute('data-host-state')).toBe('unreachable');
    expect(within(group('This computer')).getByText('dev')).toBeTruthy();
    expect(screen.getByText('Add a host…')).toBeTruthy();
  });
});
