/**
 * The one door from renderers into Electron main. Every handler is registered through
 * `SafeIpc.handle`, which refuses calls whose sender frame is not the daemon's UI origin (a
 * navigated-away page, an injected frame), validates the payload with a zod schema, and returns
 * errors as plain `{error: {name, message}}` data that the preload turns back into an Error.
 */
import type { IpcMain, IpcMainInvokeEvent } from 'electron';
import type { z } from 'zod';
import type { IpcErrorShape } from './bridge.ts';

export type IpcResult<T> = { ok: T } | IpcErrorShape;

export class IpcRefused extends Error {
  override name = 'IpcRefused';
}

/** The origin of the frame that sent an IPC message, or null when it is gone or not a URL. */
export function senderOrigin(event: Pick<IpcMainInvokeEvent, 'senderFrame'>): string | null {
  const url = event.senderFrame?.url;
  if (!url) return null;
  try {
    return new URL(url).origin;
  } catch {
    return null;
  }
}

export class SafeIpc {
  private channels: string[] = [];

  constructor(
    private readonly ipcMain: Pick<IpcMain, 'handle' | 'removeHandler'>,
    private readonly allowedOrigin: () => string | null,
  ) {}

  handle<S extends z.ZodType, R>(channel: string, input: S, fn: (arg: z.infer<S>, event: IpcMainInvokeEvent) => R | Promise<R>): void {
    this.channels.push(channel);
    this.ipcMain.handle(channel, async (event, ...args): Promise<IpcResult<R>> => {
      try {
        const origin = senderOrigin(event);
        const allowed = this.allowedOrigin();
        if (!allowed || origin !== allowed) throw new IpcRefused(`IPC "${channel}" refused from ${origin ?? 'an unknown frame'}.`);
        const parsed = input.safeParse(args[0]);
        if (!parsed.success) throw new TypeError(`Invalid argument for "${channel}": ${parsed.error.issues[0]?.message ?? 'invalid'}.`);
        return { ok: await fn(parsed.data, event) };
      } catch (err) {
        const e = err as Error;
        return { error: { name: e?.name ?? 'Error', message: e?.message ?? String(err) } };
      }
    });
  }

  dispose(): void {
    for (const c of this.channels) this.ipcMain.removeHandler(c);
    this.channels = [];
  }
}
