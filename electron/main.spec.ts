import { beforeEach, describe, expect, it, vi } from 'vitest';

type Listener = (...args: any[]) => any;

const h = vi.hoisted(() => {
  class FakeContents {
    listeners = new Map<string, Listener[]>();
    openHandler: ((d: { url: string }) => unknown) | null = null;
    url = 'http://127.0.0.1:4567/';
    sent: unknown[][] = [];
    on(ev: string, fn: Listener) {
      this.listeners.set(ev, [...(this.listeners.get(ev) ?? []), fn]);
      return this;
    }
    setWindowOpenHandler(fn: (d: { url: string }) => unknown) {
      this.openHandler = fn;
    }
    getURL() {
      return this.url;
    }
    send(...a: unknown[]) {
      this.sent.push(a);
    }
    /** Fires a navigation event; returns whether it was prevented. */
    navigate(ev: string, url: string): boolean {
      let prevented = false;
      const event = { preventDefault: () => (prevented = true), url };
      for (const l of this.listeners.get(ev) ?? []) l(event, url);
      return prevented;
    }
  }
  const windows: any[] = [];
  class BrowserWindow {
    webContents = new FakeContents();
    loaded: string | null = null;
    constructor(readonly options: any) {
      windows.push(this);
    }
    once() {}
    on() {}
    async loadURL(u: string) {
      this.loaded = u;
    }
    static getFocusedWindow() {
      return null;
    }
  }
  const handlers = new Map<string, Listener>();
  const headerHooks: { filter: any; fn: Listener }[] = [];
  const perms: { request?: Listener; check?: Listener } = {};
  return {
    FakeContents,
    windows,
    handlers,
    headerHooks,
    perms,
    electron: {
      app: { getVersion: () => '9.9.9', on: vi.fn(), whenReady: vi.fn(), requestSingleInstanceLock: vi.fn(() => true), quit: vi.fn(), exit: vi.fn() },
      BrowserWindow,
      clipboard: { writeText: vi.fn() },
      dialog: { showErrorBox: vi.fn() },
      ipcMain: { handle: (c: string, fn: Listener) => handlers.set(c, fn), removeHandler: (c: string) => handlers.delete(c) },
      Menu: { setApplicationMenu: vi.fn(), buildFromTemplate: vi.fn((t) => t) },
      nativeTheme: { shouldUseDarkColors: false },
      session: {
        defaultSession: {
          webRequest: { onHeadersReceived: (filter: any, fn: Listener) => headerHooks.push({ filter, fn }) },
          setPermissionRequestHandler: (fn: Listener) => (perms.request = fn),
          setPermissionCheckHandler: (fn: Listener) => (perms.check = fn),
        },
      },
      shell: { openExternal: vi.fn(async () => {}) },
    },
  };
});

vi.mock('electron', () => ({ ...h.electron, default: h.electron }));

const { createMainWindow, menuTemplate, registerIpc } = await import('./main.ts');
const { IPC } = await import('./bridge.ts');

const ORIGIN = 'http://127.0.0.1:4567';
// The code travels in the fragment: in-process from the daemon's unix socket, on no command line.
const LOGIN = `${ORIGIN}/#login=abc`;

beforeEach(() => {
  h.windows.length = 0;
  h.handlers.clear();
  h.headerHooks.length = 0;
  vi.clearAllMocks();
});

describe('the main window', () => {
  it('is sandboxed, context-isolated, without node, with web security, and loads the login URL', async () => {
    await createMainWindow({ loginUrl: async () => LOGIN, preloadPath: '/app/preload.cjs' });
    const [win] = h.windows;
    expect(win.options.webPreferences).toMatchObject({
      preload: '/app/preload.cjs',
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      nodeIntegrationInWorker: false,
      nodeIntegrationInSubFrames: false,
      webSecurity: true,
      allowRunningInsecureContent: false,
      webviewTag: false,
    });
    expect(win.options.width).toBe(1280);
    expect(win.options.height).toBe(800);
    expect(win.loaded).toBe(LOGIN);
  });

  it('refuses a login URL that is not on loopback, or that carries its code anywhere but the fragment', async () => {
    await expect(createMainWindow({ loginUrl: async () => 'http://evil.example:4567/#login=secret' })).rejects.toThrow(/not on 127\.0\.0\.1: http:\/\/evil\.example:4567$/);
    await expect(createMainWindow({ loginUrl: async () => 'http://localhost:4567/#login=x' })).rejects.toThrow(/127\.0\.0\.1/);
    for (const bad of [`${ORIGIN}/ui/login?code=secret`, `${ORIGIN}/?login=secret`, `${ORIGIN}/#code=secret`, `${ORIGIN}/x#login=secret`]) {
      const err = await createMainWindow({ loginUrl: async () => bad }).catch((e: Error) => e);
      expect(err).toBeInstanceOf(Error);
      expect((err as Error).message).toMatch(/unknown form/);
      expect((err as Error).message).not.toContain('secret');
    }
    expect(h.windows).toHaveLength(0);
  });

  it('denies navigation away from the daemon origin', async () => {
    await createMainWindow({ loginUrl: async () => LOGIN });
    const c = h.windows[0].webContents;
    expect(c.navigate('will-navigate', `${ORIGIN}/`)).toBe(false);
    expect(c.navigate('will-redirect', `${ORIGIN}/`)).toBe(false);
    expect(c.navigate('will-navigate', 'https://example.com/')).toBe(true);
    expect(c.navigate('will-navigate', 'http://127.0.0.1:9999/')).toBe(true);
    expect(c.navigate('will-navigate', 'file:///etc/passwd')).toBe(true);
    expect(c.navigate('will-redirect', 'http://localhost:4567/')).toBe(true);
    expect(c.navigate('will-frame-navigate', 'https://example.com/')).toBe(true);
    expect(c.navigate('will-attach-webview', `${ORIGIN}/`)).toBe(true);
  });

  it('denies new windows except on the daemon origin, which get the same locked-down options', async () => {
    await createMainWindow({ loginUrl: async () => LOGIN });
    const c = h.windows[0].webContents;
    expect(c.openHandler!({ url: 'https://example.com/' })).toEqual({ action: 'deny' });
    expect(c.openHandler!({ url: 'javascript:alert(1)' })).toEqual({ action: 'deny' });
    const allowed = c.openHandler!({ url: `${ORIGIN}/` }) as any;
    expect(allowed.action).toBe('allow');
    expect(allowed.overrideBrowserWindowOptions.webPreferences).toMatchObject({ sandbox: true, contextIsolation: true, nodeIntegration: false });
  });

  it('sets the CSP header on responses from the daemon origin', async () => {
    await createMainWindow({ loginUrl: async () => LOGIN });
    const [hook] = h.headerHooks;
    expect(hook.filter).toEqual({ urls: [`${ORIGIN}/*`] });
    let out: any;
    hook.fn({ responseHeaders: { 'content-security-policy': ['default-src *'], 'X-Other': ['1'] } }, (r: any) => (out = r));
    expect(out.responseHeaders['content-security-policy']).toBeUndefined();
    expect(out.responseHeaders['X-Other']).toEqual(['1']);
    expect(out.responseHeaders['Content-Security-Policy']).toEqual([
      "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; connect-src 'self' ws://127.0.0.1:4567; img-src 'self' data:; font-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
    ]);
  });

  it('grants only clipboard permissions, and only to the daemon origin', async () => {
    await createMainWindow({ loginUrl: async () => LOGIN });
    const ask = (perm: string, url: string) => {
      let granted: boolean | undefined;
      h.perms.request!({ getURL: () => url }, perm, (g: boolean) => (granted = g));
      return granted;
    };
    expect(ask('clipboard-read', `${ORIGIN}/`)).toBe(true);
    expect(ask('clipboard-read', 'https://example.com/')).toBe(false);
    expect(ask('media', `${ORIGIN}/`)).toBe(false);
    expect(ask('notifications', `${ORIGIN}/`)).toBe(false);
    expect(h.perms.check!(null, 'clipboard-sanitized-write', ORIGIN)).toBe(true);
    expect(h.perms.check!(null, 'geolocation', ORIGIN)).toBe(false);
  });
});

describe('IPC', () => {
  const call = (channel: string, frameUrl: string | null, arg?: unknown) => h.handlers.get(channel)!({ senderFrame: frameUrl === null ? null : { url: frameUrl } }, arg);

  it('answers the app origin and refuses every other sender', async () => {
    registerIpc(() => ORIGIN);
    expect(await call(IPC.version, `${ORIGIN}/`)).toEqual({ ok: '9.9.9' });
    expect(await call(IPC.version, 'https://example.com/')).toEqual({ error: { name: 'IpcRefused', message: `IPC "${IPC.version}" refused from https://example.com.` } });
    expect(await call(IPC.version, null)).toMatchObject({ error: { name: 'IpcRefused' } });
    expect(await call(IPC.version, 'file:///x')).toMatchObject({ error: { name: 'IpcRefused' } });
    expect(await call(IPC.version, 'http://127.0.0.1:1/')).toMatchObject({ error: { name: 'IpcRefused' } });
  });

  it('refuses everything before the app origin is known', async () => {
    registerIpc(() => null);
    expect(await call(IPC.version, `${ORIGIN}/`)).toMatchObject({ error: { name: 'IpcRefused' } });
  });

  it('opens only http(s) URLs externally', async () => {
    registerIpc(() => ORIGIN);
    expect(await call(IPC.openExternal, `${ORIGIN}/`, 'https://example.com/docs')).toEqual({ ok: undefined });
    expect(h.electron.shell.openExternal).toHaveBeenCalledWith('https://example.com/docs');
    for (const bad of ['file:///etc/passwd', 'javascript:alert(1)', 'smb://x/y', 42]) {
      expect(await call(IPC.openExternal, `${ORIGIN}/`, bad)).toMatchObject({ error: { name: 'TypeError' } });
    }
    expect(h.electron.shell.openExternal).toHaveBeenCalledTimes(1);
  });

  it('copies text, validated', async () => {
    registerIpc(() => ORIGIN);
    expect(await call(IPC.copyText, `${ORIGIN}/`, 'hello')).toEqual({ ok: undefined });
    expect(h.electron.clipboard.writeText).toHaveBeenCalledWith('hello');
    expect(await call(IPC.copyText, `${ORIGIN}/`, { not: 'text' })).toMatchObject({ error: { name: 'TypeError' } });
  });

  it('logs the window in again only when the app origin asks', async () => {
    const relogin = vi.fn(async () => {});
    registerIpc(() => ORIGIN, relogin);
    expect(await call(IPC.relogin, 'http://127.0.0.1:9999/')).toMatchObject({ error: { name: 'IpcRefused' } });
    expect(relogin).not.toHaveBeenCalled();
    expect(await call(IPC.relogin, `${ORIGIN}/`)).toEqual({ ok: undefined });
    expect(relogin).toHaveBeenCalledTimes(1);
    expect(await call(IPC.relogin, `${ORIGIN}/`, 'smuggled')).toMatchObject({ error: { name: 'TypeError' } });
    expect(relogin).toHaveBeenCalledTimes(1);
  });

  it('removes its handlers on dispose', () => {
    const ipc = registerIpc(() => ORIGIN);
    expect([...h.handlers.keys()].sort()).toEqual([IPC.copyText, IPC.openExternal, IPC.relogin, IPC.version].sort());
    ipc.dispose();
    expect(h.handlers.size).toBe(0);
  });
});

describe('the menu', () => {
  it('forwards shortcuts as bridge commands', () => {
    const sent: string[] = [];
    const items = menuTemplate((c) => sent.push(c), false).flatMap((m: any) => (Array.isArray(m.submenu) ? m.submenu : []));
    for (const i of items) i.click?.();
    expect(sent).toEqual(['new-sprite', 'new-terminal', 'close-terminal', 'find', 'next-tab', 'previous-tab']);
  });
});
