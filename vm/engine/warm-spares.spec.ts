/**
 * Warm spares on the fake driver: made after a create of their shape (and only where memory
 * allows), taken by the next create of that shape (no restore: its files move into the sprite's
 * dir and it gets its identity), given up first when memory is needed, ended when turned off,
 * and after a daemon restart re-attached only when found exactly as left.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { readRuntime } from '../store/sprite-manifest.ts';
import { agentOf, makeFixture, type Fixture } from './spec-fixture.ts';

let f: Fixture;
afterEach(async () => {
  await f?.cleanup();
});

async function until(cond: () => boolean, ms = 2000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 2));
  }
}

const ready = () => until(() => f.engine.configView().spares.some((s) => s.state === 'ready'));
const spareDirs = () => (fs.existsSync(path.join(f.home, 'spares')) ? fs.readdirSync(path.join(f.home, 'spares')) : []);

describe('warm spares', () => {
  it('a create leaves a spare of its shape; the next create takes it: no restore, its files move, it gets its identity; a new spare follows', async () => {
    f = await makeFixture({ warmSpare: true });
    await f.engine.create({ name: 'first' });
    await ready();
    const [spare] = f.engine.configView().spares;
    expect(spare).toMatchObject({ memoryMiB: 512, cpus: 1, state: 'ready', image: f.engine.images.defaultImageId() });
    const [id] = spareDirs();
    const proc = [...f.driver.processes.values()].find((p) => p.id === `spare-${id}`)!;
    expect(proc.state).toBe('paused'); // landed, never run
    expect(f.driver.calls).toContain(`launch spare-${id} from gold.state`);

    const launchesBefore = f.driver.calls.filter((c) => c.startsWith('launch')).length;
    const { sprite, timings } = await f.engine.create({ name: 'dev' });
    expect(sprite.state).toBe('running');
    expect(timings.spare).toBe(1);
    // taken, not launched: the spare's machine is the sprite's now
    expect(f.driver.calls.filter((c) => c.startsWith('launch')).length).toBe(launchesBefore);
    expect(f.driver.calls).toContain(`rehome dev from spare-${id}`);
    expect(f.driver.process('dev')).toBe(proc);
    expect(proc.spec.disk).toBe(path.join(f.home, 'sprites/dev/disk.qcow2'));
    expect(fs.existsSync(path.join(f.home, 'spares', id))).toBe(false);
    expect(agentOf(proc).identity).toMatchObject({ hostname: 'dev' });
    const rt = readRuntime(path.join(f.home, 'sprites/dev/runtime.json'))!;
    expect(rt.egressSocket).toBe(path.join(f.layout.runDir, `spare-${id}.egress`));
    expect(f.io.egress.at(-1)!.opts.socketPath).toBe(rt.egressSocket);
    // the spare's network stack asks on the spare's socket, which the sprite's link now serves
    expect(rt.netSocket).toBe(path.join(f.layout.runDir, `spare-${id}.net`));
    expect(proc.spec.netSocket).toBe(rt.netSocket);
    expect(f.io.netLinks.at(-1)!.opts.socketPath).toBe(rt.netSocket);
    // it works as a sprite, and sleeps and wakes as one
    await f.engine.sleep('dev');
    await f.engine.wake('dev');
    expect(f.engine.get('dev').state).toBe('running');
    // a new spare is made for the next create
    await ready();
    expect(spareDirs()).toHaveLength(1);
    expect(spareDirs()[0]).not.toBe(id);
  });

  it('a create of another shape does not take it', async () => {
    f = await makeFixture({ warmSpare: true });
    await f.engine.create({ name: 'first' });
    await ready();
    const { timings } = await f.engine.create({ name: 'big', memoryMiB: 1024 });
    expect(timings.spare).toBeUndefined();
    expect(f.engine.configView().spares.filter((s) => s.memoryMiB === 512)).toHaveLength(1);
  });

  it('counts against the memory limit and is given up first: a create that needs the room ends the spare instead of being refused', async () => {
    f = await makeFixture({ warmSpare: true });
    await f.engine.setMemoryLimit(1100);
    await f.engine.create({ name: 'a' });
    await ready();
    // a (512) + spare (512) = 1024 of 1100: 384 more only fit without the spare
    const { sprite } = await f.engine.create({ name: 'b', memoryMiB: 384 });
    expect(sprite.state).toBe('running');
    expect(f.logs.join('\n')).toMatch(/warm spare \w+: ended \("b" needs the memory\)/);
    expect(spareDirs()).toEqual([]);
    // and none is made while it does not fit
    await new Promise((r) => setTimeout(r, 20));
    expect(f.engine.configView().spares).toEqual([]);
    expect(f.logs.join('\n')).toMatch(/not made, its 512 MiB do not fit under the memory limit/);
  });

  it('turned off: every spare ends; on again: one is made', async () => {
    f = await makeFixture({ warmSpare: true });
    await f.engine.create({ name: 'a' });
    await ready();
    await f.engine.setWarmSpare(false);
    expect(f.engine.configView()).toMatchObject({ warmSpare: false, spares: [] });
    await until(() => spareDirs().length === 0);
    expect([...f.driver.processes.keys()]).toEqual(['a']);
    await f.engine.setWarmSpare(true);
    await ready();
  });

  it('a spare whose machine dies leaves the pool and is made again', async () => {
    f = await makeFixture({ warmSpare: true });
    await f.engine.create({ name: 'a' });
    await ready();
    const [id] = spareDirs();
    f.driver.process(`spare-${id}`).crash('gone');
    await until(() => spareDirs()[0] !== id);
    await ready();
    expect(f.logs.join('\n')).toMatch(new RegExp(`warm spare ${id}: its machine ended`));
  });

  it('a restarted daemon takes back a spare left paused, and gives up one that ran or lost its record', async () => {
    f = await makeFixture({ warmSpare: true });
    await f.engine.create({ name: 'a' });
    await ready();
    const [id] = spareDirs();
    await f.restart();
    expect(f.engine.configView().spares).toMatchObject([{ state: 'ready' }]);
    expect(f.logs.join('\n')).toMatch(new RegExp(`warm spare ${id} \\(.*\\): re-attached`));
    expect((await f.engine.create({ name: 'b' })).timings.spare).toBe(1);
    await ready();

    // a spare that ran (it is not what it was left as) is ended and removed
    const [id2] = spareDirs();
    f.driver.process(`spare-${id2}`).state = 'running';
    await f.restart();
    expect(f.logs.join('\n')).toMatch(new RegExp(`warm spare ${id2}: given up \\(its machine is running, not paused\\)`));
    expect(f.driver.processes.has(`spare-${id2}`)).toBe(false);

    // a spare dir without its record is removed
    fs.mkdirSync(path.join(f.home, 'spares', 'junk'), { recursive: true });
    await f.restart();
    expect(fs.existsSync(path.join(f.home, 'spares', 'junk'))).toBe(false);
  });

  it('the daemon stopping ends spares; one leaving machines running keeps them for the next', async () => {
    f = await makeFixture({ warmSpare: true });
    await f.engine.create({ name: 'a' });
    await ready();
    const [id] = spareDirs();
    f.engine.detachAll();
    expect(f.driver.processes.has(`spare-${id}`)).toBe(true);
    await f.restart();
    await f.engine.sleepAll();
    expect(f.driver.processes.has(`spare-${id}`)).toBe(false);
    expect(spareDirs()).toEqual([]);
  });
});
