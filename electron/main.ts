/**
 * Electron main: thin on purpose. It starts or attaches to the daemon, asks it for a one-time
 * login URL over the unix socket (in-process: the code is on no command line), and opens one
 * locked-down window on the daemon's loopback origin with the code in the URL's fragment; the
 * renderer then logs in and talks to the daemon exactly as it does in a browser (docs/ui.md).
 * When the window's login ends it can ask for a fresh one (`relogin`). Native extras (open a link
 * in the user's browser, the clipboard, menu shortcuts) go through the narrow preload bridge and
 * `SafeIpc`. Quitting the app never stops a sprite (they belong to the daemon).
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { app, BrowserWindow, clipboard, dialog, ipcMain, Menu, nativeTheme, session, shell, type MenuItemConstructorOptions, type WebContents } from 'electron';
import { z } from 'zod';
import { IPC, type DesktopCommand } from './bridge.ts';
import { connectDaemon } from './daemon-link.ts';
import { SafeIpc } from './ipc.ts';
import { installCsp, installNavigationGuards, installPermissions, isAppUrl, originOf, windowOptions } from './security.ts';

const here = path.dirname(fileURLToPath(import.meta.url));

export interface MainDeps {
  /** Returns a one-time login URL on the daemon's loopback origin (`http://127.0.0.1:PORT/#login=CODE`). */
  loginUrl(): Promise<string>;
  preloadPath?: string;
}

/** The origin of a login URL from the daemon, or an error: 127.0.0.1 only, the code only in the fragment. */
export function loginOrigin(url: string): string {
  const origin = originOf(url);
  if (!origin || !/^http:\/\/127\.0\.0\.1:\d+$/.test(origin)) throw new Error(`The daemon gave a login URL that is not on 127.0.0.1: ${origin ?? 'not a web URL'}`);
  const u = new URL(url);
  if (u.search || u.pathname !== '/' || !u.hash.startsWith('#login=')) throw new Error('The daemon gave a login URL of an unknown form (the code belongs in the fragment, #login=…).');
  return origin;
}

/** Registers the bridge's handlers; every one checks that the sender is the app's origin. */
export function registerIpc(appOrigin: () => string | null, relogin: () => Promise<void> = async () => {}): SafeIpc {
  const ipc = new SafeIpc(ipcMain, appOrigin);
  ipc.handle(IPC.version, z.undefined(), () => app.getVersion());
  ipc.handle(IPC.relogin, z.undefined(), () => relogin());
  ipc.handle(
    IPC.openExternal,
    z.string().max(8192).refine((u) => originOf(u) !== null, 'only http(s) URLs can be opened'),
    (url) => shell.openExternal(url),
  );
  ipc.handle(IPC.copyText, z.string().max(16 * 1024 * 1024), (text) => clipboard.writeText(text));
  return ipc;
}

export function menuTemplate(send: (c: DesktopCommand) => void, isMac = process.platform === 'darwin'): MenuItemConstructorOptions[] {
  return [
    ...(isMac ? [{ role: 'appMenu' as const }] : []),
    {
      label: 'File',
      submenu: [
        { label: 'New Sprite', accelerator: 'CmdOrCtrl+Shift+N', click: () => send('new-sprite') },
        { label: 'New Terminal', accelerator: 'CmdOrCtrl+Shift+T', click: () => send('new-terminal') },
        { label: 'Close Terminal', accelerator: 'CmdOrCtrl+Shift+W', click: () => send('close-terminal') },
        { type: 'separator' },
        isMac ? { role: 'close' } : { role: 'quit' },
      ],
    },
    { role: 'editMenu' },
    {
      label: 'View',
      submenu: [
        { label: 'Find in Terminal', accelerator: 'CmdOrCtrl+Shift+F', click: () => send('find') },
        { label: 'Next Terminal', accelerator: 'Ctrl+Tab', click: () => send('next-tab') },
        { label: 'Previous Terminal', accelerator: 'Ctrl+Shift+Tab', click: () => send('previous-tab') },
        { type: 'separator' },
        { role: 'reload' },
        { role: 'resetZoom' },
        { role: 'zoomIn' },
        { role: 'zoomOut' },
        { type: 'separator' },
        { role: 'togglefullscreen' },
      ],
    },
  ];
}

/** Opens the app window on the daemon's origin with every guard in place. */
export async function createMainWindow(deps: MainDeps): Promise<BrowserWindow> {
  const url = await deps.loginUrl();
  const appOrigin = loginOrigin(url);
  const preload = deps.preloadPath ?? path.join(here, 'preload.cjs');
  const options = windowOptions(preload, nativeTheme.shouldUseDarkColors);
  installCsp(session.defaultSession, appOrigin);
  installPermissions(session.defaultSession, appOrigin);
  const win = new BrowserWindow(options);
  installNavigationGuards(win.webContents, appOrigin, options);
  win.once('ready-to-show', () => win.show());
  await win.loadURL(url);
  return win;
}

export async function start(): Promise<void> {
  if (!app.requestSingleInstanceLock()) return app.quit();
  // Every webContents (including any a window.open creates) gets the same guards.
  let appOrigin: string | null = null;
  app.on('web-contents-created', (_e, contents: WebContents) => {
    if (appOrigin) installNavigationGuards(contents, appOrigin, windowOptions(path.join(here, 'preload.cjs'), nativeTheme.shouldUseDarkColors));
  });
  await app.whenReady();
  let win: BrowserWindow | null = null;
  /** A fresh one-time login from the daemon (started if need be), over the unix socket. */
  const mintLogin = async () => {
    const api = await connectDaemon();
    const { url } = await api.call('ui.loginUrl');
    return url;
  };
  const open = async (first?: string) => {
    win = await createMainWindow({
      loginUrl: async () => {
        const url = first ?? (await mintLogin());
        appOrigin = loginOrigin(url);
        return url;
      },
    });
    const mine = win;
    win.on('closed', () => {
      if (win === mine) win = null;
    });
  };
  // The window's login ended: log it in again; if the daemon moved to another port, a new window there.
  const relogin = async () => {
    const url = await mintLogin();
    if (win && loginOrigin(url) === appOrigin) return void (await win.loadURL(url));
    const old = win;
    await open(url);
    old?.destroy();
  };
  registerIpc(() => appOrigin, relogin);
  const send = (c: DesktopCommand) => {
    const target = BrowserWindow.getFocusedWindow() ?? win;
    if (target && isAppUrl(target.webContents.getURL(), appOrigin ?? '')) target.webContents.send(IPC.command, c);
  };
  Menu.setApplicationMenu(Menu.buildFromTemplate(menuTemplate(send)));
  app.on('second-instance', () => {
    if (win) {
      if (win.isMinimized()) win.restore();
      win.focus();
    }
  });
  app.on('activate', () => {
    if (!win) void open().catch(fatal);
  });
  app.on('window-all-closed', () => {
    if (process.platform !== 'darwin') app.quit();
  });
  await open().catch(fatal);
}

function fatal(err: unknown): void {
  dialog.showErrorBox('Spritely could not start', (err as Error)?.message ?? String(err));
  app.exit(1);
}

if (process.versions.electron && !process.env.VITEST) void start();
