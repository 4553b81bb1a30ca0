/**
 * What differs between Electron and a plain browser tab, in one place: opening links, the
 * clipboard and native menu commands use the desktop bridge when the preload provides it, and
 * the web platform otherwise.
 */
import type { DesktopBridge, DesktopCommand } from '../../electron/bridge.ts';
import type { ViewEnv } from './terminal/xterm-view.ts';

export type { DesktopBridge, DesktopCommand };

export function desktopBridge(w: unknown = globalThis): DesktopBridge | null {
  const b = (w as { spritelyDesktop?: DesktopBridge }).spritelyDesktop;
  return b && typeof b.openExternal === 'function' ? b : null;
}

/** Only web URLs leave the app; anything else a terminal shows as a link is ignored. */
export function isWebUrl(url: string): boolean {
  try {
    const u = new URL(url);
    return u.protocol === 'http:' || u.protocol === 'https:';
  } catch {
    return false;
  }
}

export function platformEnv(bridge = desktopBridge()): ViewEnv {
  return {
    openLink(url) {
      if (!isWebUrl(url)) return;
      if (bridge) void bridge.openExternal(url).catch(() => {});
      else globalThis.open?.(url, '_blank', 'noopener,noreferrer');
    },
    async copyText(text) {
      if (bridge) return bridge.copyText(text);
      const clipboard = globalThis.navigator?.clipboard;
      if (!clipboard) throw new Error('this page has no clipboard access');
      return clipboard.writeText(text);
    },
    readText() {
      return globalThis.navigator?.clipboard?.readText() ?? Promise.resolve('');
    },
  };
}
