import { describe, expect, it } from 'vitest';
import { SpriteLocks } from './sprite-lock.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('SpriteLocks', () => {
  it('runs operations on one sprite one after another, in order', async () => {
    const locks = new SpriteLocks();
    const log: string[] = [];
    const op = (id: string, ms: number) =>
      locks.run('dev', id, async () => {
        log.push(`${id}:start`);
        await sleep(ms);
        log.push(`${id}:end`);
      });
    await Promise.all([op('a', 30), op('b', 1), op('c', 1)]);
    expect(log).toEqual(['a:start', 'a:end', 'b:start', 'b:end', 'c:start', 'c:end']);
  });

  it('lets different sprites proceed at once and reports what is running', async () => {
    const locks = new SpriteLocks();
    const log: string[] = [];
    const p1 = locks.run('a', 'checkpoint', async () => {
      log.push('a');
      await sleep(20);
    });
    const p2 = locks.run('b', 'stop', async () => log.push('b'));
    await sleep(5);
    expect(locks.operation('a')).toBe('checkpoint');
    await Promise.all([p1, p2]);
    expect(log).toEqual(['a', 'b']);
    expect(locks.operation('a')).toBeNull();
  });

  it('gives a clear busy error instead of waiting past waitMs, and keeps working after', async () => {
    const locks = new SpriteLocks();
    const slow = locks.run('dev', 'create', () => sleep(100));
    await expect(locks.run('dev', 'stop', async () => 1, { waitMs: 10 })).rejects.toThrow(/busy \(create\)/);
    await slow;
    await expect(locks.run('dev', 'stop', async () => 2, { waitMs: 10 })).resolves.toBe(2);
  });

  it('reports when an operation starts and ends (so clients stop showing "busy")', async () => {
    const seen: string[] = [];
    const locks = new SpriteLocks((name) => seen.push(`${name}:${locks.operation(name) ?? 'idle'}`));
    await locks.run('dev', 'stopping', async () => {});
    expect(seen).toEqual(['dev:stopping', 'dev:idle']);
  });

  it('releases after a failure', async () => {
    const locks = new SpriteLocks();
    await expect(locks.run('dev', 'x', async () => { throw new Error('boom'); })).rejects.toThrow('boom');
    await expect(locks.run('dev', 'y', async () => 'ok')).resolves.toBe('ok');
  });
});
