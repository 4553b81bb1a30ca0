import { describe, expect, it, vi } from 'vitest';

const h = vi.hoisted(() => {
  const exposed: Record<string, any> = {};
  const listeners = new Map<string, Set<(...a: any[]) => void>>();
  const invoke = vi.fn();
  return {
    exposed,
    listeners,
    invoke,
    electron: {
      contextBridge: { exposeInMainWorld: (k: string, v: unknown) => (exposed[k] = v) },
      ipcRenderer: {
        invoke,
        on: (c: string, fn: any) => listeners.set(c, (listeners.get(c) ?? new Set()).add(fn)),
        removeListener: (c: string, fn: any) => listeners.get(c)?.delete(fn),
      },
    },
  };
});

vi.mock('electron', () => ({ ...h.electron, default: h.electron }));
await import('./preload.ts');
const { IPC } = await import('./bridge.ts');

describe('preload', () => {
  it('exposes exactly one narrow object, and no ipcRenderer', () => {
    expect(Object.keys(h.exposed)).toEqual(['spritelyDesktop']);
    const b = h.exposed.spritelyDesktop;
    expect(Object.keys(b).sort()).toEqual(['copyText', 'onCommand', 'openExternal', 'platform', 'relogin', 'version']);
    expect(b.platform).toBe(process.platform);
    for (const v of Object.values(b)) expect(v).not.toBe(h.electron.ipcRenderer);
    expect(JSON.stringify(Object.keys(b))).not.toMatch(/ipc|send|invoke|require/i);
  });

  it('invokes fixed channels with string arguments and unwraps results', async () => {
    const b = h.exposed.spritelyDesktop;
    h.invoke.mockResolvedValueOnce({ ok: '1.2.3' });
    expect(await b.version()).toBe('1.2.3');
    h.invoke.mockResolvedValueOnce({ ok: undefined });
    await b.openExternal('https://example.com');
    expect(h.invoke).toHaveBeenLastCalledWith(IPC.openExternal, 'https://example.com');
    h.invoke.mockResolvedValueOnce({ ok: undefined });
    await b.copyText({ toString: () => 'coerced' });
    expect(h.invoke).toHaveBeenLastCalledWith(IPC.copyText, 'coerced');
    h.invoke.mockResolvedValueOnce({ ok: undefined });
    await b.relogin('ignored');
    expect(h.invoke).toHaveBeenLastCalledWith(IPC.relogin, undefined);
  });

  it('rebuilds errors from main', async () => {
    h.invoke.mockResolvedValueOnce({ error: { name: 'IpcRefused', message: 'no' } });
    const err = await h.exposed.spritelyDesktop.openExternal('x').catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect([err.name, err.message]).toEqual(['IpcRefused', 'no']);
  });

  it('subscriptions return an unsubscribe and pass only known commands', () => {
    const got: string[] = [];
    const off = h.exposed.spritelyDesktop.onCommand((c: string) => got.push(c));
    const fire = (c: unknown) => h.listeners.get(IPC.command)?.forEach((fn) => fn({}, c));
    fire('new-terminal');
    fire('rm -rf /');
    expect(got).toEqual(['new-terminal']);
    off();
    fire('new-sprite');
    expect(got).toEqual(['new-terminal']);
    expect(h.listeners.get(IPC.command)?.size).toBe(0);
  });
});
