/**
 * The window's security posture, in one place so it is tested: Electron's own checklist
 * (context isolation, sandbox, no node integration, web security), a CSP sent as a response
 * header for the daemon's origin, navigation and new windows denied except the daemon's origin,
 * no webviews, and permissions granted only for the clipboard.
 */
import type { BrowserWindowConstructorOptions, Session, WebContents } from 'electron';
import { uiCsp } from '../vm/api/ui-static.ts';

export function windowOptions(preload: string, dark: boolean): BrowserWindowConstructorOptions {
  return {
    width: 1280,
    height: 800,
    minWidth: 760,
    minHeight: 480,
    show: false,
    title: 'Spritely',
    backgroundColor: dark ? '#111316' : '#f6f6f4',
    autoHideMenuBar: true,
    webPreferences: {
      preload,
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      nodeIntegrationInWorker: false,
      nodeIntegrationInSubFrames: false,
      webSecurity: true,
      allowRunningInsecureContent: false,
      webviewTag: false,
      navigateOnDragDrop: false,
      spellcheck: false,
    },
  };
}

/** The CSP of the UI: the daemon's own (one definition for the browser and the window). */
export function contentSecurityPolicy(port: number): string {
  return uiCsp(port);
}

export function originOf(url: string): string | null {
  try {
    const u = new URL(url);
    return u.protocol === 'http:' || u.protocol === 'https:' ? u.origin : null;
  } catch {
    return null;
  }
}

export function isAppUrl(url: string, appOrigin: string): boolean {
  return originOf(url) === appOrigin;
}

/** Adds the CSP header to every response from the daemon's origin. */
export function installCsp(session: Pick<Session, 'webRequest'>, appOrigin: string): void {
  const port = Number(new URL(appOrigin).port);
  const csp = contentSecurityPolicy(port);
  session.webRequest.onHeadersReceived({ urls: [`${appOrigin}/*`] }, (details, callback) => {
    const headers = { ...(details.responseHeaders ?? {}) };
    for (const k of Object.keys(headers)) if (k.toLowerCase() === 'content-security-policy') delete headers[k];
    headers['Content-Security-Policy'] = [csp];
    callback({ responseHeaders: headers });
  });
}

export function installPermissions(session: Pick<Session, 'setPermissionRequestHandler' | 'setPermissionCheckHandler'>, appOrigin: string): void {
  const allowed = new Set(['clipboard-read', 'clipboard-sanitized-write']);
  session.setPermissionRequestHandler((contents, permission, callback) => {
    callback(allowed.has(permission) && isAppUrl(contents.getURL(), appOrigin));
  });
  session.setPermissionCheckHandler((_contents, permission, requestingOrigin) => allowed.has(permission) && requestingOrigin === appOrigin);
}

/**
 * Navigation stays on the daemon's origin; new windows only for the daemon's origin (with the
 * same locked-down options), anything else is refused (links go out through the bridge's
 * openExternal, which only takes http(s)); webviews are never attached.
 */
export function installNavigationGuards(contents: Pick<WebContents, 'on' | 'setWindowOpenHandler'>, appOrigin: string, childWindow?: BrowserWindowConstructorOptions): void {
  const guard = (event: { preventDefault(): void }, url: string) => {
    if (!isAppUrl(url, appOrigin)) event.preventDefault();
  };
  contents.on('will-navigate', guard as never);
  contents.on('will-redirect', guard as never);
  contents.on('will-frame-navigate', ((event: { preventDefault(): void; url: string }) => guard(event, event.url)) as never);
  contents.on('will-attach-webview', ((event: { preventDefault(): void }) => event.preventDefault()) as never);
  contents.setWindowOpenHandler(({ url }) => (childWindow && isAppUrl(url, appOrigin) ? { action: 'allow', overrideBrowserWindowOptions: childWindow } : { action: 'deny' }));
}
