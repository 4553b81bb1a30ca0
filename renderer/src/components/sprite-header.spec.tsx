// @vitest-environment jsdom
import { act, cleanup, fireEvent, screen, waitFor, within } from '@testing-library/react';
import { afterEach, describe, expect, it } from 'vitest';
import type { Config } from '../settings-state.ts';
import { sprite } from '../testing/fake-transport.ts';
import { renderApp } from '../testing/render-app.tsx';
import { idleFact } from './sprite-header.tsx';

afterEach(cleanup);

const ALL = ['sprites.network', 'config.get', 'config.set', 'sprites.usage', 'sprites.sshConfig', 'checkpoints.list', 'checkpoints.create', 'checkpoints.restore', 'sprites.url', 'sprites.sleep'];
const CONFIG: Config = { idleTimeoutSec: 300, memoryLimitMiB: 19660, memoryLimitDefault: true, memoryLimitDefaultMiB: 19660, warmSpare: false, checkpointMounts: 4, spares: [] };

function mount(opts: { methods?: string[]; width?: number; copyFails?: string; over?: Parameters<typeof sprite>[1] } = {}) {
  const app = renderApp({ methods: opts.methods ?? ALL, width: opts.width, copyFails: opts.copyFails });
  const { t } = app;
  t.handlers['config.get'] = async () => CONFIG;
  t.handlers['checkpoints.list'] = async () => [];
  t.handlers['sprites.url'] = async () => ({ local: 'http://dev.localhost:7780/', port: 8080 });
  act(() => t.emit({ type: 'hello', sprites: [sprite('dev', opts.over)] }));
  return app;
}

const menu = () => screen.getByRole('button', { name: 'More for dev' });
const openMenuItem = async (name: string) => {
  fireEvent.click(menu());
  await act(async () => fireEvent.click(screen.getByRole('menuitem', { name })));
};

describe('the sprite header’s settings and tools', () => {
  it('offers only what the daemon has', () => {
    mount({ methods: [] });
    expect(screen.queryByRole('button', { name: 'More for dev' })).toBeNull(); // an empty menu is no menu
    expect(screen.getByText('network: internet').tagName).toBe('SPAN'); // a fact, not a button to nowhere
    cleanup();
    mount();
    fireEvent.click(menu());
    expect(screen.getAllByRole('menuitem').map((i) => i.textContent)).toEqual(['Network…', 'Idle timeout…', 'Usage…', 'Copy SSH config']);
  });

  it('the menu: arrows move, Escape closes and hands focus back to its button', () => {
    mount();
    fireEvent.click(menu());
    const items = screen.getAllByRole('menuitem');
    expect(document.activeElement).toBe(items[0]);
    fireEvent.keyDown(items[0], { key: 'ArrowDown' });
    expect(document.activeElement).toBe(items[1]);
    fireEvent.keyDown(items[1], { key: 'ArrowUp' });
    fireEvent.keyDown(items[0], { key: 'ArrowUp' });
    expect(document.activeElement).toBe(items[3]);
    fireEvent.keyDown(items[3], { key: 'Escape' });
    expect(screen.queryByRole('menu')).toBeNull();
    expect(document.activeElement).toBe(menu());
  });

  it('network: the allow list editor, the daemon’s refusal beside it, then applied live', async () => {
    const { t, store } = mount();
    let refuse = true;
    t.handlers['sprites.network'] = async ({ name, policy }) => {
      if (refuse && policy.includes('printer')) throw new Error('"printer" is a single-label name, which only this computer or its network can answer; list the machine\'s IP address instead');
      const s = sprite(name, { network: policy });
      t.emit({ type: 'sprite.changed', sprite: s });
      return s;
    };
    fireEvent.click(screen.getByRole('button', { name: 'network: internet' }));
    const dialog = screen.getByRole('dialog', { name: 'Network of dev' });
    expect((within(dialog).getByLabelText(/Internet/) as HTMLInputElement).checked).toBe(true);
    fireEvent.click(within(dialog).getByLabelText(/Only these/));
    const add = within(dialog).getByLabelText('Add hosts');
    fireEvent.change(add, { target: { value: 'mirror.example.org, *.github.com' } });
    fireEvent.keyDown(add, { key: 'Enter' });
    fireEvent.change(add, { target: { value: 'printer' } });
    fireEvent.click(within(dialog).getByRole('button', { name: 'Add' }));
    expect(within(dialog).getAllByRole('listitem').map((li) => li.querySelector('code')!.textContent)).toEqual(['mirror.example.org', '*.github.com', 'printer']);
    await act(async () => fireEvent.click(within(dialog).getByRole('button', { name: 'Apply' })));
    expect(within(dialog).getByRole('alert').textContent).toMatch(/"printer" is a single-label name/);
    expect(dialog.querySelector('.chip.refused code')?.textContent).toBe('printer');
    expect(store.getState().toasts).toEqual([]); // the refusal is shown beside the list, not as a toast
    fireEvent.click(within(dialog).getByRole('button', { name: 'Remove printer' }));
    expect(within(dialog).queryByRole('alert')).toBeNull();
    await act(async () => fireEvent.click(within(dialog).getByRole('button', { name: 'Apply' })));
    expect(screen.queryByRole('dialog')).toBeNull();
    expect(t.calls.filter((c) => c.method === 'sprites.network').map((c) => c.input)).toEqual([
      { name: 'dev', policy: 'allow=mirror.example.org,*.github.com,printer' },
      { name: 'dev', policy: 'allow=mirror.example.org,*.github.com' },
    ]);
    expect(screen.getByRole('button', { name: 'network: allow=mirror.example.org,*.github.com' })).toBeTruthy();
    expect(screen.getByRole('status').textContent).toMatch(/next connection; nothing restarted/);
    // and back to nothing, keyboard only: the radios and Enter
    fireEvent.click(screen.getByRole('button', { name: /^network:/ }));
    const again = screen.getByRole('dialog', { name: 'Network of dev' });
    fireEvent.click(within(again).getByLabelText(/Nothing/));
    await act(async () => fireEvent.submit(again));
    expect(t.calls.at(-2)).toEqual({ method: 'sprites.network', input: { name: 'dev', policy: 'none' } });
  });

  it('idle timeout: the default, never, or a time of its own, validated like the CLI', async () => {
    const { t } = mount({ over: { idleTimeoutSec: null } });
    const sets: unknown[] = [];
    t.handlers['config.set'] = async (input) => {
      sets.push(input);
      t.emit({ type: 'sprite.changed', sprite: sprite('dev', { idleTimeoutSec: input.idleTimeoutSec }) });
      return CONFIG;
    };
    const fact = await screen.findByRole('button', { name: 'sleeps after 5m (default)' });
    fireEvent.click(fact);
    let dialog = screen.getByRole('dialog', { name: 'When dev sleeps' });
    expect(within(dialog).getByText('Sleeps after 5m (Settings)')).toBeTruthy();
    const own = within(dialog).getByLabelText('Idle time before dev sleeps');
    fireEvent.focus(own);
    fireEvent.change(own, { target: { value: '10 minutes' } });
    expect(within(dialog).getByText('"10 minutes" is not a duration (try 90s, 10m or 1h).')).toBeTruthy();
    expect((within(dialog).getByRole('button', { name: 'Save' }) as HTMLButtonElement).disabled).toBe(true);
    fireEvent.change(own, { target: { value: '1h30m' } });
    await act(async () => fireEvent.click(within(dialog).getByRole('button', { name: 'Save' })));
    expect(screen.getByRole('button', { name: 'sleeps after 1h30m' })).toBeTruthy();
    fireEvent.click(screen.getByRole('button', { name: 'sleeps after 1h30m' }));
    dialog = screen.getByRole('dialog', { name: 'When dev sleeps' });
    expect((within(dialog).getByLabelText('Idle time before dev sleeps') as HTMLInputElement).value).toBe('1h30m');
    fireEvent.click(within(dialog).getByLabelText(/Never/));
    await act(async () => fireEvent.click(within(dialog).getByRole('button', { name: 'Save' })));
    fireEvent.click(screen.getByRole('button', { name: 'never sleeps' }));
    fireEvent.click(within(screen.getByRole('dialog')).getByLabelText(/Use the default/));
    await act(async () => fireEvent.click(within(screen.getByRole('dialog')).getByRole('button', { name: 'Save' })));
    expect(sets).toEqual([
      { idleTimeoutSec: 5400, sprite: 'dev' },
      { idleTimeoutSec: 0, sprite: 'dev' },
      { idleTimeoutSec: null, sprite: 'dev' },
    ]);
    expect(screen.getByRole('button', { name: 'sleeps after 5m (default)' })).toBeTruthy();
  });

  it('usage: awake, CPU, disk and each checkpoint’s RAM and disk', async () => {
    const { t } = mount();
    t.handlers['sprites.usage'] = async () => [{ name: 'dev', state: 'running', awakeSeconds: 3725, cpuSeconds: 754, diskBytes: 1.5 * 2 ** 30, lastActiveAt: null }];
    t.handlers['checkpoints.list'] = async () => [
      { id: 'v1', parent: null, comment: 'clean', createdAt: new Date().toISOString(), auto: false, memory: true, bytes: 0, ramBytes: 300 * 2 ** 20, diskBytes: 20 * 2 ** 20, pauseMs: 1, current: false },
      { id: 'v2', parent: 'v1', comment: '', createdAt: new Date().toISOString(), auto: false, memory: false, bytes: 0, ramBytes: 0, diskBytes: 5 * 2 ** 20, pauseMs: 1, current: true },
    ];
    await openMenuItem('Usage…');
    const dialog = await screen.findByRole('dialog', { name: 'Usage of dev' });
    await waitFor(() => expect(within(dialog).getByText('1h 02m')).toBeTruthy());
    expect(within(dialog).getByText('12m 34s')).toBeTruthy();
    expect(within(dialog).getByText('1.5 GiB')).toBeTruthy();
    const rows = within(within(dialog).getByRole('table')).getAllByRole('row').map((r) => r.textContent);
    expect(rows).toEqual(['CheckpointRAMDisk', 'v1 clean300 MiB20 MiB', 'v2 —5.0 MiB', '2 checkpoints300 MiB25 MiB']);
    fireEvent.click(within(dialog).getByRole('button', { name: 'Close' }));
    expect(document.activeElement).toBe(menu());
  });

  it('copies exactly the block the daemon builds (the one `spritely ssh-config` prints)', async () => {
    const block = '# spritely sprite "dev" (spritely ssh-config dev)\nHost dev\n  User root\n';
    const { t, copied } = mount();
    t.handlers['sprites.sshConfig'] = async ({ name }) => ({ name, config: block });
    await openMenuItem('Copy SSH config');
    await waitFor(() => expect(copied).toEqual([block]));
    expect(screen.getByRole('status').textContent).toMatch(/SSH config for dev copied.*ssh dev/);
  });

  it('says why when the copy or the daemon fails', async () => {
    const { t } = mount({ copyFails: 'Document is not focused.' });
    t.handlers['sprites.sshConfig'] = async ({ name }) => ({ name, config: 'Host dev\n' });
    await openMenuItem('Copy SSH config');
    await waitFor(() => expect(screen.getByRole('alert').textContent).toBe('Could not copy to the clipboard (Document is not focused.).✕'));
    t.handlers['sprites.sshConfig'] = async () => {
      throw new Error('The client key /k/id_ed25519 does not exist yet (the daemon makes it when it starts).');
    };
    await openMenuItem('Copy SSH config');
    await waitFor(() => expect(screen.getAllByRole('alert').map((a) => a.textContent)).toContain('The client key /k/id_ed25519 does not exist yet (the daemon makes it when it starts).✕'));
  });

  it('says which idle timeout is in force', () => {
    expect([idleFact(null, 300), idleFact(null, 0), idleFact(0, 300), idleFact(90, 300), idleFact(null, null)]).toEqual(['sleeps after 5m (default)', 'never sleeps (default)', 'never sleeps', 'sleeps after 1m30s', 'sleeps: default']);
  });
});

describe('a narrow window (820 px)', () => {
  it('keeps every action reachable: Destroy moves into the menu, panels become drawers', async () => {
    const { t } = mount({ width: 820 });
    const header = document.querySelector('.sprite-header') as HTMLElement;
    expect(within(header).queryByRole('button', { name: 'Destroy…' })).toBeNull();
    expect(within(header).getByRole('button', { name: 'Sleep' })).toBeTruthy();
    fireEvent.click(menu());
    expect(screen.getAllByRole('menuitem').map((i) => i.textContent)).toEqual(['Network…', 'Idle timeout…', 'Usage…', 'Copy SSH config', 'Destroy…']);
    expect(screen.getByRole('menuitem', { name: 'Destroy…' }).className).toMatch(/danger.*separated/);
    fireEvent.click(screen.getByRole('menuitem', { name: 'Destroy…' }));
    const dialog = screen.getByRole('dialog', { name: 'Destroy dev?' });
    fireEvent.keyDown(dialog, { key: 'Escape' });
    expect(screen.queryByRole('dialog')).toBeNull();
    expect(document.activeElement).toBe(menu());
    // no panel beside the terminal until asked for; then one, as a drawer
    expect(screen.queryByLabelText('Timeline')).toBeNull();
    await act(async () => fireEvent.click(within(header).getByRole('button', { name: 'Timeline' })));
    expect(screen.getByRole('complementary', { name: 'Timeline' }).className).toMatch(/drawer/);
    expect(screen.queryByRole('complementary', { name: 'URLs' })).toBeNull();
    await act(async () => fireEvent.click(within(header).getByRole('button', { name: 'URLs' })));
    expect(screen.queryByRole('complementary', { name: 'Timeline' })).toBeNull();
    fireEvent.keyDown(screen.getByRole('button', { name: 'Close URLs' }), { key: 'Escape' });
    expect(screen.queryByRole('complementary', { name: 'URLs' })).toBeNull();
    expect(t.calls.some((c) => c.method === 'checkpoints.list')).toBe(true);
  });

  it('at 640 px only the main action stays a button', () => {
    mount({ width: 640 });
    let header = document.querySelector('.sprite-header') as HTMLElement;
    expect(within(header).queryByRole('button', { name: 'Sleep' })).toBeNull();
    fireEvent.click(menu());
    expect(screen.getAllByRole('menuitem').map((i) => i.textContent)).toEqual(['Sleep', 'Stop', 'Network…', 'Idle timeout…', 'Usage…', 'Copy SSH config', 'Destroy…']);
    cleanup();
    mount({ width: 640, over: { state: 'stopped', startedAt: null } });
    header = document.querySelector('.sprite-header') as HTMLElement;
    expect(within(header).getByRole('button', { name: 'Start' })).toBeTruthy();
    expect(within(header).queryByRole('button', { name: 'Destroy…' })).toBeNull();
  });
});
