// @vitest-environment jsdom
import { act, cleanup, fireEvent, screen, waitFor, within } from '@testing-library/react';
import { afterEach, describe, expect, it } from 'vitest';
import type { RefusedDestination } from '../../../vm/api/contract.ts';
import { sprite } from '../testing/fake-transport.ts';
import { renderApp } from '../testing/render-app.tsx';

afterEach(cleanup);

const METHODS = ['sprites.network', 'sprites.netShow', 'config.get', 'checkpoints.list', 'sprites.url'];

function mount(methods = METHODS) {
  const app = renderApp({ methods });
  app.t.handlers['checkpoints.list'] = async () => [];
  app.t.handlers['sprites.url'] = async () => ({ local: 'http://dev.localhost:7780/', port: 8080 });
  act(() => app.t.emit({ type: 'hello', sprites: [sprite('dev', { network: 'allow=example.com' })] }));
  return app;
}

const openDialog = async () => {
  await act(async () => fireEvent.click(screen.getByRole('button', { name: 'network: allow=example.com' })));
  return screen.getByRole('dialog', { name: 'Network of dev' });
};

const row = (over: Partial<RefusedDestination>): RefusedDestination => ({
  at: new Date().toISOString(),
  protocol: 'tcp',
  name: 'github.com',
  address: null,
  port: 443,
  reason: "github.com is not in this sprite's allow list (allow=example.com)",
  count: 1,
  ...over,
});

describe('the network dialog’s refused destinations', () => {
  it('are read when it opens and listed under the policy, newest first, each with its reason', async () => {
    const { t } = mount();
    t.handlers['sprites.netShow'] = async ({ name }) => ({
      name,
      network: 'allow=example.com',
      refused: [row({ count: 3 }), row({ name: null, address: '::1', port: 8080, reason: '::1 is this computer (loopback)' }), row({ protocol: 'dns', name: 'printer.local', port: null, reason: 'printer.local is a name of the local network' })],
    });
    const dialog = await openDialog();
    const list = within(dialog).getByRole('region', { name: 'Refused destinations of dev' });
    await waitFor(() => expect(within(list).getAllByRole('listitem')).toHaveLength(3));
    expect(t.calls.filter((c) => c.method === 'sprites.netShow').map((c) => c.input)).toEqual([{ name: 'dev' }]);
    const items = within(list).getAllByRole('listitem');
    expect(items.map((li) => li.querySelector('code')!.textContent)).toEqual(['github.com:443', '[::1]:8080', 'printer.local']);
    expect(items.map((li) => li.querySelector('.refused-why')!.textContent)).toEqual([
      "github.com is not in this sprite's allow list (allow=example.com)",
      '::1 is this computer (loopback)',
      'printer.local is a name of the local network',
    ]);
    expect(items[0].textContent).toMatch(/tcp · \d\d:\d\d:\d\d · ×3/);
    expect(items[2].textContent).toMatch(/dns · \d\d:\d\d:\d\d(?! ·)/);
    // under the policy: after the choices, before the buttons
    const order = [dialog.querySelector('fieldset.choices'), list, dialog.querySelector('.modal-buttons')];
    expect(order[0]!.compareDocumentPosition(list) & Node.DOCUMENT_POSITION_FOLLOWING).toBeTruthy();
    expect(list.compareDocumentPosition(order[2]!) & Node.DOCUMENT_POSITION_FOLLOWING).toBeTruthy();
  });

  it('Refresh reads again; nothing refused says so; a failure says why and Refresh recovers', async () => {
    const { t } = mount();
    let answer: () => RefusedDestination[] = () => [];
    let fail: string | null = null;
    t.handlers['sprites.netShow'] = async ({ name }) => {
      if (fail) throw new Error(fail);
      return { name, network: 'allow=example.com', refused: answer() };
    };
    const dialog = await openDialog();
    await within(dialog).findByText(/Nothing refused yet/);
    answer = () => [row({})];
    await act(async () => fireEvent.click(within(dialog).getByRole('button', { name: 'Refresh' })));
    await waitFor(() => expect(within(dialog).getByText('github.com:443')).toBeTruthy());
    expect(within(dialog).queryByText(/Nothing refused yet/)).toBeNull();
    fail = 'The daemon is not running.';
    await act(async () => fireEvent.click(within(dialog).getByRole('button', { name: 'Refresh' })));
    await waitFor(() => expect(within(dialog).getByRole('alert').textContent).toBe('Could not read what was refused: The daemon is not running.'));
    fail = null;
    await act(async () => fireEvent.click(within(dialog).getByRole('button', { name: 'Refresh' })));
    await waitFor(() => expect(within(dialog).queryByRole('alert')).toBeNull());
    expect(t.calls.filter((c) => c.method === 'sprites.netShow')).toHaveLength(4);
    // the list is a part of the form that changes nothing: Refresh never applied the policy
    expect(t.calls.some((c) => c.method === 'sprites.network')).toBe(false);
  });

  it('guest text stays text: controls shown as escapes, markup not interpreted', async () => {
    const { t } = mount();
    t.handlers['sprites.netShow'] = async ({ name }) => ({
      name,
      network: 'allow=example.com',
      refused: [row({ name: '<img src=x onerror=alert(1)>\x1b[2J.com', reason: 'bad\u202eevil' })],
    });
    const dialog = await openDialog();
    await waitFor(() => expect(dialog.querySelector('.refused-list code')).not.toBeNull());
    expect(dialog.querySelector('.refused-list code')!.textContent).toBe('<img src=x onerror=alert(1)>\\x1b[2J.com:443');
    expect(dialog.querySelector('.refused-list img')).toBeNull();
    expect(dialog.querySelector('.refused-why')!.textContent).toBe('bad\\u202eevil');
  });

  it('a daemon without the method: no list, the dialog as before', async () => {
    const { t } = mount(METHODS.filter((m) => m !== 'sprites.netShow'));
    const dialog = await openDialog();
    expect(within(dialog).queryByRole('region', { name: /Refused destinations/ })).toBeNull();
    expect(t.calls.some((c) => c.method === 'sprites.netShow')).toBe(false);
  });
});
