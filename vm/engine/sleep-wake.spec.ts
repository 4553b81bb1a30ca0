import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { SpritelyError } from '../errors.ts';
import { agentOf, makeFixture, type Fixture } from './spec-fixture.ts';

let f: Fixture;
beforeEach(async () => {
  f = await makeFixture();
  await f.engine.create({ name: 'dev' });
});
afterEach(async () => {
  await f.cleanup();
});

const sleepFile = () => path.join(f.home, 'sprites/dev/sleep.state');
const manifest = () => JSON.parse(fs.readFileSync(path.join(f.home, 'sprites/dev/sprite.json'), 'utf8'));

describe('sleep', () => {
  it('saves RAM to a file, records it before the machine goes, and leaves no machine', async () => {
    f.driver.process('dev').memory.shm = 'kept';
    f.io.clock.now += 30_000;
    const { sprite } = await f.engine.sleep('dev');
    expect(sprite.state).toBe('sleeping');
    expect(sprite.pid).toBeNull();
    expect(f.driver.processes.has('dev')).toBe(false);
    expect(JSON.parse(fs.readFileSync(sleepFile(), 'utf8'))).toMatchObject({ format: 'fake-state', memory: { shm: 'kept' } });
    expect(manifest()).toMatchObject({ status: 'sleeping', sleep: { file: sleepFile(), signature: 'fake-1.0-512-1' }, usage: { awakeSeconds: 30, cpuSeconds: 0.5 } });
    expect(fs.existsSync(path.join(f.home, 'sprites/dev/runtime.json'))).toBe(false);
    // the state was saved before the machine was quit
    expect(f.driver.calls.slice(-2)).toEqual(['save dev', 'quit dev']);
    // asleep already: nothing to do
    expect((await f.engine.sleep('dev')).timings.totalMs).toBe(0);
  });

  it('a failed save leaves the sprite running and says so', async () => {
    f.driver.failNext('save', 'No space left on device');
    const err = (await f.engine.sleep('dev').catch((e) => e)) as SpritelyError;
    expect(err.message).toBe('Could not put "dev" to sleep: No space left on device. It keeps running.');
    expect(f.engine.get('dev').state).toBe('running');
    expect(await f.driver.processes.get('dev')!.state).toBe('running');
    expect(manifest().status).toBe('running');
  });

  it('only a running sprite can sleep', async () => {
    await f.engine.stop('dev');
    const err = (await f.engine.sleep('dev').catch((e) => e)) as SpritelyError;
    expect(err.code).toBe('failed_precondition');
    expect(err.message).toMatch(/is stopped; only a running sprite can sleep/);
  });

  it('daemon shutdown puts every awake sprite to sleep', async () => {
    await f.engine.create({ name: 'two' });
    await f.engine.sleepAll();
    expect(f.engine.list().map((s) => s.state)).toEqual(['sleeping', 'sleeping']);
  });
});

describe('wake', () => {
  it('restores the exact moment, sets the clock, and deletes the state', async () => {
    f.driver.process('dev').memory.shm = 'kept';
    await f.engine.sleep('dev');
    f.io.clock.now += 3_600_000;
    const { sprite, timings } = await f.engine.wake('dev');
    expect(sprite.state).toBe('running');
    expect(timings.runningMs).toBeGreaterThanOrEqual(0);
    const proc = f.driver.process('dev');
    expect(proc.memory.shm).toBe('kept');
    expect(f.driver.calls).toContain('launch dev from sleep.state');
    // the clock through the guest agent (no new name: the same machine)
    expect(agentOf(proc).identities.at(-1)).toEqual({ timeNs: String(BigInt(f.io.clock.now) * 1_000_000n), seed: expect.any(String) });
    expect(proc.guest.execs).toEqual([]);
    expect(fs.existsSync(sleepFile())).toBe(false);
    expect(manifest()).toMatchObject({ status: 'running', sleep: null, lastError: null });
  });

  it('a state that no longer fits (the hypervisor was upgraded) is not used: the sprite boots from its disk and says so', async () => {
    f.driver.process('dev').memory.shm = 'lost';
    await f.engine.sleep('dev');
    f.driver.hypervisorVersion = '2.0';
    const { sprite } = await f.engine.wake('dev');
    expect(sprite.state).toBe('running');
    expect(sprite.lastError).toMatch(/^Woke without its RAM: its saved RAM state does not fit this FakeVM or device set any more; booted it from its disk instead/);
    expect(f.driver.calls.slice(-3)).toContain('launch dev');
    expect(f.driver.process('dev').memory.shm).toBeUndefined();
    expect(fs.existsSync(sleepFile())).toBe(false);
  });

  it('a state that fails to load: the machine is ended and the sprite boots from its disk', async () => {
    await f.engine.sleep('dev');
    f.driver.failNext('restore', 'the state is corrupt');
    const { sprite } = await f.engine.wake('dev');
    expect(sprite.state).toBe('running');
    expect(sprite.lastError).toMatch(/could not be restored \(restoring sleep.state failed: the state is corrupt\); booted it from its disk/);
    expect(f.driver.calls.filter((c) => c === 'kill dev')).toHaveLength(1);
  });

  it('a restored guest whose agent never answers: ended, then booted from its disk', async () => {
    await f.engine.sleep('dev');
    let first = true;
    f.driver.onLaunch = (p) => {
      if (first) p.guest.silent = true;
      first = false;
    };
    const { sprite } = await f.engine.wake('dev');
    expect(sprite.lastError).toMatch(/could not be restored \(could not reach the guest agent of dev: no answer to HELLO/);
  });

  it('is refused past the memory limit, and the sleep state is kept', async () => {
    await f.engine.sleep('dev');
    await f.engine.setMemoryLimit(300);
    const err = (await f.engine.wake('dev').catch((e) => e)) as SpritelyError;
    expect(err.code).toBe('resource_exhausted');
    expect(f.engine.get('dev').state).toBe('sleeping');
    expect(fs.existsSync(sleepFile())).toBe(true);
  });

  it('everything that needs the machine wakes it: ensureAwake, agentAwake, urlTarget; start wakes too', async () => {
    await f.engine.sleep('dev');
    await f.engine.agentAwake('dev');
    expect(f.engine.get('dev').state).toBe('running');
    await f.engine.sleep('dev');
    const target = await f.engine.urlTarget('dev');
    expect(target.host).toBe('127.0.0.1');
    await f.engine.sleep('dev');
    await f.engine.start('dev');
    expect(f.driver.calls.filter((c) => c === 'launch dev from sleep.state')).toHaveLength(3);
  });

  it('refuses to wake what is not asleep', async () => {
    await f.engine.stop('dev');
    expect(((await f.engine.wake('dev').catch((e) => e)) as SpritelyError).code).toBe('failed_precondition');
  });
});

describe('idle', () => {
  it('sleeps sprites untouched for their idle timeout, but not held ones, and not when the timeout is 0', async () => {
    await f.engine.create({ name: 'held' });
    await f.engine.create({ name: 'never' });
    await f.engine.setIdleTimeout(60);
    await f.engine.setIdleTimeout(0, 'never');
    const release = f.engine.hold('held');
    f.engine.startIdleLoop();
    f.io.clock.now += 59_000;
    expect(f.engine.idleSprites()).toEqual([]);
    f.io.clock.now += 2_000;
    expect(f.engine.idleSprites()).toEqual(['dev']);
    f.engine.touch('dev');
    expect(f.engine.idleSprites()).toEqual([]);
    f.io.clock.now += 61_000;
    for (const tick of f.io.idleLoops) tick();
    await waitFor(() => f.engine.get('dev').state === 'sleeping');
    expect(f.engine.get('held').state).toBe('running');
    expect(f.engine.get('never').state).toBe('running');
    release();
    f.io.clock.now += 61_000;
    expect(f.engine.idleSprites()).toEqual(['held']);
    expect(f.logs.join('\n')).toMatch(/sprite dev: idle for 60 s; going to sleep/);
  });
});

describe('url port', () => {
  it('changes the forward of a running sprite at once and remembers it', async () => {
    const rt = JSON.parse(fs.readFileSync(path.join(f.home, 'sprites/dev/runtime.json'), 'utf8'));
    await f.engine.setUrlPort('dev', 3000);
    expect(f.driver.process('dev').forwards).toContainEqual({ hostPort: rt.urlHostPort, guestPort: 3000 });
    expect(f.engine.get('dev').urlPort).toBe(3000);
    f.driver.failNext('forward', 'the forward is busy');
    expect(((await f.engine.setUrlPort('dev', 4000).catch((e) => e)) as SpritelyError).code).toBe('internal');
    expect(f.engine.get('dev').urlPort).toBe(3000);
    // a sleeping sprite gets it when it wakes
    await f.engine.sleep('dev');
    await f.engine.setUrlPort('dev', 5000);
    await f.engine.wake('dev');
    expect(f.driver.process('dev').forwards.at(-1)?.guestPort).toBe(5000);
  });
});

async function waitFor(cond: () => boolean, ms = 2000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 2));
  }
}
