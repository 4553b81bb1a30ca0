import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SpritelyError } from '../errors.ts';
import { readRuntime } from '../store/sprite-manifest.ts';
import { agentOf, makeFixture, type Fixture } from './spec-fixture.ts';

let f: Fixture;
beforeEach(async () => {
  f = await makeFixture();
});
afterEach(async () => {
  await f.cleanup();
});

const manifestOf = (name: string) => JSON.parse(fs.readFileSync(path.join(f.home, 'sprites', name, 'sprite.json'), 'utf8'));
const codeOf = (p: Promise<unknown>) => p.then(() => 'ok', (e: SpritelyError) => e.code);

describe('create', () => {
  it('restores the golden state onto a new overlay and gives the machine its own identity', async () => {
    const seen: string[] = [];
    f.engine.on('sprite', (v) => seen.push(`${v.name}:${v.state}:${v.operation ?? '-'}`));
    const { sprite, timings } = await f.engine.create({ name: 'dev' });
    expect(sprite).toMatchObject({ name: 'dev', state: 'running', memoryMiB: 512, cpus: 1, diskGiB: 100, accel: 'fake', network: 'internet' });
    expect(f.engine.get('dev').operation).toBeNull();
    expect(timings.totalMs).toBeGreaterThanOrEqual(0);
    // the golden state was built once (a boot, saved, quit), then the sprite restored from it
    const golden = f.driver.calls.findIndex((c) => c.startsWith('launch golden-'));
    expect(golden).toBeGreaterThanOrEqual(0);
    expect(f.driver.calls.slice(golden)).toEqual(expect.arrayContaining(['overlay disk.qcow2', 'launch dev from gold.state']));
    const proc = f.driver.process('dev');
    // one IDENTITY request to the guest agent: name, machine-id, the pinned host key, our key, seed, clock
    expect(agentOf(proc).identities).toHaveLength(1);
    expect(agentOf(proc).identity).toEqual({
      hostname: 'dev',
      machineId: expect.stringMatching(/^[0-9a-f]{32}$/),
      hostKey: 'PRIVATE root@dev',
      hostKeyPub: manifestOf('dev').hostKeyPub,
      authorizedKeys: 'ssh-ed25519 AAAAclient spritely\n',
      seed: expect.any(String),
      timeNs: String(BigInt(f.io.clock.now) * 1_000_000n),
    });
    expect(proc.guest.execs).toEqual([]); // nothing through qemu-guest-agent
    expect(manifestOf('dev')).toMatchObject({ status: 'running', fsGrown: true, sleep: null });
    const rt = readRuntime(path.join(f.home, 'sprites/dev/runtime.json'))!;
    expect(rt.machine).toEqual({ fakePid: proc.pid });
    expect(rt.sshPort).not.toBe(rt.urlHostPort);
    expect(proc.forwards).toEqual([
      { hostPort: rt.sshPort, guestPort: 22 },
      { hostPort: rt.urlHostPort, guestPort: 8080 },
    ]);
    expect(seen).toContain('dev:stopped:creating');
    expect(seen.at(-1)).toBe('dev:running:-');
    // a second create reuses the golden state
    await f.engine.create({ name: 'two' });
    expect(f.driver.calls.filter((c) => c.startsWith('launch golden-'))).toHaveLength(1);
  });

  it('refuses bad input and taken names before making anything', async () => {
    await f.engine.create({ name: 'dev' });
    const before = fs.readdirSync(path.join(f.home, 'sprites'));
    expect(await codeOf(f.engine.create({ name: 'dev' }))).toBe('already_exists');
    expect(await codeOf(f.engine.create({ name: 'Bad_Name' }))).toBe('invalid_argument');
    expect(await codeOf(f.engine.create({ name: 'x', memoryMiB: 64 }))).toBe('invalid_argument');
    expect(await codeOf(f.engine.create({ name: 'x', diskGiB: 10 }))).toBe('invalid_argument');
    expect(await codeOf(f.engine.create({ name: 'x', cpus: 5 }))).toBe('invalid_argument');
    expect(fs.readdirSync(path.join(f.home, 'sprites'))).toEqual(before);
  });

  it('grows the disk and the filesystem when asked for more than the golden disk', async () => {
    await f.engine.create({ name: 'big', diskGiB: 200 });
    expect(f.driver.calls).toContain(`resize ${200 * 2 ** 30} big`);
    // the virtual disk first, then the identity grows the filesystem in the same request
    expect(agentOf(f.driver.process('big')).identity?.resize).toEqual({ device: '/dev/vda', minBytes: 200 * 2 ** 30 });
  });

  it.each([
    ['the launch', () => f.driver.failNext('launch'), /fake launch failed/],
    ['the restore', () => f.driver.failNext('restore'), /restoring gold.state failed/],
    ['the disk', () => f.driver.failNext('overlay'), /fake overlay failed/],
    ['a guest that never answers', () => (f.driver.onLaunch = (p) => void (p.id === 'dev' && (p.guest.silent = true))), /could not reach the guest agent of dev: no answer to HELLO/],
    ['a guest that refuses its identity', () => (f.driver.onLaunch = (p) => void (agentOf(p).refuseIdentity = 'no')), /the guest refused its identity: no/],
  ])('fails cleanly when %s fails: no trace is left, the machine is gone', async (_what, arrange, message) => {
    await f.engine.create({ name: 'warm' }); // the golden state exists
    arrange();
    const removed: string[] = [];
    f.engine.on('removed', (n) => removed.push(n));
    const err = await f.engine.create({ name: 'dev' }).catch((e: SpritelyError) => e);
    expect(err).toBeInstanceOf(SpritelyError);
    expect((err as SpritelyError).message).toMatch(/^Could not create "dev": /);
    expect((err as SpritelyError).message).toMatch(message);
    expect(fs.existsSync(path.join(f.home, 'sprites/dev'))).toBe(false);
    expect(f.engine.list().map((s) => s.name)).toEqual(['warm']);
    expect(f.driver.processes.has('dev')).toBe(false);
    expect(removed).toEqual(['dev']);
    // and the name is free again
    f.driver.onLaunch = null;
    expect((await f.engine.create({ name: 'dev' })).sprite.state).toBe('running');
  });
});

describe('fork', () => {
  it('makes an independent sprite from a checkpoint: its disk and RAM, its own identity', async () => {
    await f.engine.create({ name: 'src' });
    const src = f.driver.process('src');
    src.memory.counter = '41';
    src.writeFile('/root/notes', 'at v1');
    const { checkpoint } = await f.engine.createCheckpoint('src', { comment: 'base' });
    src.memory.counter = '99';
    src.writeFile('/root/notes', 'later');
    const { sprite } = await f.engine.fork('src', checkpoint.id, 'copy');
    expect(sprite).toMatchObject({ name: 'copy', state: 'running' });
    const copy = f.driver.process('copy');
    expect(copy.memory.counter).toBe('41');
    expect(copy.readFile('/root/notes')).toBe('at v1');
    expect(agentOf(copy).identity?.hostname).toBe('copy');
    expect(manifestOf('copy').hostKeyPub).not.toBe(manifestOf('src').hostKeyPub);
    expect(fs.existsSync(path.join(f.home, 'sprites/copy/fork-source.state'))).toBe(false);
    expect(f.engine.listCheckpoints('copy')).toEqual([]);
    // the source goes on, untouched
    expect(src.readFile('/root/notes')).toBe('later');
    expect(f.engine.get('src').state).toBe('running');
  });

  it('boots a fork of a disk-only checkpoint', async () => {
    await f.engine.create({ name: 'src' });
    await f.engine.stop('src');
    const { checkpoint } = await f.engine.createCheckpoint('src');
    expect(checkpoint.memory).toBe(false);
    await f.engine.fork('src', checkpoint.id, 'copy');
    expect(f.driver.calls).toContain('launch copy');
  });

  it('two forks racing to one new name: one wins, the other gets already_exists (409), not an internal error', async () => {
    await f.engine.create({ name: 'src' });
    const { checkpoint } = await f.engine.createCheckpoint('src');
    f.driver.launchDelayMs = 20;
    const results = await Promise.allSettled([f.engine.fork('src', checkpoint.id, 'twin'), f.engine.fork('src', checkpoint.id, 'twin')]);
    const codes = results.map((r) => (r.status === 'fulfilled' ? 'ok' : (r.reason as SpritelyError).code)).sort();
    expect(codes).toEqual(['already_exists', 'ok']);
    const loser = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    expect(loser.reason.httpStatus).toBe(409);
    // the winner is whole
    expect(f.engine.get('twin').state).toBe('running');
    expect(manifestOf('twin').status).toBe('running');
    expect(f.driver.process('twin').alive).toBe(true);
  });

  it('a create and a fork racing to one name: one wins, the other gets already_exists', async () => {
    await f.engine.create({ name: 'src' });
    const { checkpoint } = await f.engine.createCheckpoint('src');
    f.driver.launchDelayMs = 20;
    const results = await Promise.allSettled([f.engine.create({ name: 'same' }), f.engine.fork('src', checkpoint.id, 'same')]);
    expect(results.map((r) => (r.status === 'fulfilled' ? 'ok' : (r.reason as SpritelyError).code)).sort()).toEqual(['already_exists', 'ok']);
    expect(f.engine.get('same').state).toBe('running');
  });

  it('refuses unknown sources and checkpoints, bad ids and taken names', async () => {
    await f.engine.create({ name: 'src' });
    expect(await codeOf(f.engine.fork('ghost', 'v1', 'x'))).toBe('not_found');
    expect(await codeOf(f.engine.fork('src', 'v9', 'x'))).toBe('not_found');
    expect(await codeOf(f.engine.fork('src', '../v1', 'x'))).toBe('invalid_argument');
    await f.engine.createCheckpoint('src');
    expect(await codeOf(f.engine.fork('src', 'v1', 'src'))).toBe('already_exists');
  });
});

describe('stop, start, destroy', () => {
  it('stop asks the guest to power off, meters the awake period, and start boots from the disk', async () => {
    await f.engine.create({ name: 'dev' });
    f.io.clock.now += 90_000;
    const stopped = await f.engine.stop('dev');
    expect(stopped.state).toBe('stopped');
    expect(stopped.usage.awakeSeconds).toBe(90);
    expect(stopped.usage.cpuSeconds).toBe(0.5);
    expect(f.driver.processes.has('dev')).toBe(false);
    expect(fs.existsSync(path.join(f.home, 'sprites/dev/runtime.json'))).toBe(false);
    const { sprite } = await f.engine.start('dev');
    expect(sprite.state).toBe('running');
    expect(f.driver.calls.filter((c) => c.startsWith('launch dev'))).toEqual(['launch dev from gold.state', 'launch dev']);
  });

  it('a guest that does not power off in time is synced and ended', async () => {
    await f.engine.create({ name: 'dev' });
    const proc = f.driver.process('dev');
    proc.guest.onShutdown = () => {};
    const v = await f.engine.stop('dev', { timeoutMs: 50 });
    expect(v.state).toBe('stopped');
    expect(proc.guest.execs.at(-1)?.path).toBe('/bin/sync');
    expect(f.logs.join('\n')).toMatch(/did not power off in time/);
  });

  it('force syncs and ends the machine without asking the guest', async () => {
    await f.engine.create({ name: 'dev' });
    const proc = f.driver.process('dev');
    await f.engine.stop('dev', { force: true });
    expect(proc.guest.execs.at(-1)?.path).toBe('/bin/sync');
    expect(f.driver.calls).not.toContain('power-down dev');
    expect(proc.alive).toBe(false);
  });

  it('destroy ends the machine and removes everything of the sprite', async () => {
    await f.engine.create({ name: 'dev' });
    const removed: string[] = [];
    f.engine.on('removed', (n) => removed.push(n));
    await f.engine.destroy('dev');
    expect(f.driver.processes.has('dev')).toBe(false);
    expect(fs.existsSync(path.join(f.home, 'sprites/dev'))).toBe(false);
    expect(f.driver.calls).toContain('release dev');
    expect(removed).toEqual(['dev']);
    expect(await codeOf(Promise.resolve().then(() => f.engine.get('dev')))).toBe('not_found');
  });
});

describe('a machine that ends on its own', () => {
  it('a crash is recorded with what the machine last said; start boots it again', async () => {
    await f.engine.create({ name: 'dev' });
    const seen: string[] = [];
    f.engine.on('sprite', (v) => seen.push(`${v.state}:${v.lastError}`));
    f.driver.process('dev').crash('segfault in the vCPU thread');
    // as soon as it shows crashed, it says why (the file follows)
    await waitFor(() => f.engine.get('dev').state === 'crashed', 2000, 0);
    expect(seen.filter((x) => x.startsWith('crashed:null'))).toEqual([]);
    expect(f.engine.get('dev').lastError).toBe('FakeVM exited unexpectedly: segfault in the vCPU thread');
    await waitFor(() => manifestOf('dev').status === 'crashed');
    expect(f.io.egress[0].closed).toBe(true);
    expect((await f.engine.start('dev')).sprite.state).toBe('running');
    expect(f.engine.get('dev').lastError).toBeNull();
  });

  it('a guest that powers itself off is recorded as stopped, not crashed', async () => {
    await f.engine.create({ name: 'dev' });
    f.driver.process('dev').powerOffFromGuest();
    await waitFor(() => f.engine.get('dev').state === 'stopped');
    expect(f.engine.get('dev').lastError).toBeNull();
    expect(f.driver.processes.has('dev')).toBe(false);
  });
});

describe('memory admission', () => {
  it('refuses a create past the limit, naming what to sleep; nothing is made', async () => {
    await f.engine.setMemoryLimit(1200);
    await f.engine.create({ name: 'a', memoryMiB: 512 });
    await f.engine.create({ name: 'b', memoryMiB: 256 });
    const err = (await f.engine.create({ name: 'c', memoryMiB: 512 }).catch((e) => e)) as SpritelyError;
    expect(err.code).toBe('resource_exhausted');
    expect(err.message).toMatch(/needs 512 MiB and awake sprites already use 768 MiB of the 1200 MiB limit; sleep a first/);
    expect(err.details).toMatchObject({ sleepFirst: ['a'] });
    expect(fs.existsSync(path.join(f.home, 'sprites/c'))).toBe(false);
  });

  it('reserves RAM for launches under way: two at once cannot both squeeze in', async () => {
    await f.engine.setMemoryLimit(1000);
    await f.engine.create({ name: 'warm', memoryMiB: 128 });
    await f.engine.destroy('warm');
    f.driver.launchDelayMs = 30;
    const results = await Promise.allSettled([f.engine.create({ name: 'a', memoryMiB: 600 }), f.engine.create({ name: 'b', memoryMiB: 600 })]);
    const refused = results.filter((r) => r.status === 'rejected') as PromiseRejectedResult[];
    expect(refused).toHaveLength(1);
    expect(refused[0].reason.message).toMatch(/other launches are under way/);
  });

  it('uses 80% of host RAM by default', () => {
    expect(f.engine.configView()).toEqual({ idleTimeoutSec: 300, memoryLimitMiB: Math.floor(8192 * 0.8), memoryLimitDefault: true, warmSpare: false, checkpointMounts: 4, spares: [] });
  });
});

async function waitFor(cond: () => boolean, ms = 2000, everyMs = 2): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => (everyMs ? setTimeout(r, everyMs) : setImmediate(r)));
  }
}
