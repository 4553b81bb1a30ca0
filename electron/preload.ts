/**
 * The preload: runs sandboxed, exposes exactly one object (`window.spritelyDesktop`) through the
 * context bridge and never `ipcRenderer` itself. Calls come back as `{ok}` or `{error}` data and
 * errors are rebuilt here; the one subscription returns its unsubscribe.
 */
import { contextBridge, ipcRenderer, type IpcRendererEvent } from 'electron';
import { BRIDGE_KEY, DESKTOP_COMMANDS, IPC, type DesktopBridge, type DesktopCommand } from './bridge.ts';
import type { IpcResult } from './ipc.ts';

async function invoke<T>(channel: string, arg?: unknown): Promise<T> {
  const r = (await ipcRenderer.invoke(channel, arg)) as IpcResult<T>;
  if (r && typeof r === 'object' && 'error' in r) {
    const e = new Error(r.error.message);
    e.name = r.error.name;
    throw e;
  }
  return (r as { ok: T }).ok;
}

export const bridge = {
  platform: process.platform,
  version: () => invoke<string>(IPC.version),
  openExternal: (url: string) => invoke<void>(IPC.openExternal, String(url)),
  copyText: (text: string) => invoke<void>(IPC.copyText, String(text)),
  relogin: () => invoke<void>(IPC.relogin),
  onCommand(listener: (command: DesktopCommand) => void): () => void {
    const handler = (_e: IpcRendererEvent, command: unknown) => {
      if ((DESKTOP_COMMANDS as readonly unknown[]).includes(command)) listener(command as DesktopCommand);
    };
    ipcRenderer.on(IPC.command, handler);
    return () => {
      ipcRenderer.removeListener(IPC.command, handler);
    };
  },
} satisfies DesktopBridge;

contextBridge.exposeInMainWorld(BRIDGE_KEY, bridge);
