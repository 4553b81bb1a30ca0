// @vitest-environment jsdom
import { act, cleanup, fireEvent, render, screen, within } from '@testing-library/react';
import { afterEach, describe, expect, it } from 'vitest';
import { createAppStore } from '../store.ts';
import { FakeTransport, MemoryStorage, sprite } from '../testing/fake-transport.ts';
import { fakeEnv } from '../testing/fake-env.ts';
import { fakeViews } from '../testing/fake-view.ts';
import { setWindowWidth } from '../testing/window-width.ts';
import { App } from './app.tsx';
import { AppContext } from './store-context.tsx';

afterEach(cleanup);

function mount(opts: { session?: MemoryStorage } = {}) {
  const t = new FakeTransport();
  let n = 0;
  const store = createAppStore({ transport: t, session: opts.session, newId: () => `tab-${++n}` });
  const { factory, views } = fakeViews();
  const { env } = fakeEnv();
  setWindowWidth(1280);
  render(
    <AppContext.Provider value={{ store, createView: factory, env }}>
      <App />
    </AppContext.Provider>,
  );
  return { t, store, views };
}

describe('App with a fake daemon', () => {
  it('lists sprites with state, image and uptime from the hello event, then live changes', () => {
    const { t } = mount();
    expect(screen.getByText(/Connecting to the daemon/)).toBeTruthy();
    act(() => t.emit({ type: 'hello', sprites: [sprite('alpha'), sprite('beta', { state: 'stopped', startedAt: null }), sprite('gamma', { state: 'crashed', startedAt: null, lastError: 'QEMU exited with code 1' })] }));
    const list = screen.getByRole('list', { name: 'Sprites' });
    const alpha = within(list).getByText('alpha').closest('button')!;
    expect(alpha.textContent).toMatch(/Running/);
    expect(alpha.textContent).toMatch(/debian-12/);
    expect(alpha.textContent).toMatch(/up 2m 0\ds/);
    expect(within(list).getByText('beta').closest('button')!.textContent).toMatch(/Stopped/);
    expect(within(list).getByText('gamma').closest('button')!.textContent).toMatch(/Crashed/);
    act(() => t.emit({ type: 'sprite.changed', sprite: sprite('beta', { state: 'stopped', operation: 'start', startedAt: null }) }));
    expect(within(list).getByText('beta').closest('button')!.textContent).toMatch(/Busy · start/);
    act(() => t.emit({ type: 'sprite.removed', name: 'gamma' }));
    expect(within(list).queryByText('gamma')).toBeNull();
  });

  it("shows a sprite's network policy in its header", () => {
    const { t } = mount();
    act(() => t.emit({ type: 'hello', sprites: [sprite('alpha', { network: 'allow=mirror.example.org,*.github.com' })] }));
    fireEvent.click(within(screen.getByRole('list', { name: 'Sprites' })).getByText('alpha').closest('button')!);
    expect(document.querySelector('.sprite-network')?.textContent).toBe('network: allow=mirror.example.org,*.github.com');
  });

  it('creates a sprite in one click, shows image progress, then opens a terminal on it', async () => {
    const { t, views } = mount();
    act(() => t.emit({ type: 'hello', sprites: [] }));
    const nameInput = screen.getByLabelText('Name of the new sprite') as HTMLInputElement;
    expect(nameInput.value).toMatch(/^[a-z]+-[a-z]+$/);
    fireEvent.change(nameInput, { target: { value: 'my-box' } });
    let finish!: () => void;
    t.handlers['sprites.create'] = ({ name }) =>
      new Promise((resolve) => {
        finish = () => {
          t.emit({ type: 'sprite.changed', sprite: sprite(name) });
          resolve({ sprite: sprite(name), timings: { totalMs: 800 } });
        };
      });
    fireEvent.click(screen.getByRole('button', { name: 'Create' }));
    act(() => t.emit({ type: 'image.progress', image: 'debian-12', phase: 'image', message: 'installing packages', fraction: 0.3 }));
    expect(screen.getAllByText(/Creating/).length).toBeGreaterThan(0);
    expect(screen.getAllByText(/installing packages/).length).toBeGreaterThan(0);
    expect((screen.getByRole('button', { name: 'Create' }) as HTMLButtonElement).disabled).toBe(true);
    await act(async () => finish());
    expect(t.writes[0]).toEqual({ method: 'sprites.create', input: { name: 'my-box' } });
    expect(screen.getByRole('tab', { name: /shell 1/ })).toBeTruthy();
    expect(views).toHaveLength(1);
    expect(t.terminals[0].sprite).toBe('my-box');
    // the terminal works end to end through the link
    act(() => t.terminals[0].server({ type: 'session', session: 'S1', replayed: 0 }));
    act(() => t.terminals[0].output('root@my-box:~# '));
    expect(views[0].written).toBe('root@my-box:~# ');
    views[0].type('echo $((6*7))\r');
    expect(t.terminals[0].input).toBe('echo $((6*7))\r');
    expect(nameInput.value).not.toBe('my-box');
  });

  it("says why a create failed in the daemon's words", async () => {
    const { t } = mount();
    act(() => t.emit({ type: 'hello', sprites: [] }));
    t.handlers['sprites.create'] = async () => {
      throw new Error('No space left on the device holding the data dir.');
    };
    await act(async () => fireEvent.click(screen.getByRole('button', { name: 'Create' })));
    expect(screen.getByRole('alert').textContent).toMatch(/No space left/);
    fireEvent.click(screen.getByRole('button', { name: 'Dismiss' }));
    expect(screen.queryByRole('alert')).toBeNull();
  });

  it('refuses a bad name before asking the daemon', () => {
    const { t } = mount();
    act(() => t.emit({ type: 'hello', sprites: [sprite('taken')] }));
    const input = screen.getByLabelText('Name of the new sprite');
    fireEvent.change(input, { target: { value: 'taken' } });
    expect(screen.getByText(/already exists/)).toBeTruthy();
    fireEvent.change(input, { target: { value: 'bad_name' } });
    fireEvent.click(screen.getByRole('button', { name: 'Create' }));
    expect(t.writes).toEqual([]);
  });

  it('destroy asks for the name to be typed', async () => {
    const { t } = mount();
    act(() => t.emit({ type: 'hello', sprites: [sprite('doomed')] }));
    t.handlers['sprites.destroy'] = async () => ({ ok: true });
    fireEvent.click(screen.getByRole('button', { name: 'Destroy…' }));
    const dialog = screen.getByRole('dialog');
    const confirm = within(dialog).getByRole('button', { name: 'Destroy' }) as HTMLButtonElement;
    expect(confirm.disabled).toBe(true);
    fireEvent.change(within(dialog).getByLabelText(/Type the sprite/), { target: { value: 'doome' } });
    expect(confirm.disabled).toBe(true);
    fireEvent.change(within(dialog).getByLabelText(/Type the sprite/), { target: { value: 'doomed' } });
    await act(async () => fireEvent.click(confirm));
    expect(t.writes).toEqual([{ method: 'sprites.destroy', input: { name: 'doomed' } }]);
    expect(screen.queryByRole('dialog')).toBeNull();
  });

  it('offers Start for a stopped sprite and Stop for a running one, nothing the daemon lacks', async () => {
    const { t } = mount();
    act(() => t.emit({ type: 'hello', sprites: [sprite('a', { state: 'stopped', startedAt: null })] }));
    expect(screen.queryByRole('button', { name: 'Stop' })).toBeNull();
    expect(screen.queryByRole('button', { name: /sleep|wake|checkpoint/i })).toBeNull();
    t.handlers['sprites.start'] = async () => {
      t.emit({ type: 'sprite.changed', sprite: sprite('a') });
      return { sprite: sprite('a'), timings: { totalMs: 1 } };
    };
    await act(async () => fireEvent.click(screen.getAllByRole('button', { name: 'Start' })[0]));
    expect(t.writes).toEqual([{ method: 'sprites.start', input: { name: 'a' } }]);
    expect(screen.getByRole('button', { name: 'Stop' })).toBeTruthy();
  });

  it('keyboard: new terminal, switch tabs, close tab (hanging the shell up)', () => {
    const { t } = mount();
    act(() => t.emit({ type: 'hello', sprites: [sprite('a')] }));
    const key = (code: string, shift = true) => act(() => void fireEvent.keyDown(window, { code, altKey: true, shiftKey: shift }));
    key('KeyT');
    key('KeyT');
    const tabs = () => screen.getAllByRole('tab');
    expect(tabs().map((x) => x.getAttribute('aria-selected'))).toEqual(['false', 'true']);
    key('Digit1', false);
    expect(tabs().map((x) => x.getAttribute('aria-selected'))).toEqual(['true', 'false']);
    key('ArrowRight');
    expect(tabs().map((x) => x.getAttribute('aria-selected'))).toEqual(['false', 'true']);
    key('KeyW');
    expect(tabs()).toHaveLength(1);
    expect(t.terminals[1].hungUp).toBe(true);
    expect(t.terminals[0].hungUp).toBe(false);
  });

  it('re-attaches remembered sessions after a reload', () => {
    const session = new MemoryStorage();
    session.setItem('spritely.layout', JSON.stringify({ tabs: [{ id: 'old', sprite: 'a', session: 'S7', title: 'shell 1' }], activeTab: { a: 'old' }, selected: 'a' }));
    const { t, views } = mount({ session });
    expect(t.terminals).toHaveLength(0);
    act(() => t.emit({ type: 'hello', sprites: [sprite('a')] }));
    expect(t.terminals[0].opts.session).toBe('S7');
    act(() => t.terminals[0].server({ type: 'session', session: 'S7', replayed: 0 }));
    act(() => t.terminals[0].output('earlier output'));
    expect(views[0].written).toBe('earlier output');
  });

  it('shows when the daemon connection is lost', () => {
    const { t } = mount();
    act(() => t.emit({ type: 'hello', sprites: [] }));
    act(() => t.state('offline', 'The connection to the Spritely daemon was lost; reconnecting…'));
    expect(screen.getByText(/connection to the Spritely daemon was lost/)).toBeTruthy();
  });

  it('switches theme: system → light → dark, and terminals follow', () => {
    const { t, views, store } = mount();
    act(() => t.emit({ type: 'hello', sprites: [sprite('a')] }));
    act(() => void store.getState().actions.newTerminal('a'));
    fireEvent.click(screen.getByRole('button', { name: 'Theme: system' }));
    expect(document.documentElement.dataset.theme).toBe('light');
    fireEvent.click(screen.getByRole('button', { name: 'Theme: light' }));
    expect(document.documentElement.dataset.theme).toBe('dark');
    expect(views[0].theme).toBe('dark');
  });
});
