import { describe, expect, it } from 'vitest';
import { awakeMemory, setWorking, showView } from './settings-state.ts';
import { applyEvent, closeDrawer, createAppStore, initialState, selectSprite, SPRITES_DRAWER, toggleDrawer } from './store.ts';
import { FakeTransport, sprite } from './testing/fake-transport.ts';

const hello = (...names: string[]) => applyEvent(initialState, { type: 'hello', sprites: names.map((n) => sprite(n)) });

describe('settings transitions', () => {
  it('the settings page opens over the sprite, and picking a sprite goes back to it', () => {
    let s = showView(hello('a', 'b'), 'settings');
    expect(s.view).toBe('settings');
    expect(showView(s, 'settings')).toBe(s);
    s = selectSprite(s, 'b');
    expect([s.view, s.selected]).toEqual(['sprite', 'b']);
    expect(selectSprite(s, 'b')).toBe(s);
  });

  it('one drawer at a time; picking a sprite closes the sprite list but not a panel', () => {
    let s = toggleDrawer(hello('a', 'b'), SPRITES_DRAWER);
    expect(s.drawer).toBe(SPRITES_DRAWER);
    s = selectSprite(s, 'b');
    expect(s.drawer).toBeNull();
    s = toggleDrawer(s, 'timeline');
    s = toggleDrawer(s, 'urls');
    expect(s.drawer).toBe('urls');
    expect(selectSprite(s, 'a').drawer).toBe('urls');
    expect(toggleDrawer(s, 'urls').drawer).toBeNull();
    expect(closeDrawer(closeDrawer(s)).drawer).toBeNull();
  });

  it('marks work under way, once', () => {
    const s = setWorking(initialState, 'image', true);
    expect(s.working).toEqual({ image: true });
    expect(setWorking(s, 'image', true)).toBe(s);
    expect(setWorking(s, 'image', false).working).toEqual({});
  });

  it('awake memory counts running sprites only', () => {
    expect(awakeMemory({ a: sprite('a', { memoryMiB: 1024 }), b: sprite('b', { state: 'sleeping', memoryMiB: 4096 }), c: sprite('c', { memoryMiB: 512 }) })).toEqual({ mib: 1536, count: 2 });
    expect(awakeMemory({})).toEqual({ mib: 0, count: 0 });
  });
});

describe('settings actions', () => {
  const store = () => {
    const t = new FakeTransport();
    t.methods.add('config.get');
    return { t, s: createAppStore({ transport: t }) };
  };

  it('loads what the daemon has, and turns its errors into toasts in its words', async () => {
    const { t, s } = store();
    t.handlers['config.get'] = async () => ({ idleTimeoutSec: 60, memoryLimitMiB: 1000, memoryLimitDefault: true, memoryLimitDefaultMiB: 1000 });
    await s.getState().actions.loadSettings();
    expect(t.calls.map((c) => c.method)).toEqual(['config.get', 'images.list']); // the fake daemon has images.list too (no handler: an error)
    expect(s.getState().config?.idleTimeoutSec).toBe(60);
    expect(s.getState().toasts.map((x) => x.message)).toEqual(['FakeTransport: no handler for images.list']);
  });

  it('a refused network policy comes back to the editor, not as a toast', async () => {
    const { t, s } = store();
    t.handlers['sprites.network'] = async () => {
      throw new Error('"x" is not a host name');
    };
    expect(await s.getState().actions.setNetwork('a', 'allow=x')).toBe('"x" is not a host name');
    expect(s.getState().toasts).toEqual([]);
  });

  it('a relay that refuses the token is an error, and the relay state is kept', async () => {
    const { t, s } = store();
    t.handlers['relay.connect'] = async ({ url }) => ({ configured: true, url, status: 'unauthorized', reason: 'unknown token', account: null, published: [] });
    expect(await s.getState().actions.connectRelay({ url: 'https://r.example', token: 'xxxxxxxxxx' })).toBe(false);
    expect(s.getState().relay?.status).toBe('unauthorized');
    expect(s.getState().toasts[0].message).toMatch(/^The relay refused the token \(unknown token\)/);
    expect(s.getState().working).toEqual({});
  });

  it('an image build clears its progress when it ends, either way', async () => {
    const { t, s } = store();
    t.handlers['images.build'] = async () => {
      t.emit({ type: 'image.progress', image: 'i', phase: 'image', message: 'm' });
      throw new Error('mmdebstrap is missing');
    };
    s.getState().actions.start();
    expect(await s.getState().actions.buildImage()).toBe(false);
    expect(s.getState().imageProgress).toBeNull();
    expect(s.getState().toasts[0].message).toBe('mmdebstrap is missing');
  });
});
