/**
 * The contract between Electron's preload and the renderer: the one object the preload exposes
 * (`window.spritelyDesktop`) and the IPC channels behind it. The renderer imports only the types;
 * main and preload share the channel names. Nothing here may import `electron`.
 */

/** Native menu commands the app forwards to the renderer (its keyboard shortcuts in a browser). */
export const DESKTOP_COMMANDS = ['new-sprite', 'new-terminal', 'close-terminal', 'next-tab', 'previous-tab', 'find'] as const;
export type DesktopCommand = (typeof DESKTOP_COMMANDS)[number];

export interface DesktopBridge {
  /** `process.platform` of the app. */
  readonly platform: string;
  /** The app's version. */
  version(): Promise<string>;
  /** Opens an http(s) URL (a sprite's URL, a link in a terminal) in the user's browser. */
  openExternal(url: string): Promise<void>;
  /** Puts text on the system clipboard. */
  copyText(text: string): Promise<void>;
  /**
   * Logs this window in again after its login ended (logged out, expired, or the daemon restarted
   * since a reload): main asks the daemon for a new one-time login over the unix socket and loads
   * it. The code never crosses the bridge or a command line.
   */
  relogin(): Promise<void>;
  /** Menu commands; returns the function that unsubscribes. */
  onCommand(listener: (command: DesktopCommand) => void): () => void;
}

export const BRIDGE_KEY = 'spritelyDesktop';

export const IPC = {
  version: 'spritely:version',
  openExternal: 'spritely:open-external',
  copyText: 'spritely:copy-text',
  relogin: 'spritely:relogin',
  command: 'spritely:command',
} as const;

/** How an error crosses IPC: plain data, rebuilt into an Error on the other side. */
export interface IpcErrorShape {
  error: { name: string; message: string };
}
