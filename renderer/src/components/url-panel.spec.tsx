// @vitest-environment jsdom
import { act, cleanup, fireEvent, render, screen } from '@testing-library/react';
import { afterEach, describe, expect, it } from 'vitest';
import { createAppStore } from '../store.ts';
import { FakeTransport, sprite } from '../testing/fake-transport.ts';
import { fakeEnv } from '../testing/fake-env.ts';
import { fakeViews } from '../testing/fake-view.ts';
import { setWindowWidth } from '../testing/window-width.ts';
import { App } from './app.tsx';
import { AppContext } from './store-context.tsx';

afterEach(cleanup);

function mount(methods: string[]) {
  const t = new FakeTransport();
  for (const m of methods) t.methods.add(m);
  const { env, copied, opened } = fakeEnv();
  let published: { name: string; url: string; auth: 'sprite' | 'public' }[] = [];
  t.handlers['sprites.url'] = async () => ({ local: 'http://a.localhost:7780/', port: 8080 });
  t.handlers['relay.status'] = async () => ({ configured: true, url: 'https://relay.example', status: 'connected', reason: null, account: 'me', published });
  t.handlers['sprites.publish'] = async (input: any) => {
    if (input.off) {
      published = [];
      return { name: 'a', url: null, auth: null, accessToken: null, live: false };
    }
    published = [{ name: 'a', url: 'https://a-x1.relay.example/', auth: input.auth }];
    return { name: 'a', url: 'https://a-x1.relay.example/', auth: input.auth, accessToken: input.auth === 'sprite' ? 'tok123' : null, live: true };
  };
  t.handlers['sprites.share'] = async () => ({ link: 'https://a-x1.relay.example/?spritely_share=s', expiresAt: new Date().toISOString() });
  const store = createAppStore({ transport: t, newId: () => `tab-${Math.random()}` });
  const { factory } = fakeViews();
  setWindowWidth(1280);
  render(
    <AppContext.Provider value={{ store, createView: factory, env }}>
      <App />
    </AppContext.Provider>,
  );
  return { t, copied, opened };
}

describe('URL panel', () => {
  it('is absent while the daemon has no URLs', async () => {
    const { t } = mount([]);
    await act(async () => t.emit({ type: 'hello', sprites: [sprite('a')] }));
    expect(screen.queryByLabelText('URLs')).toBeNull();
  });

  it('shows the local URL with copy and open', async () => {
    const { t, copied, opened } = mount(['sprites.url']);
    await act(async () => t.emit({ type: 'hello', sprites: [sprite('a')] }));
    const link = await screen.findByText('http://a.localhost:7780/');
    fireEvent.click(link);
    expect(opened).toEqual(['http://a.localhost:7780/']);
    fireEvent.click(screen.getByRole('button', { name: 'Copy' }));
    expect(copied).toEqual(['http://a.localhost:7780/']);
    expect(screen.queryByText(/Publish/)).toBeNull();
  });

  it('publishes privately (showing the access token), makes public, shares, unpublishes', async () => {
    const { t } = mount(['sprites.url', 'relay.status', 'sprites.publish', 'sprites.share']);
    await act(async () => t.emit({ type: 'hello', sprites: [sprite('a')] }));
    await act(async () => fireEvent.click(await screen.findByRole('button', { name: 'Publish (private)' })));
    expect(await screen.findByText('https://a-x1.relay.example/')).toBeTruthy();
    expect(screen.getByText('tok123')).toBeTruthy();
    await act(async () => fireEvent.click(screen.getByRole('button', { name: 'Share for 1 h' })));
    expect(await screen.findByText('https://a-x1.relay.example/?spritely_share=s')).toBeTruthy();
    await act(async () => fireEvent.click(screen.getByRole('button', { name: 'Make public' })));
    expect(await screen.findByText('Anyone with the URL can open it.')).toBeTruthy();
    expect(screen.queryByText('tok123')).toBeNull(); // the token matters only while private
    await act(async () => fireEvent.click(screen.getByRole('button', { name: 'Unpublish' })));
    expect(await screen.findByText('not published')).toBeTruthy();
    expect(t.calls.filter((c) => c.method === 'sprites.publish').map((c) => c.input)).toEqual([
      { name: 'a', auth: 'sprite' },
      { name: 'a', auth: 'public' },
      { name: 'a', off: true },
    ]);
  });

  it("follows the tunnel's state as the daemon announces it (no reload, no polling)", async () => {
    const { t } = mount(['sprites.url', 'relay.status', 'sprites.publish']);
    await act(async () => t.emit({ type: 'hello', sprites: [sprite('a')] }));
    expect(await screen.findByText('relay connected')).toBeTruthy();
    const status = { configured: true, url: 'https://relay.example', account: 'me', published: [{ name: 'a', url: 'https://a-x1.relay.example/', auth: 'public' as const }] };
    await act(async () => t.emit({ type: 'relay.changed', relay: { ...status, status: 'backoff', reason: 'connection to the relay closed' } }));
    const state = await screen.findByText('relay unreachable, retrying…');
    expect(state.getAttribute('title')).toBe('connection to the relay closed');
    expect(screen.getByText(/connection to the relay closed/)).toBeTruthy();
    expect(screen.getByText('https://a-x1.relay.example/')).toBeTruthy();
    await act(async () => t.emit({ type: 'relay.changed', relay: { ...status, status: 'connected', reason: null } }));
    expect(await screen.findByText('relay connected')).toBeTruthy();
    expect(screen.queryByText(/connection to the relay closed/)).toBeNull();
    await act(async () => t.emit({ type: 'relay.changed', relay: { ...status, status: 'unauthorized', reason: 'tunnel token revoked' } }));
    expect(await screen.findByText('relay refused the token')).toBeTruthy();
    expect(screen.getByText(/tunnel token revoked/)).toBeTruthy();
    expect(t.calls.filter((c) => c.method === 'relay.status')).toHaveLength(1);
  });

  it('connects a relay from the panel when none is: URL, a password field for the token, then the public URL offer', async () => {
    const { t } = mount(['sprites.url', 'relay.status', 'sprites.publish', 'relay.connect', 'relay.disconnect']);
    const off = { configured: false, url: null, status: 'off' as const, reason: null, account: null, published: [] };
    t.handlers['relay.status'] = async () => off;
    t.handlers['relay.connect'] = async ({ url }: any) => ({ ...off, configured: true, url, status: 'connected' as const, account: 'me' });
    await act(async () => t.emit({ type: 'hello', sprites: [sprite('a')] }));
    const open = await screen.findByRole('button', { name: 'Connect a relay…' });
    open.focus();
    fireEvent.click(open);
    const dialog = screen.getByRole('dialog', { name: 'Connect a relay' });
    expect(document.activeElement).toBe(screen.getByLabelText('Relay URL'));
    fireEvent.change(screen.getByLabelText('Relay URL'), { target: { value: 'https://relay.example' } });
    const token = screen.getByLabelText('Tunnel token') as HTMLInputElement;
    expect(token.type).toBe('password');
    fireEvent.change(token, { target: { value: 'tunnel-token-1' } });
    await act(async () => fireEvent.submit(screen.getByRole('form', { name: 'Connect a relay' })));
    expect(dialog.isConnected).toBe(false);
    expect(t.calls.find((c) => c.method === 'relay.connect')?.input).toEqual({ url: 'https://relay.example', token: 'tunnel-token-1' });
    expect(await screen.findByText('relay connected')).toBeTruthy();
    expect(screen.getByRole('button', { name: 'Publish (private)' })).toBeTruthy();
    expect(screen.getByRole('button', { name: 'Relay settings' })).toBeTruthy();
  });
});
