import { describe, expect, it } from 'vitest';
import { SpritelyError } from '../errors.ts';
import { DaemonLink, isNotConnected } from './daemon-link.ts';

const connErr = (code: string, syscall = 'connect') => Object.assign(new Error(`connect ${code} /run/api.sock`), { code, syscall });

function fake(script: Array<() => unknown>) {
  const calls: string[] = [];
  let connects = 0;
  const link = new DaemonLink(async () => {
    connects++;
    return {
      call: (async (method: string) => {
        calls.push(method);
        const step = script.shift();
        if (!step) throw new Error('unexpected call');
        return step();
      }) as never,
    };
  });
  return { link, calls, connects: () => connects };
}

describe('DaemonLink', () => {
  it('connects once, lazily, and reuses the client', async () => {
    const f = fake([() => [], () => []]);
    expect(f.connects()).toBe(0);
    await f.link.call('sprites.list', {});
    await f.link.call('sprites.list', {});
    expect(f.connects()).toBe(1);
  });

  it('reconnects (restarting the daemon) and retries once when nothing answered the socket', async () => {
    const f = fake([
      () => {
        throw connErr('ECONNREFUSED');
      },
      () => ({ ok: true }),
    ]);
    expect(await f.link.call('checkpoints.delete', { name: 'dev', id: 'v1' })).toEqual({ ok: true });
    expect(f.calls).toEqual(['checkpoints.delete', 'checkpoints.delete']);
    expect(f.connects()).toBe(2);
  });

  it('never retries a request the daemon may have received or refused', async () => {
    for (const err of [new SpritelyError('not_found', 'No sprite named "ghost".'), Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' })]) {
      const f = fake([
        () => {
          throw err;
        },
      ]);
      await expect(f.link.call('sprites.exec', { name: 'dev', argv: ['true'] })).rejects.toBe(err);
      expect(f.calls).toHaveLength(1);
    }
  });

  it('a failed connect is not remembered', async () => {
    let n = 0;
    const link = new DaemonLink(async () => {
      if (n++ === 0) throw new Error('the spritely daemon failed to start');
      return { call: (async () => 'fine') as never };
    });
    await expect(link.call('sprites.list', {})).rejects.toThrow(/failed to start/);
    expect(await link.call('sprites.list', {})).toBe('fine');
  });

  it('isNotConnected: only connect-time ECONNREFUSED/ENOENT', () => {
    expect(isNotConnected(connErr('ECONNREFUSED'))).toBe(true);
    expect(isNotConnected(connErr('ENOENT'))).toBe(true);
    expect(isNotConnected(connErr('ENOENT', 'open'))).toBe(false);
    expect(isNotConnected(connErr('ECONNRESET'))).toBe(false);
    expect(isNotConnected(new Error('x'))).toBe(false);
    expect(isNotConnected(null)).toBe(false);
  });
});
