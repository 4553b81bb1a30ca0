import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { makeFixture, type Fixture } from './spec-fixture.ts';

// The fixture's "compression" copies the bytes (the fake driver restores a .lz4 state like a raw one);
// `compressGate` holds it mid-way.
let f: Fixture;
let release: () => void;
beforeEach(async () => {
  f = await makeFixture({ compress: true });
  await f.engine.create({ name: 'dev' });
});
afterEach(async () => {
  release?.();
  await f.cleanup();
});

const dir = () => path.join(f.home, 'sprites/dev/checkpoints');
const files = () => fs.readdirSync(dir()).sort();
const hold = () => {
  f.io.compressGate = new Promise<void>((r) => (release = () => {
    f.io.compressGate = null;
    r();
  }));
};

describe('RAM states compressed after the checkpoint', () => {
  it('the raw state is written while paused; the compressed one replaces it afterwards; a restore reads it', async () => {
    hold();
    f.driver.process('dev').memory.counter = '41';
    const { checkpoint } = await f.engine.createCheckpoint('dev');
    expect(files()).toEqual(['v1.state', 'v1.state.lz4.partial']); // still compressing: the raw one is the state
    expect(checkpoint.compressed).toBe(false);
    release();
    await f.engine.compressor.idle();
    expect(files()).toEqual(['v1.state.lz4']);
    expect(f.engine.listCheckpoints('dev')[0]).toMatchObject({ compressed: true, memory: true });
    await f.engine.restoreCheckpoint('dev', 'v1', { backup: false });
    expect(f.driver.calls).toContain('launch dev from v1.state.lz4');
    expect(f.driver.process('dev').memory.counter).toBe('41');
  });

  it('a restore of a state being compressed calls the compression off: the raw file it was given stays', async () => {
    hold();
    f.driver.process('dev').memory.counter = '7';
    await f.engine.createCheckpoint('dev');
    const restoring = f.engine.restoreCheckpoint('dev', 'v1', { backup: false });
    release(); // the compression would finish now, while the new machine reads its state
    await restoring;
    await f.engine.compressor.idle();
    expect(f.driver.calls).toContain('launch dev from v1.state');
    expect(files()).toEqual(['v1.state']);
    expect(f.driver.process('dev').memory.counter).toBe('7');
  });

  it('a wake while its sleep state is being compressed wakes from the raw one', async () => {
    await f.engine.sleep('dev');
    hold();
    f.engine.compressor.enqueue(path.join(f.home, 'sprites/dev/sleep.state'), 'dev');
    const waking = f.engine.wake('dev');
    release();
    await waking;
    await f.engine.compressor.idle();
    expect(f.driver.calls).toContain('launch dev from sleep.state');
    expect(f.engine.get('dev').state).toBe('running');
  });

  it('a daemon that exits mid-compression ends lz4 and leaves the raw state', async () => {
    hold();
    await f.engine.createCheckpoint('dev');
    f.engine.detachAll();
    await f.engine.compressor.idle();
    expect(files()).toEqual(['v1.state']);
  });

  it('deleting a checkpoint mid-compression cancels it and leaves no file', async () => {
    hold();
    await f.engine.createCheckpoint('dev');
    await f.engine.deleteCheckpoint('dev', 'v1');
    release();
    await f.engine.compressor.idle();
    expect(files()).toEqual([]);
  });

  it('a daemon killed mid-compression loses nothing: the raw state stays the state, the partial goes, compression starts over', async () => {
    hold();
    await f.engine.createCheckpoint('dev');
    expect(files()).toEqual(['v1.state', 'v1.state.lz4.partial']);
    // the daemon dies here, leaving the half-written output behind; a new one starts on the same files
    f.engine.detachAll();
    fs.writeFileSync(path.join(dir(), 'v1.state.lz4.partial'), 'half');
    const e2 = await f.restart();
    expect(e2.listCheckpoints('dev')[0]).toMatchObject({ id: 'v1', memory: true });
    release();
    await e2.compressor.idle();
    expect(files()).toEqual(['v1.state.lz4']);
  });

  it('killed between the rename and the removal of the raw state: the complete compressed one wins', async () => {
    await f.engine.createCheckpoint('dev');
    await f.engine.compressor.idle();
    fs.writeFileSync(path.join(dir(), 'v1.state'), 'stale raw copy');
    await f.restart();
    expect(files()).toEqual(['v1.state.lz4']);
  });

  it('pruning old RAM states removes their compressed form too', async () => {
    for (let i = 0; i < 10; i++) await f.engine.createCheckpoint('dev');
    await f.engine.compressor.idle();
    const withRam = f.engine.listCheckpoints('dev').filter((c) => c.memory).map((c) => c.id);
    expect(withRam).toHaveLength(8);
    expect(files()).toEqual(withRam.map((id) => `${id}.state.lz4`).sort());
  });

  it('a fork links the compressed state and restores from it', async () => {
    await f.engine.createCheckpoint('dev');
    await f.engine.compressor.idle();
    await f.engine.fork('dev', 'v1', 'twin');
    expect(f.driver.calls).toContain('launch twin from fork-source.state.lz4');
    expect(fs.readdirSync(path.join(f.home, 'sprites/twin')).filter((x) => x.includes('state'))).toEqual([]);
  });

  it('keeps the newest RAM states raw (fast to restore) and compresses them once older', async () => {
    await f.cleanup();
    f = await makeFixture({ compress: true, keepRecentRaw: 2 });
    await f.engine.create({ name: 'dev' });
    for (let i = 0; i < 2; i++) await f.engine.createCheckpoint('dev');
    await f.engine.compressor.idle();
    expect(files()).toEqual(['v1.state', 'v2.state']);
    await f.engine.createCheckpoint('dev');
    await f.engine.compressor.idle();
    expect(files()).toEqual(['v1.state.lz4', 'v2.state', 'v3.state']);
  });

  it('compresses a sleep state; the wake reads it', async () => {
    f.driver.process('dev').memory.k = 'v';
    await f.engine.sleep('dev');
    await f.engine.compressor.idle();
    expect(fs.readdirSync(path.join(f.home, 'sprites/dev')).filter((x) => x.startsWith('sleep'))).toEqual(['sleep.state.lz4']);
    await f.engine.wake('dev');
    expect(f.driver.calls).toContain('launch dev from sleep.state.lz4');
    expect(f.driver.process('dev').memory.k).toBe('v');
    expect(fs.readdirSync(path.join(f.home, 'sprites/dev')).filter((x) => x.startsWith('sleep'))).toEqual([]);
  });

  it('says what deleting each checkpoint would free: its RAM state and what only its disk snapshot holds', async () => {
    f.driver.process('dev').writeFile('/big', 'x'.repeat(5000));
    await f.engine.createCheckpoint('dev');
    f.driver.process('dev').writeFile('/big', 'y'.repeat(5000));
    await f.engine.createCheckpoint('dev');
    await f.engine.compressor.idle();
    f.io.clock.now += 60_000;
    f.engine.listCheckpoints('dev');
    await new Promise((r) => setTimeout(r, 50));
    const [v1, v2] = f.engine.listCheckpoints('dev');
    expect(v1.freeBytes).toBe(5000 + v1.ramBytes);
    expect(v2.freeBytes).toBe(v2.ramBytes); // v2's file is the live one: deleting v2 frees only its RAM
  });
});
