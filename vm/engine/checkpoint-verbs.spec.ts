import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { SpritelyError } from '../errors.ts';
import { timelineFile } from '../checkpoints/checkpoint-store.ts';
import { DEFAULT_KEEP_RAM } from './checkpoint-verbs.ts';
import { agentOf, makeFixture, type Fixture } from './spec-fixture.ts';

let f: Fixture;
beforeEach(async () => {
  f = await makeFixture();
  await f.engine.create({ name: 'dev' });
});
afterEach(async () => {
  await f.cleanup();
});

const dir = () => path.join(f.home, 'sprites/dev');
const ram = (id: string) => path.join(dir(), 'checkpoints', `${id}.state`);

describe('checkpoint', () => {
  it('of an awake sprite: disk snapshot and RAM at one paused instant, then it runs on', async () => {
    const announced: string[][] = [];
    f.engine.on('checkpoints', (name, cps) => announced.push([name, ...cps.map((c) => c.id)]));
    f.driver.process('dev').memory.x = '1';
    const { checkpoint, timings } = await f.engine.createCheckpoint('dev', { comment: 'before\nupgrade' });
    expect(checkpoint).toMatchObject({ id: 'v1', parent: null, comment: 'before upgrade', memory: true, auto: false, current: true });
    expect(checkpoint.ramBytes).toBe(fs.statSync(ram('v1')).size);
    expect(timings.pauseMs).toBe(checkpoint.pauseMs);
    expect(f.driver.calls.slice(-4)).toEqual(['pause dev', 'snapshot v1 dev', 'save dev', 'resume dev']);
    expect(await f.engine.machine('dev')!.state()).toBe('running');
    // announced at once; again once what deleting it would free is counted (in the background)
    expect(announced[0]).toEqual(['dev', 'v1']);
    await vi.waitFor(() => expect(f.engine.listCheckpoints('dev')[0].freeBytes).toBeTypeOf('number'));
    expect(announced.every((a) => a.join() === 'dev,v1')).toBe(true);
    expect((await f.engine.createCheckpoint('dev')).checkpoint).toMatchObject({ id: 'v2', parent: 'v1' });
  });

  it("flushes the guest's caches first through the spritely agent, or through qemu-guest-agent when that one cannot", async () => {
    const p = f.driver.process('dev');
    const syncs = () => p.guest.execs.filter((e) => e.path === '/bin/sync').length;
    // the spritely agent runs sync: qemu-guest-agent is not asked
    let ran = 0;
    agentOf(p).programs.set('sync', (io) => (ran++, io.exit(0)));
    await f.engine.createCheckpoint('dev');
    expect(ran).toBe(1);
    expect(syncs()).toBe(0);
    // sync fails in the spritely agent: qemu-guest-agent runs it
    agentOf(p).programs.set('sync', (io) => io.exit(1));
    await f.engine.createCheckpoint('dev');
    expect(syncs()).toBe(1);
  });

  it('of a stopped sprite: the disk alone, offline', async () => {
    await f.engine.stop('dev');
    const { checkpoint } = await f.engine.createCheckpoint('dev');
    expect(checkpoint).toMatchObject({ memory: false, ramBytes: 0, pauseMs: 0 });
    expect(f.driver.calls.at(-1)).toBe('offline-snapshot v1');
    expect(fs.existsSync(ram('v1'))).toBe(false);
  });

  it('of a sleeping sprite: its sleep state is the RAM (a hard link), and it stays asleep', async () => {
    await f.engine.sleep('dev');
    const { checkpoint } = await f.engine.createCheckpoint('dev');
    expect(checkpoint.memory).toBe(true);
    expect(fs.statSync(ram('v1')).ino).toBe(fs.statSync(path.join(dir(), 'sleep.state')).ino);
    expect(f.engine.get('dev').state).toBe('sleeping');
  });

  it('a failed save: the snapshot is deleted, no file is left, the sprite runs on unchanged', async () => {
    f.driver.failNext('save', 'write error: No space left on device');
    const err = (await f.engine.createCheckpoint('dev').catch((e) => e)) as SpritelyError;
    expect(err.code).toBe('resource_exhausted');
    expect(err.message).toBe('Could not checkpoint "dev": write error: No space left on device. The sprite is unchanged.');
    expect(f.driver.calls.slice(-3)).toEqual(['save dev', 'delete-snapshot v1 dev', 'resume dev']);
    expect(f.engine.listCheckpoints('dev')).toEqual([]);
    expect(fs.readdirSync(path.join(dir(), 'checkpoints'))).toEqual([]);
    expect(await f.engine.machine('dev')!.state()).toBe('running');
  });

  it(`keeps RAM for the newest ${DEFAULT_KEEP_RAM}; older ones keep their disk`, async () => {
    for (let i = 0; i <= DEFAULT_KEEP_RAM; i++) await f.engine.createCheckpoint('dev');
    const cps = f.engine.listCheckpoints('dev');
    expect(cps[0]).toMatchObject({ id: 'v1', memory: false, ramBytes: 0 });
    expect(cps.slice(1).every((c) => c.memory)).toBe(true);
    expect(fs.existsSync(ram('v1'))).toBe(false);
    expect(fs.existsSync(ram(`v${DEFAULT_KEEP_RAM + 1}`))).toBe(true);
  });
});

describe('restore', () => {
  it('takes an undo checkpoint, reverts the disk, resumes the saved RAM and sets the clock', async () => {
    const p = f.driver.process('dev');
    p.memory.counter = '1';
    p.writeFile('/etc/tool', 'installed');
    await f.engine.createCheckpoint('dev', { comment: 'good' });
    p.memory.counter = '2';
    p.writeFile('/etc/tool', 'broken');
    const r = await f.engine.restoreCheckpoint('dev', 'v1');
    expect(r.backup).toBe('v2');
    expect(r.sprite.state).toBe('running');
    const q = f.driver.process('dev');
    expect(q).not.toBe(p);
    expect(p.alive).toBe(false);
    expect(q.memory.counter).toBe('1');
    expect(q.readFile('/etc/tool')).toBe('installed');
    expect(f.driver.calls).toContain('launch dev from v1.state');
    // the clock is set through the guest agent, with fresh randomness (the restored RNG repeats itself)
    expect(agentOf(q).identities.at(-1)).toEqual({ timeNs: String(BigInt(f.io.clock.now) * 1_000_000n), seed: expect.any(String) });
    const cps = f.engine.listCheckpoints('dev');
    expect(cps.find((c) => c.id === 'v2')).toMatchObject({ auto: true, comment: 'before restoring v1', memory: true, current: false });
    expect(cps.find((c) => c.id === 'v1')?.current).toBe(true);
    // the undo checkpoint brings the later moment back
    await f.engine.restoreCheckpoint('dev', 'v2', { backup: false });
    expect(f.driver.process('dev').memory.counter).toBe('2');
    expect(f.engine.listCheckpoints('dev')).toHaveLength(2);
  });

  it('the undo checkpoint leaves the old machine paused once its state is saved, and it is quit from there', async () => {
    await f.engine.createCheckpoint('dev');
    const before = f.driver.calls.length;
    await f.engine.restoreCheckpoint('dev', 'v1');
    const calls = f.driver.calls.slice(before);
    // no resume between saving the undo state and ending the machine (it would only be quit)
    expect(calls.slice(0, 5)).toEqual(['pause dev', 'snapshot v2 dev', 'save dev', 'quit dev', 'apply-snapshot v1']);
    expect(calls).not.toContain('resume dev');
    // the undo checkpoint's RAM state is complete and recorded
    expect(fs.statSync(ram('v2')).size).toBeGreaterThan(0);
    expect(f.engine.listCheckpoints('dev').find((c) => c.id === 'v2')).toMatchObject({ memory: true });
  });

  it('an undo checkpoint that fails leaves the old machine running and nothing restored', async () => {
    await f.engine.createCheckpoint('dev');
    const p = f.driver.process('dev');
    p.memory.counter = 'after';
    f.driver.failNext('save', 'write error: No space left on device');
    const err = (await f.engine.restoreCheckpoint('dev', 'v1').catch((e) => e)) as SpritelyError;
    expect(err.message).toMatch(/^Could not checkpoint "dev": write error: No space left on device/);
    expect(f.driver.process('dev')).toBe(p);
    expect(await f.engine.machine('dev')!.state()).toBe('running');
    expect(p.memory.counter).toBe('after');
    expect(f.driver.calls).not.toContain('apply-snapshot v1');
    expect(f.engine.listCheckpoints('dev').map((c) => c.id)).toEqual(['v1']);
  });

  it('an undo checkpoint that fails after its state was saved (its record cannot be written) resumes the old machine', async () => {
    await f.engine.createCheckpoint('dev');
    const p = f.driver.process('dev');
    // the timeline was read before the pause; once the state is saved its file cannot be replaced
    const timeline = timelineFile(dir());
    const machine = f.engine.machine('dev')!;
    const save = machine.saveState.bind(machine);
    vi.spyOn(machine, 'saveState').mockImplementation(async (file, o) => {
      const n = await save(file, o);
      fs.rmSync(timeline);
      fs.mkdirSync(timeline);
      return n;
    });
    await expect(f.engine.restoreCheckpoint('dev', 'v1')).rejects.toThrow();
    expect(f.driver.calls.slice(-2)).toEqual(['save dev', 'resume dev']);
    expect(f.driver.process('dev')).toBe(p);
    expect(await f.engine.machine('dev')!.state()).toBe('running');
    expect(f.driver.calls).not.toContain('apply-snapshot v1');
  });

  it('a disk-only checkpoint boots from the restored disk', async () => {
    await f.engine.stop('dev');
    await f.engine.createCheckpoint('dev');
    const r = await f.engine.restoreCheckpoint('dev', 'v1', { backup: false });
    expect(r.sprite.state).toBe('running');
    expect(f.driver.calls.slice(-2)).toEqual(['apply-snapshot v1', 'launch dev']);
  });

  it('restoring while asleep leaves no stale sleep state', async () => {
    await f.engine.createCheckpoint('dev');
    await f.engine.sleep('dev');
    await f.engine.restoreCheckpoint('dev', 'v1');
    expect(fs.existsSync(path.join(dir(), 'sleep.state'))).toBe(false);
    expect(f.engine.get('dev').state).toBe('running');
  });

  it('a restore whose guest never comes back leaves the sprite crashed, with why', async () => {
    await f.engine.createCheckpoint('dev');
    f.driver.onLaunch = (p) => void (p.guest.silent = true);
    const err = (await f.engine.restoreCheckpoint('dev', 'v1', { backup: false }).catch((e) => e)) as SpritelyError;
    expect(err.message).toMatch(/^Restoring v1 of "dev" failed: could not reach the guest agent of dev: no answer to HELLO/);
    expect(f.engine.get('dev')).toMatchObject({ state: 'crashed', lastError: expect.stringMatching(/^restoring v1 failed/) });
    expect(f.driver.processes.has('dev')).toBe(false);
  });

  it('a RAM state saved under another device set boots the restored disk instead, and says so', async () => {
    await f.engine.createCheckpoint('dev');
    f.driver.hypervisorVersion = '2.0';
    const r = await f.engine.restoreCheckpoint('dev', 'v1', { backup: false });
    expect(r.sprite.state).toBe('running');
    expect(f.driver.calls.slice(-2)).toEqual(['apply-snapshot v1', 'launch dev']);
    expect(r.sprite.lastError).toMatch(/^Restored v1 without its RAM: the RAM state of v1 does not fit this FakeVM or device set any more; booted its disk instead/);
  });

  it('a RAM state that fails to load (an old checkpoint with no signature recorded) falls back to booting its disk', async () => {
    await f.engine.createCheckpoint('dev');
    const t = JSON.parse(fs.readFileSync(path.join(dir(), 'checkpoints.json'), 'utf8'));
    delete t.checkpoints[0].signature;
    fs.writeFileSync(path.join(dir(), 'checkpoints.json'), JSON.stringify(t));
    f.driver.hypervisorVersion = '2.0';
    const r = await f.engine.restoreCheckpoint('dev', 'v1', { backup: false });
    expect(f.driver.calls.slice(-3)).toEqual(['launch dev from v1.state', 'kill dev', 'launch dev']);
    expect(r.sprite).toMatchObject({ state: 'running', lastError: expect.stringMatching(/could not be restored .*booted its disk instead/) });
  });

  it('meters the awake period that the restore ends', async () => {
    await f.engine.createCheckpoint('dev');
    f.io.clock.now += 40_000;
    await f.engine.restoreCheckpoint('dev', 'v1', { backup: false });
    expect(f.engine.get('dev').usage.awakeSeconds).toBe(40);
  });
});

describe('delete', () => {
  it('deletes live while awake and offline when stopped; children move up', async () => {
    await f.engine.createCheckpoint('dev');
    await f.engine.createCheckpoint('dev');
    await f.engine.createCheckpoint('dev');
    await f.engine.deleteCheckpoint('dev', 'v2');
    expect(f.driver.calls.at(-1)).toBe('delete-snapshot v2 dev');
    expect(f.engine.listCheckpoints('dev').map((c) => `${c.id}<${c.parent}`)).toEqual(['v1<null', 'v3<v1']);
    expect(fs.existsSync(ram('v2'))).toBe(false);
    await f.engine.stop('dev');
    await f.engine.deleteCheckpoint('dev', 'v1');
    expect(f.driver.calls.at(-1)).toBe('offline-delete v1');
    expect(f.engine.listCheckpoints('dev').map((c) => `${c.id}<${c.parent}`)).toEqual(['v3<null']);
  });

  it('refuses unknown and malformed ids', async () => {
    expect(((await f.engine.deleteCheckpoint('dev', 'v7').catch((e) => e)) as SpritelyError).code).toBe('not_found');
    expect(((await f.engine.deleteCheckpoint('dev', 'x/..').catch((e) => e)) as SpritelyError).code).toBe('invalid_argument');
  });
});

describe('spritely-env from inside the guest', () => {
  /** Sends one request line on the guest's end of the env port and reads the answer. */
  async function ask(req: Record<string, unknown>): Promise<string> {
    await waitFor(() => f.driver.process('dev').guest.env !== null);
    const env = f.driver.process('dev').guest.env!;
    let got = '';
    const onData = (c: Buffer) => (got += c.toString());
    env.on('data', onData);
    env.write(JSON.stringify(req) + '\n');
    await waitFor(() => /\n=(OK|ERR)[^\n]*\n$/.test(got));
    env.off('data', onData);
    return got;
  }

  it('creates and lists checkpoints of this sprite only; a bad request gets an error reply', async () => {
    expect(await ask({ id: 'a1', op: 'checkpoint.create', comment: 'from inside' })).toBe('=BEGIN a1\nv1\n=OK\n');
    expect(await ask({ id: 'a2', op: 'checkpoint.list' })).toMatch(/^=BEGIN a2\n\*v1 {2}from inside {2}\[ram\+disk, .*\]\n=OK\n$/);
    expect(await ask({ id: 'a3', op: 'sprites.destroy', name: 'other' })).toMatch(/^=BEGIN a3\n=ERR bad request/);
  });

  it('mounts, diffs and unmounts from inside', async () => {
    expect(await ask({ id: 'c1', op: 'checkpoint.create' })).toBe('=BEGIN c1\nv1\n=OK\n');
    f.driver.process('dev').writeFile('/root/notes', 'hi\n');
    expect(await ask({ id: 'm1', op: 'checkpoint.mount', checkpoint: 'v1' })).toBe('=BEGIN m1\n/.spritely/checkpoints/v1\n=OK\n');
    expect(f.engine.listCheckpoints('dev')[0].mounted).toBe(true);
    const diff = await ask({ id: 'd1', op: 'checkpoint.diff', from: 'v1' });
    expect(diff).toMatch(/^=BEGIN d1\ndev: v1 → now: 2 added, 0 removed, 0 modified.*\nA {2}\/root {2}\(dir\)\nA {2}\/root\/notes {2}\(file, 3 B\)\n=OK\n$/);
    const asJson = await ask({ id: 'd2', op: 'checkpoint.diff', from: 'v1', paths: ['/root/notes'], json: true });
    expect(JSON.parse(asJson.split('\n')[1]).entries.map((e: { path: string }) => e.path)).toEqual(['/root/notes']);
    expect(await ask({ id: 'u1', op: 'checkpoint.unmount', checkpoint: 'v1' })).toBe('=BEGIN u1\n=OK\n');
    expect(f.engine.listCheckpoints('dev')[0].mounted).toBe(false);
    expect(await ask({ id: 'm2', op: 'checkpoint.mount', checkpoint: 'v9' })).toMatch(/^=BEGIN m2\n=ERR Sprite "dev" has no checkpoint v9/);
  });

  it('a restore asked from inside answers the request that made the checkpoint, in the restored machine', async () => {
    expect(await ask({ id: 'made', op: 'checkpoint.create' })).toBe('=BEGIN made\nv1\n=OK\n');
    const before = f.driver.process('dev');
    expect(await ask({ id: 'r1', op: 'checkpoint.restore', checkpoint: 'v1', backup: false })).toBe('=BEGIN r1\nrestoring v1…\n=OK\n');
    await waitFor(() => f.driver.processes.get('dev') !== before && f.driver.processes.get('dev')?.guest.env !== null, 3000);
    const env = f.driver.process('dev').guest.env!;
    let got = '';
    env.on('data', (c: Buffer) => (got += c.toString()));
    await waitFor(() => got.includes('=OK'));
    expect(got).toBe('=BEGIN made\nv1\n=OK\n');
  });
});

describe('limits on what a guest may checkpoint from inside', () => {
  const saved = { ...process.env };
  afterEach(() => {
    process.env.SPRITELY_GUEST_CHECKPOINTS_KEPT = saved.SPRITELY_GUEST_CHECKPOINTS_KEPT;
    process.env.SPRITELY_GUEST_CHECKPOINTS_PER_MINUTE = saved.SPRITELY_GUEST_CHECKPOINTS_PER_MINUTE;
    if (saved.SPRITELY_GUEST_CHECKPOINTS_KEPT === undefined) delete process.env.SPRITELY_GUEST_CHECKPOINTS_KEPT;
    if (saved.SPRITELY_GUEST_CHECKPOINTS_PER_MINUTE === undefined) delete process.env.SPRITELY_GUEST_CHECKPOINTS_PER_MINUTE;
  });

  async function ask(req: Record<string, unknown>): Promise<string> {
    await waitFor(() => f.driver.process('dev').guest.env !== null);
    const env = f.driver.process('dev').guest.env!;
    let got = '';
    const onData = (c: Buffer) => (got += c.toString());
    env.on('data', onData);
    env.write(JSON.stringify(req) + '\n');
    await waitFor(() => /\n=(OK|ERR)[^\n]*\n$/.test(got));
    env.off('data', onData);
    return got;
  }

  it('keeps at most N checkpoints made from inside; the user’s own are neither limited nor counted', async () => {
    process.env.SPRITELY_GUEST_CHECKPOINTS_KEPT = '2';
    process.env.SPRITELY_GUEST_CHECKPOINTS_PER_MINUTE = '100';
    const logs: string[] = [];
    f.engine.on('log', (m) => logs.push(m));
    expect(await ask({ id: 'g1', op: 'checkpoint.create' })).toBe('=BEGIN g1\nv1\n=OK\n');
    await f.engine.createCheckpoint('dev', { comment: 'mine' });
    expect(await ask({ id: 'g2', op: 'checkpoint.create' })).toBe('=BEGIN g2\nv3\n=OK\n');
    const refused = 'this sprite already keeps 2 checkpoints made from inside it, the limit is 2; delete some on the host (spritely checkpoint list dev, then spritely checkpoint delete dev ID)';
    expect(await ask({ id: 'g3', op: 'checkpoint.create' })).toBe(`=BEGIN g3\n=ERR ${refused}\n`);
    expect(logs).toContain(`sprite dev: refused a checkpoint asked from inside: ${refused}`);
    expect((await f.engine.createCheckpoint('dev')).checkpoint.id).toBe('v4');
    // a restore with an undo checkpoint would make a third: refused too; without one it goes ahead
    expect(await ask({ id: 'r1', op: 'checkpoint.restore', checkpoint: 'v2' })).toMatch(/^=BEGIN r1\n=ERR this sprite already keeps 2 .*, or restore without an undo checkpoint \(--no-backup\)\n$/);
    await f.engine.deleteCheckpoint('dev', 'v1');
    expect(await ask({ id: 'g4', op: 'checkpoint.create' })).toBe('=BEGIN g4\nv5\n=OK\n');
    expect(f.engine.listCheckpoints('dev').map((c) => c.id)).toEqual(['v2', 'v3', 'v4', 'v5']);
  });

  it('allows at most M asks a minute (creates and restores alike); the undo checkpoint of a guest’s restore counts as the guest’s', async () => {
    process.env.SPRITELY_GUEST_CHECKPOINTS_KEPT = '100';
    process.env.SPRITELY_GUEST_CHECKPOINTS_PER_MINUTE = '2';
    expect(await ask({ id: 'g1', op: 'checkpoint.create' })).toBe('=BEGIN g1\nv1\n=OK\n');
    f.io.clock.now += 20_000;
    expect(await ask({ id: 'g2', op: 'checkpoint.create' })).toBe('=BEGIN g2\nv2\n=OK\n');
    f.io.clock.now += 10_000;
    expect(await ask({ id: 'g3', op: 'checkpoint.create' })).toBe(
      '=BEGIN g3\n=ERR too many checkpoints and restores asked from inside this sprite: 2 in the last minute, the limit is 2 a minute; try again in 30 s\n',
    );
    expect(await ask({ id: 'r0', op: 'checkpoint.restore', checkpoint: 'v1' })).toMatch(/^=BEGIN r0\n=ERR too many/);
    await f.engine.createCheckpoint('dev', { comment: 'the user is not limited' });
    f.io.clock.now += 31_000;
    const before = f.driver.process('dev');
    expect(await ask({ id: 'r1', op: 'checkpoint.restore', checkpoint: 'v1' })).toBe('=BEGIN r1\nrestoring v1…\n=OK\n');
    await waitFor(() => f.driver.processes.get('dev') !== before && f.engine.listCheckpoints('dev').length === 4, 3000);
    const t = JSON.parse(fs.readFileSync(path.join(dir(), 'checkpoints.json'), 'utf8'));
    expect(t.checkpoints.map((c: { id: string; byGuest?: boolean; auto: boolean }) => [c.id, !!c.byGuest, c.auto])).toEqual([
      ['v1', true, false],
      ['v2', true, false],
      ['v3', false, false],
      ['v4', true, true],
    ]);
    expect(f.engine.listCheckpoints('dev')[0]).not.toHaveProperty('byGuest');
  });
});

async function waitFor(cond: () => boolean, ms = 2000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 2));
  }
}
