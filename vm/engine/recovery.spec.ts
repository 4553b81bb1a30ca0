import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { makeFixture, type Fixture } from './spec-fixture.ts';

let f: Fixture;
beforeEach(async () => {
  f = await makeFixture();
  await f.engine.create({ name: 'dev' });
});
afterEach(async () => {
  await f.cleanup();
});

const file = (...p: string[]) => path.join(f.home, 'sprites', ...p);
const manifest = (name = 'dev') => JSON.parse(fs.readFileSync(file(name, 'sprite.json'), 'utf8'));
const editManifest = (change: (m: any) => void, name = 'dev') => {
  const m = manifest(name);
  change(m);
  fs.writeFileSync(file(name, 'sprite.json'), JSON.stringify(m));
};
/** The daemon dies: its machines run on, nobody watches them. */
const daemonDies = () => f.engine.detachAll();

describe('a daemon restart', () => {
  it('re-attaches to a machine that kept running, without launching anything', async () => {
    const pid = f.engine.get('dev').pid;
    daemonDies();
    const launches = f.driver.calls.filter((c) => c.startsWith('launch')).length;
    await f.restart();
    expect(f.engine.get('dev')).toMatchObject({ state: 'running', pid });
    expect(f.driver.calls.filter((c) => c.startsWith('launch'))).toHaveLength(launches);
    expect(f.logs.join('\n')).toMatch(`sprite dev: re-attached to FakeVM pid ${pid}`);
    // and watches it again
    f.driver.process('dev').crash('later');
    await waitFor(() => f.engine.get('dev').lastError !== null);
    expect(f.engine.get('dev').lastError).toBe('FakeVM exited unexpectedly: later');
  });

  it('a machine that died while no daemon watched: crashed, and it says why', async () => {
    daemonDies();
    f.driver.process('dev').end('crash');
    await f.restart();
    expect(f.engine.get('dev')).toMatchObject({ state: 'crashed', lastError: 'FakeVM is no longer running (it was killed or the host restarted)' });
  });

  it('a guest that powered off while no daemon watched: quit and stopped', async () => {
    daemonDies();
    const p = f.driver.process('dev');
    p.powerOffFromGuest();
    await f.restart();
    expect(f.engine.get('dev').state).toBe('stopped');
    expect(p.alive).toBe(false);
    expect(fs.existsSync(file('dev', 'runtime.json'))).toBe(false);
  });

  it.each(['paused', 'saving'] as const)('a machine left %s mid-checkpoint or mid-sleep is repaired and re-attached', async (state) => {
    daemonDies();
    f.driver.process('dev').state = state;
    await f.restart();
    expect(f.driver.calls.slice(-1)).toEqual(['repair dev']);
    expect(f.driver.process('dev').state).toBe('running');
    expect(f.engine.get('dev').state).toBe('running');
  });

  it('a create that never finished is removed, its machine with it', async () => {
    await f.engine.create({ name: 'half' });
    daemonDies();
    editManifest((m) => (m.status = 'creating'), 'half');
    const p = f.driver.process('half');
    await f.restart();
    expect(f.engine.list().map((s) => s.name)).toEqual(['dev']);
    expect(fs.existsSync(file('half'))).toBe(false);
    expect(p.alive).toBe(false);
    expect(f.logs.join('\n')).toMatch('sprite half: removed an unfinished create');
  });

  it('a sleep killed after its state was recorded but before the machine quit: asleep, the machine gone', async () => {
    f.driver.process('dev').memory.moment = 'saved';
    // what sleep does up to the point the daemon dies: the state saved and recorded, the machine still there
    const m = f.engine.machine('dev')!;
    await m.saveState(file('dev', 'sleep.state'));
    daemonDies();
    editManifest((x) => {
      x.status = 'sleeping';
      x.sleep = { file: file('dev', 'sleep.state'), signature: 'fake-1.0-512-1', savedAt: '2030-01-01T00:00:00Z' };
    });
    const p = f.driver.process('dev');
    await f.restart();
    expect(f.engine.get('dev').state).toBe('sleeping');
    expect(p.alive).toBe(false);
    expect(fs.existsSync(file('dev', 'runtime.json'))).toBe(false);
    await f.engine.wake('dev');
    expect(f.driver.process('dev').memory.moment).toBe('saved');
  });

  it('a restore killed after its undo checkpoint but before the old machine quit: that machine runs on, the undo checkpoint is kept', async () => {
    await f.engine.createCheckpoint('dev');
    const p = f.driver.process('dev');
    p.memory.moment = 'before the restore';
    // the daemon dies while the old machine (paused once its undo state was saved) is being quit
    const m = f.engine.machine('dev')!;
    let quitting!: () => void;
    const atQuit = new Promise<void>((r) => (quitting = r));
    m.quit = () => (quitting(), new Promise<void>(() => {}));
    void f.engine.restoreCheckpoint('dev', 'v1').catch(() => {});
    await atQuit;
    expect(await m.state()).not.toBe('running');
    daemonDies();
    await f.restart();
    expect(f.engine.get('dev').state).toBe('running');
    expect(f.driver.process('dev')).toBe(p);
    expect(p.state).toBe('running');
    expect(p.memory.moment).toBe('before the restore');
    expect(f.engine.listCheckpoints('dev').find((c) => c.id === 'v2')).toMatchObject({ comment: 'before restoring v1', memory: true });
  });

  it('sleeping without its state file: stopped, boots from its disk, and says so', async () => {
    await f.engine.sleep('dev');
    daemonDies();
    fs.rmSync(file('dev', 'sleep.state'));
    await f.restart();
    expect(f.engine.get('dev')).toMatchObject({ state: 'stopped', lastError: 'Its saved RAM state was missing; it boots from its disk.' });
    expect(manifest().sleep).toBeNull();
    expect((await f.engine.start('dev')).sprite.state).toBe('running');
  });

  it('a stopped sprite whose machine still runs (stale runtime file): the machine is ended', async () => {
    daemonDies();
    editManifest((m) => (m.status = 'stopped'));
    const p = f.driver.process('dev');
    await f.restart();
    expect(f.engine.get('dev').state).toBe('stopped');
    expect(p.alive).toBe(false);
  });

  it('reconciles checkpoints with the disk: orphan snapshots and stray RAM files go, lost snapshots are dropped, lost RAM marks disk-only', async () => {
    await f.engine.createCheckpoint('dev');
    await f.engine.createCheckpoint('dev');
    await f.engine.createCheckpoint('dev');
    const m = f.engine.machine('dev')!;
    // a checkpoint the daemon died in the middle of: the snapshot taken, never recorded
    await m.snapshotDisk('v4');
    await m.deleteDiskSnapshot('v2');
    fs.rmSync(file('dev', 'checkpoints', 'v3.state'));
    fs.writeFileSync(file('dev', 'checkpoints', 'v4.state.partial'), 'half');
    fs.writeFileSync(file('dev', 'checkpoints', 'v9.state'), 'nobody owns me');
    daemonDies();
    await f.restart();
    expect(f.engine.listCheckpoints('dev').map((c) => `${c.id}:${c.memory}`)).toEqual(['v1:true', 'v3:false']);
    expect(fs.readdirSync(file('dev', 'checkpoints'))).toEqual(['v1.state']);
    expect([...(await f.driver.disks.snapshots(file('dev', 'disk.qcow2')))].sort()).toEqual(['v1', 'v3']);
    // the live machine deleted the orphan (its disk is open)
    expect(f.driver.calls).toContain('delete-snapshot v4 dev');
    const log = f.logs.join('\n');
    expect(log).toMatch('sprite dev: removed an unfinished checkpoint v4');
    expect(log).toMatch('sprite dev: checkpoint v2 has no disk snapshot any more; dropped it');
  });

  it('reconciles a stopped sprite offline', async () => {
    await f.engine.createCheckpoint('dev');
    await f.engine.stop('dev');
    daemonDies();
    await f.driver.disks.createSnapshot(file('dev', 'disk.qcow2'), 'v2');
    await f.restart();
    expect(f.driver.calls.at(-1)).toBe('offline-delete v2');
    expect(f.engine.listCheckpoints('dev').map((c) => c.id)).toEqual(['v1']);
  });

  it('keeps going when one sprite cannot be loaded', async () => {
    await f.engine.create({ name: 'ok' });
    daemonDies();
    fs.writeFileSync(file('dev', 'sprite.json'), '{"torn":');
    await f.restart();
    expect(f.engine.list().map((s) => s.name)).toEqual(['ok']);
    expect(f.logs.join('\n')).toMatch(/sprite dev: could not be loaded: .*not JSON/);
  });

  it('metering survives: usage is computed from the manifest and the running machine', async () => {
    f.io.clock.now += 120_000;
    await f.engine.sleep('dev');
    daemonDies();
    await f.restart();
    expect(f.engine.get('dev').usage.awakeSeconds).toBe(120);
    await f.engine.wake('dev');
    f.io.clock.now += 30_000;
    expect(f.engine.get('dev').usage).toMatchObject({ awakeSeconds: 150, cpuSeconds: 1 });
  });
});

async function waitFor(cond: () => boolean, ms = 2000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 2));
  }
}
