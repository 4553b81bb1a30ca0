// @vitest-environment jsdom
import { act, cleanup, fireEvent, render, screen } from '@testing-library/react';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { DesktopBridge } from '../platform.ts';
import { createAppStore } from '../store.ts';
import { FakeTransport, sprite } from '../testing/fake-transport.ts';
import { fakeEnv } from '../testing/fake-env.ts';
import { fakeViews } from '../testing/fake-view.ts';
import { App } from './app.tsx';
import { AppContext } from './store-context.tsx';

afterEach(cleanup);

function mount(desktop: DesktopBridge | null = null) {
  const t = new FakeTransport();
  const store = createAppStore({ transport: t });
  const { env } = fakeEnv();
  render(
    <AppContext.Provider value={{ store, createView: fakeViews().factory, env }}>
      <App desktop={desktop} />
    </AppContext.Provider>,
  );
  act(() => t.emit({ type: 'hello', sprites: [sprite('alpha')] }));
  return t;
}

const bridge = (relogin: () => Promise<void>): DesktopBridge => ({ platform: 'linux', version: async () => '1', openExternal: async () => {}, copyText: async () => {}, relogin, onCommand: () => () => {} });

describe('the connection banner', () => {
  it('says when something else answers on the daemon\'s port', () => {
    const t = mount();
    expect(screen.queryByRole('alert')).toBeNull();
    act(() => t.state('not-your-daemon', 'This is not your Spritely daemon: something else answers on 127.0.0.1:4000 (it answered HTTP 404). Nothing was sent to it; waiting for your daemon to come back…'));
    const alert = screen.getByRole('alert');
    expect(alert.querySelector('strong')!.textContent).toBe('This is not your Spritely daemon.');
    expect(alert.textContent).toBe('This is not your Spritely daemon. Something else answers on 127.0.0.1:4000 (it answered HTTP 404). Nothing was sent to it; waiting for your daemon to come back…');
    expect(document.querySelector('.conn-not-your-daemon')).toBeTruthy();
    act(() => t.emit({ type: 'hello', sprites: [sprite('alpha')] }));
    expect(screen.queryByRole('alert')).toBeNull();
  });

  it('says "logged out" in the daemon\'s words; in a browser, nothing to click', () => {
    const t = mount();
    act(() => t.state('logged-out', 'Logged out (`spritely ui --logout-all`, or this login ended). Run `spritely ui` to log in again.'));
    const alert = screen.getByRole('alert');
    expect(alert.textContent).toBe('Logged out (spritely ui --logout-all, or this login ended). Run spritely ui to log in again.');
    expect([...alert.querySelectorAll('code')].map((c) => c.textContent)).toEqual(['spritely ui --logout-all', 'spritely ui']);
    expect(screen.queryByRole('button', { name: 'Log in again' })).toBeNull();
  });

  it('offers "Log in again" in the desktop app, which asks main for a fresh login', () => {
    const relogin = vi.fn(async () => {});
    const t = mount(bridge(relogin));
    act(() => t.state('logged-out', 'Logged out: a login lasts 7 days. Run `spritely ui` to log in again.'));
    fireEvent.click(screen.getByRole('button', { name: 'Log in again' }));
    expect(relogin).toHaveBeenCalledTimes(1);
  });

  it('keeps the plain reconnecting note for a lost connection', () => {
    const t = mount();
    act(() => t.state('offline', 'The connection to the Spritely daemon was lost; reconnecting…'));
    expect(screen.queryByRole('alert')).toBeNull();
    expect(screen.getByText('The connection to the Spritely daemon was lost; reconnecting…')).toBeTruthy();
  });
});
