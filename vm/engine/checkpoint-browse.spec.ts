import fs from 'node:fs';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { GuestExecCall } from '../driver/fake-guest.ts';
import type { SpritelyError } from '../errors.ts';
import { makeFixture, type Fixture } from './spec-fixture.ts';

let f: Fixture;
/** What the guest was asked to do with checkpoint views (the view script's arguments). */
let views: string[][];

beforeEach(async () => {
  f = await makeFixture();
  views = [];
  f.driver.onLaunch = (p) => {
    p.guest.onExec = (call: GuestExecCall) => {
      if (call.args[2] !== 'checkpoint-view') return undefined;
      views.push(call.args.slice(3));
      return undefined;
    };
  };
  await f.engine.create({ name: 'dev' });
  await f.engine.createCheckpoint('dev', { comment: 'one' });
  await f.engine.createCheckpoint('dev', { comment: 'two' });
});
afterEach(async () => {
  await f.cleanup();
});

const mounted = () => f.engine.listCheckpoints('dev').filter((c) => c.mounted).map((c) => c.id);

describe('checkpoints shown inside a sprite', () => {
  it('mount: the driver attaches the checkpoint, the guest mounts it at /.spritely/checkpoints/ID', async () => {
    const r = await f.engine.mountCheckpoint('dev', 'v1');
    expect(r).toEqual({ path: '/.spritely/checkpoints/v1', mounted: ['v1'] });
    expect(f.driver.calls).toContain('attach-view v1 dev');
    expect(views).toEqual([['mount', 'v1', 'spritely-v1']]);
    expect(mounted()).toEqual(['v1']);
    // again: nothing new is plugged in
    await f.engine.mountCheckpoint('dev', 'v1');
    expect(f.driver.calls.filter((c) => c.startsWith('attach-view'))).toHaveLength(2);
    expect(await f.engine.machine('dev')!.attachedSnapshots()).toEqual(['v1']);
  });

  it('a mounted checkpoint cannot be deleted, and says how to unmount it', async () => {
    await f.engine.mountCheckpoint('dev', 'v1');
    const err = (await f.engine.deleteCheckpoint('dev', 'v1').catch((e) => e)) as SpritelyError;
    expect(err.code).toBe('failed_precondition');
    expect(err.message).toBe('Checkpoint v1 of "dev" is mounted inside the sprite at /.spritely/checkpoints/v1, so it cannot be deleted now. Unmount it first: spritely checkpoint unmount dev v1 (inside: spritely-env checkpoint unmount v1).');
    expect(f.engine.listCheckpoints('dev').map((c) => c.id)).toEqual(['v1', 'v2']);
    await f.engine.unmountCheckpoint('dev', 'v1');
    expect(views.at(-1)).toEqual(['umount', 'v1']);
    expect(f.driver.calls).toContain('detach-view v1 dev');
    await f.engine.deleteCheckpoint('dev', 'v1');
    expect(f.engine.listCheckpoints('dev').map((c) => c.id)).toEqual(['v2']);
  });

  it('an unmount of a checkpoint in use is refused unless forced (then lazy)', async () => {
    await f.engine.mountCheckpoint('dev', 'v1');
    f.driver.process('dev').guest.onExec = (call) => (call.args[3] === 'umount' && call.args[5] !== 'lazy' ? { exitCode: 16, stderr: 'in use' } : undefined);
    const err = (await f.engine.unmountCheckpoint('dev', 'v1').catch((e) => e)) as SpritelyError;
    expect(err.message).toMatch(/^Checkpoint v1 is in use inside "dev" .*--force/);
    expect(mounted()).toEqual(['v1']);
    await f.engine.unmountCheckpoint('dev', 'v1', { force: true });
    expect(mounted()).toEqual([]);
  });

  it('keeps at most a few mounted: one more unmounts the least recently used one not in use', async () => {
    for (let i = 3; i <= 6; i++) await f.engine.createCheckpoint('dev');
    for (const id of ['v1', 'v2', 'v3', 'v4']) await f.engine.mountCheckpoint('dev', id);
    // v1 is busy inside: v2 goes instead
    f.driver.process('dev').guest.onExec = (call) => (call.args[3] === 'umount' && call.args[4] === 'v1' ? { exitCode: 16 } : undefined);
    await f.engine.mountCheckpoint('dev', 'v5');
    expect(mounted()).toEqual(['v1', 'v3', 'v4', 'v5']);
    f.driver.process('dev').guest.onExec = (call) => (call.args[3] === 'umount' ? { exitCode: 16 } : undefined);
    const err = (await f.engine.mountCheckpoint('dev', 'v6').catch((e) => e)) as SpritelyError;
    expect(err.code).toBe('resource_exhausted');
    expect(err.message).toMatch(/4 checkpoints are mounted in "dev" .* unmount one first/);
  });

  it('how many may be mounted is the daemon\'s setting, saved, and the next mount follows it', async () => {
    await f.engine.setCheckpointMounts(2);
    expect(f.engine.configView().checkpointMounts).toBe(2);
    await f.engine.createCheckpoint('dev');
    for (const id of ['v1', 'v2', 'v3']) await f.engine.mountCheckpoint('dev', id);
    expect(mounted()).toEqual(['v2', 'v3']);
    expect(JSON.parse(fs.readFileSync(f.layout.configFile, 'utf8'))).toMatchObject({ checkpointMounts: 2 });
  });

  it('a failed mount in the guest unplugs the disk again', async () => {
    f.driver.process('dev').guest.onExec = (call) => (call.args[3] === 'mount' ? { exitCode: 3, stderr: 'the disk of v1 did not appear in the guest' } : undefined);
    await expect(f.engine.mountCheckpoint('dev', 'v1')).rejects.toThrow('Could not mount v1 inside "dev": the disk of v1 did not appear in the guest');
    expect(await f.engine.machine('dev')!.attachedSnapshots()).toEqual([]);
  });

  it('survives a checkpoint of the live machine; restoring that checkpoint brings the views back as placeholders, unplugged, and clears the guest', async () => {
    await f.engine.mountCheckpoint('dev', 'v1');
    const { checkpoint } = await f.engine.createCheckpoint('dev', { comment: 'while mounted' });
    expect(mounted()).toEqual(['v1']); // the live machine is untouched
    expect(await f.engine.machine('dev')!.attachedSnapshots()).toEqual(['v1']);
    views.length = 0;
    await f.engine.restoreCheckpoint('dev', checkpoint.id, { backup: false });
    // the fake driver, like QEMU, refuses a state whose views the launch does not re-create
    expect(f.driver.calls).toContain(`launch dev from ${checkpoint.id}.state`);
    expect(await f.engine.machine('dev')!.attachedSnapshots()).toEqual([]);
    expect(mounted()).toEqual([]);
    await vi.waitFor(() => expect(views).toContainEqual(['reset']));
  });

  it('sleep keeps what was mounted in the state; wake re-creates and unplugs it, the guest is cleared; nothing stays mounted', async () => {
    await f.engine.mountCheckpoint('dev', 'v2');
    await f.engine.sleep('dev');
    expect(f.driver.processes.has('dev')).toBe(false);
    await f.engine.wake('dev');
    expect(f.engine.get('dev').lastError).toBeNull();
    expect(await f.engine.machine('dev')!.attachedSnapshots()).toEqual([]);
    expect(mounted()).toEqual([]);
    await vi.waitFor(() => expect(views).toContainEqual(['reset']));
    // and it mounts again
    await f.engine.mountCheckpoint('dev', 'v2');
    expect(mounted()).toEqual(['v2']);
  });

  it('a fork of a checkpoint taken while mounted starts clean', async () => {
    await f.engine.mountCheckpoint('dev', 'v1');
    const { checkpoint } = await f.engine.createCheckpoint('dev');
    await f.engine.fork('dev', checkpoint.id, 'twin');
    expect(f.engine.get('twin').state).toBe('running');
    expect(await f.engine.machine('twin')!.attachedSnapshots()).toEqual([]);
  });

  it('stop and restore end the views with the machine', async () => {
    await f.engine.mountCheckpoint('dev', 'v1');
    await f.engine.restoreCheckpoint('dev', 'v2', { backup: false });
    expect(mounted()).toEqual([]);
    await f.engine.mountCheckpoint('dev', 'v1');
    await f.engine.stop('dev', { force: true });
    expect(mounted()).toEqual([]);
    // a stopped sprite's checkpoint is deletable again
    await f.engine.deleteCheckpoint('dev', 'v1');
  });

  it('a restarted daemon knows what the running machine has mounted', async () => {
    await f.engine.mountCheckpoint('dev', 'v1');
    const e2 = await f.restart();
    expect(e2.listCheckpoints('dev').find((c) => c.id === 'v1')!.mounted).toBe(true);
    await expect(e2.deleteCheckpoint('dev', 'v1')).rejects.toThrow(/is mounted inside the sprite/);
  });

  it('mounting wakes a sleeping sprite; a stopped one is refused', async () => {
    await f.engine.sleep('dev');
    await f.engine.mountCheckpoint('dev', 'v1');
    expect(f.engine.get('dev').state).toBe('running');
    await f.engine.stop('dev', { force: true });
    await expect(f.engine.mountCheckpoint('dev', 'v1')).rejects.toThrow(/stopped/);
  });
});
