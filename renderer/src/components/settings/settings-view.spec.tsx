// @vitest-environment jsdom
import { act, cleanup, fireEvent, screen, waitFor, within } from '@testing-library/react';
import { afterEach, describe, expect, it } from 'vitest';
import type { Config } from '../../settings-state.ts';
import type { RelayStatus } from '../../store.ts';
import { sprite } from '../../testing/fake-transport.ts';
import { renderApp } from '../../testing/render-app.tsx';

afterEach(cleanup);

const SETTINGS = ['config.get', 'config.set', 'images.list', 'images.build', 'sprites.usage', 'relay.status', 'relay.connect', 'relay.disconnect'];
const OFF: RelayStatus = { configured: false, url: null, status: 'off', reason: null, account: null, published: [] };

function mount(methods = SETTINGS) {
  const app = renderApp({ methods });
  const { t } = app;
  let config: Config = { idleTimeoutSec: 300, memoryLimitMiB: 19660, memoryLimitDefault: true, memoryLimitDefaultMiB: 19660, warmSpare: true, checkpointMounts: 4, spares: [{ image: 'debian-12-5976cd2da0fe', memoryMiB: 512, cpus: 1, state: 'ready', pid: 4242 }] };
  let relay = OFF;
  t.handlers['config.get'] = async () => config;
  t.handlers['config.set'] = async (input) => {
    if (input.idleTimeoutSec !== undefined) config = { ...config, idleTimeoutSec: input.idleTimeoutSec };
    if (input.checkpointMounts !== undefined) config = { ...config, checkpointMounts: input.checkpointMounts };
    if (input.warmSpare !== undefined) config = { ...config, warmSpare: input.warmSpare, spares: input.warmSpare ? config.spares : [] };
    if (input.memoryLimitMiB !== undefined) config = input.memoryLimitMiB ? { ...config, memoryLimitMiB: input.memoryLimitMiB, memoryLimitDefault: false } : { ...config, memoryLimitMiB: 19660, memoryLimitDefault: true };
    return config;
  };
  t.handlers['images.list'] = async () => [{ id: 'debian-12-5976cd2da0fe', createdAt: new Date(Date.now() - 7200_000).toISOString(), sizeBytes: 612 * 2 ** 20, diskVirtualBytes: 4 * 2 ** 30, default: true }];
  t.handlers['sprites.usage'] = async () => [
    { name: 'a', state: 'running', awakeSeconds: 3725, cpuSeconds: 61.5, diskBytes: 700 * 2 ** 20, lastActiveAt: new Date().toISOString() },
    { name: 'b', state: 'sleeping', awakeSeconds: 40, cpuSeconds: 3, diskBytes: 2 * 2 ** 30, lastActiveAt: null },
  ];
  t.handlers['relay.status'] = async () => relay;
  t.handlers['relay.connect'] = async ({ url, token }) => {
    relay = token === 'wrong-token' ? { ...OFF, configured: true, url, status: 'unauthorized', reason: 'unknown token' } : { ...OFF, configured: true, url, status: 'connected', account: 'me' };
    return relay;
  };
  t.handlers['relay.disconnect'] = async () => {
    relay = OFF;
    return { ok: true };
  };
  act(() => t.emit({ type: 'hello', sprites: [sprite('a', { memoryMiB: 2048 }), sprite('b', { state: 'sleeping', memoryMiB: 4096, idleTimeoutSec: 0 })] }));
  return app;
}

async function openSettings() {
  const button = screen.getByRole('button', { name: 'Settings' });
  button.focus();
  await act(async () => fireEvent.click(button));
  return screen.getByRole('region', { name: 'Settings' });
}

const section = (name: string) => screen.getByRole('region', { name });

describe('the settings page', () => {
  it('is offered only by a daemon that has settings, and Escape goes back with focus where it was', async () => {
    mount([]);
    expect(screen.queryByRole('button', { name: 'Settings' })).toBeNull();
    cleanup();
    const { t } = mount();
    const page = await openSettings();
    expect(document.activeElement).toBe(within(page).getByRole('heading', { name: 'Settings' }));
    expect(within(page).getAllByRole('heading', { level: 2 }).map((h) => h.textContent)).toEqual(['Relay', 'Sleep when idle', 'Memory limit', 'Checkpoints inside sprites', 'Images', 'Usage']);
    expect(new Set(t.calls.map((c) => c.method))).toEqual(new Set(['config.get', 'images.list', 'relay.status', 'sprites.usage']));
    fireEvent.keyDown(page, { key: 'Escape' });
    expect(screen.queryByRole('region', { name: 'Settings' })).toBeNull();
    expect(document.activeElement).toBe(screen.getByRole('button', { name: 'Settings' }));
  });

  it('idle timeout: read like the CLI, saved daemon-wide; sprites with their own are named', async () => {
    const { t } = mount();
    await openSettings();
    const idle = section('Sleep when idle');
    await waitFor(() => expect(within(idle).getByText(/Sprites sleep/).textContent).toBe('Sprites sleep after 5m without use, except those with their own setting.'));
    expect(within(idle).getByText('b').closest('li')!.textContent).toMatch(/b sleeps never.*its own setting/);
    const input = within(idle).getByLabelText('Idle timeout') as HTMLInputElement;
    expect(input.value).toBe('5m');
    fireEvent.change(input, { target: { value: '2 hours' } });
    expect(within(idle).getByText('"2 hours" is not a duration (try 90s, 10m or 1h).')).toBeTruthy();
    await act(async () => fireEvent.submit(input.form!));
    expect(t.writes.filter((c) => c.method === 'config.set')).toEqual([]);
    fireEvent.change(input, { target: { value: '2h' } });
    await act(async () => fireEvent.submit(input.form!));
    expect(t.writes.filter((c) => c.method === 'config.set').map((c) => c.input)).toEqual([{ idleTimeoutSec: 7200 }]);
    expect(within(idle).getByText(/Sprites sleep/).textContent).toMatch(/after 2h/);
  });

  it('memory limit: the default, what awake sprites use now (live), and a new limit', async () => {
    const { t } = mount();
    await openSettings();
    const mem = section('Memory limit');
    await waitFor(() => expect(within(mem).getByText(/Limit/).textContent).toBe('Limit 19.2 GiB (the default: 80% of this computer’s RAM) · awake now 2 GiB in 1 sprite'));
    act(() => t.emit({ type: 'sprite.changed', sprite: sprite('b', { memoryMiB: 4096 }) }));
    expect(within(mem).getByText(/Limit/).textContent).toMatch(/awake now 6 GiB in 2 sprites/);
    expect(within(mem).getByRole('meter').getAttribute('aria-valuenow')).toBe('6144');
    const input = within(mem).getByLabelText('Memory limit') as HTMLInputElement;
    expect(input.value).toBe('default');
    fireEvent.change(input, { target: { value: '100M' } });
    expect(within(mem).getByText('"100M" is below 256 MiB, too small for any sprite')).toBeTruthy();
    fireEvent.change(input, { target: { value: '12G' } });
    await act(async () => fireEvent.submit(input.form!));
    expect(t.calls.at(-1)).toEqual({ method: 'config.set', input: { memoryLimitMiB: 12288 } });
    expect(within(mem).getByText(/Limit/).textContent).toMatch(/^Limit 12 GiB \(the default would be 19.2 GiB\)/);
    expect(input.value).toBe('12G');
  });

  it('warm spare: on with what waits now, turned off like `spritely config set warm-spare off`', async () => {
    const { t } = mount();
    await openSettings();
    const mem = section('Memory limit');
    const box = (await within(mem).findByLabelText('Keep a warm spare')) as HTMLInputElement;
    expect(box.checked).toBe(true);
    expect(within(mem).getByText(/Waiting now/).textContent).toMatch(/Waiting now: 512 MiB, 1 CPU \(ready\)\.$/);
    await act(async () => fireEvent.click(box));
    expect(t.calls.at(-1)).toEqual({ method: 'config.set', input: { warmSpare: false } });
    expect(box.checked).toBe(false);
    expect(within(mem).getByText(/None waiting now/)).toBeTruthy();
  });

  it('checkpoints inside sprites: how many may be mounted at once, checked before it is sent', async () => {
    const { t } = mount();
    await openSettings();
    const sec = section('Checkpoints inside sprites');
    const input = (await within(sec).findByLabelText('Mounted at once')) as HTMLInputElement;
    await waitFor(() => expect(input.value).toBe('4'));
    fireEvent.change(input, { target: { value: '40' } });
    await act(async () => fireEvent.submit(input.form!));
    expect(within(sec).getByText('"40" is not a number from 1 to 16.')).toBeTruthy();
    expect(t.writes.filter((c) => c.method === 'config.set')).toEqual([]);
    fireEvent.change(input, { target: { value: '2' } });
    await act(async () => fireEvent.submit(input.form!));
    expect(t.calls.at(-1)).toEqual({ method: 'config.set', input: { checkpointMounts: 2 } });
    expect(input.value).toBe('2');
  });

  it('images: the list, and a build that shows the daemon’s progress as it goes', async () => {
    const { t } = mount();
    await openSettings();
    const images = section('Images');
    const row = await within(images).findByText('debian-12-5976cd2da0fe');
    expect(row.closest('tr')!.textContent).toMatch(/612 MiB.*yes.*2 h ago/);
    let finish!: () => void;
    t.handlers['images.build'] = () => new Promise((resolve) => (finish = () => resolve({ id: 'x', createdAt: '', sizeBytes: 0, diskVirtualBytes: 0, default: true })));
    fireEvent.click(within(images).getByRole('button', { name: 'Check the default image' }));
    act(() => t.emit({ type: 'image.progress', image: 'debian-12', phase: 'image', message: 'installing packages', fraction: 0.4 }));
    expect(within(images).getByRole('status').textContent).toBe('image: installing packages');
    expect((within(images).getByRole('button', { name: 'Rebuild…' }) as HTMLButtonElement).disabled).toBe(true);
    await act(async () => finish());
    expect(within(images).queryByRole('status')).toBeNull();
    expect(t.calls.filter((c) => c.method === 'images.build').map((c) => c.input)).toEqual([{}]);
    // a rebuild is asked for first
    fireEvent.click(within(images).getByRole('button', { name: 'Rebuild…' }));
    t.handlers['images.build'] = async () => ({ id: 'x', createdAt: '', sizeBytes: 0, diskVirtualBytes: 0, default: true });
    await act(async () => fireEvent.click(within(screen.getByRole('dialog')).getByRole('button', { name: 'Rebuild' })));
    expect(t.calls.filter((c) => c.method === 'images.build').map((c) => c.input)).toEqual([{}, { force: true }]);
  });

  it('usage: one row per sprite, like `spritely usage`', async () => {
    mount();
    await openSettings();
    const table = await within(section('Usage')).findByRole('table', { name: 'Usage' });
    expect(within(table).getAllByRole('row').map((r) => r.textContent)).toEqual(['SpriteStateAwakeCPUDiskLast active', 'arunning1h 02m1m 02s700 MiBjust now', 'bsleeping40s3s2.0 GiB—']);
  });

  it('relay: connects with a token in a password field and a CA file read as text, then disconnects after a confirm', async () => {
    const { t } = mount();
    await openSettings();
    const relay = section('Relay');
    const form = await within(relay).findByRole('form', { name: 'Connect a relay' });
    const token = within(form).getByLabelText('Tunnel token') as HTMLInputElement;
    expect(token.type).toBe('password');
    fireEvent.change(within(form).getByLabelText('Relay URL'), { target: { value: 'https://relay.example' } });
    fireEvent.change(token, { target: { value: 'short' } });
    await act(async () => fireEvent.submit(form));
    expect(within(form).getByRole('alert').textContent).toMatch(/8 characters or more/);
    const pem = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
    const file = new File([pem], 'ca.pem', { type: 'application/x-pem-file' });
    await act(async () => fireEvent.change(within(form).getByLabelText(/CA certificate/), { target: { files: [file] } }));
    await waitFor(() => expect(within(form).getByRole('button', { name: 'Remove ca.pem' })).toBeTruthy());
    fireEvent.change(token, { target: { value: 'wrong-token' } });
    await act(async () => fireEvent.submit(form));
    expect(screen.getByRole('alert').textContent).toMatch(/The relay refused the token \(unknown token\)/);
    expect(within(relay).getByText('relay refused the token')).toBeTruthy();
    fireEvent.click(within(relay).getByRole('button', { name: 'Use another relay or token…' }));
    const again = within(relay).getByRole('form', { name: 'Connect a relay' });
    fireEvent.change(within(again).getByLabelText('Relay URL'), { target: { value: 'https://relay.example' } });
    fireEvent.change(within(again).getByLabelText('Tunnel token'), { target: { value: 'a-good-token' } });
    await act(async () => fireEvent.submit(again));
    expect(t.calls.filter((c) => c.method === 'relay.connect').map((c) => c.input)).toEqual([
      { url: 'https://relay.example', token: 'wrong-token', ca: pem },
      { url: 'https://relay.example', token: 'a-good-token' },
    ]);
    expect(within(relay).getByText('relay connected')).toBeTruthy();
    expect(within(relay).queryByRole('form')).toBeNull();
    // the token never lands in the page's storage
    expect(JSON.stringify({ ...sessionStorage })).not.toMatch(/good-token/);
    expect(JSON.stringify({ ...localStorage })).not.toMatch(/good-token/);
    // live: the daemon's announcements move the state
    act(() => t.emit({ type: 'relay.changed', relay: { ...OFF, configured: true, url: 'https://relay.example', status: 'backoff', reason: 'connect ECONNREFUSED' } }));
    expect(within(relay).getByText('relay unreachable, retrying…')).toBeTruthy();
    expect(within(relay).getByText(/ECONNREFUSED/)).toBeTruthy();
    fireEvent.click(within(relay).getByRole('button', { name: 'Disconnect…' }));
    const confirm = screen.getByRole('dialog', { name: 'Disconnect the relay?' });
    fireEvent.keyDown(confirm, { key: 'Escape' });
    expect(screen.getByRole('region', { name: 'Settings' })).toBeTruthy(); // Escape closed the dialog only
    expect(t.calls.some((c) => c.method === 'relay.disconnect')).toBe(false);
    fireEvent.click(within(relay).getByRole('button', { name: 'Disconnect…' }));
    await act(async () => fireEvent.click(within(screen.getByRole('dialog')).getByRole('button', { name: 'Disconnect' })));
    expect(t.calls.some((c) => c.method === 'relay.disconnect')).toBe(true);
    expect(await within(relay).findByRole('form', { name: 'Connect a relay' })).toBeTruthy();
  });

  it('refuses a CA file that is not a PEM certificate', async () => {
    mount();
    await openSettings();
    const form = await within(section('Relay')).findByRole('form', { name: 'Connect a relay' });
    await act(async () => fireEvent.change(within(form).getByLabelText(/CA certificate/), { target: { files: [new File(['hello'], 'notes.txt')] } }));
    await waitFor(() => expect(within(form).getByRole('alert').textContent).toBe('notes.txt is not a PEM certificate (it has no "BEGIN CERTIFICATE" line).'));
  });
});
