// @vitest-environment jsdom
import { act, cleanup, fireEvent, render, screen, waitFor, within } from '@testing-library/react';
import { afterEach, describe, expect, it } from 'vitest';
import { createAppStore } from '../store.ts';
import { FakeTransport, sprite } from '../testing/fake-transport.ts';
import { fakeViews } from '../testing/fake-view.ts';
import type { HostStatus } from '../transport.ts';
import { addHostProblem, asksToTrustKey } from './add-host.tsx';
import { App } from './app.tsx';
import { AppContext } from './store-context.tsx';

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

function mount() {
  const t = new FakeTransport();
  t.methods.add('hosts.add');
  t.methods.add('hosts.remove');
  let n = 0;
  const store = createAppStore({ transport: t, newId: () => `tab-${++n}` });
  const { factory } = fakeViews();
  render(
    <AppContext.Provider value={{ store, createView: factory, env: { openLink: () => {}, copyText: () => {}, readText: async () => '' } }}>
      <App />
    </AppContext.Provider>,
  );
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
  });
});
