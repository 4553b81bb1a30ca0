/**
 * Checkpoints on real QEMU: the whole running machine (disk + RAM + devices) captured and restored,
 * as a tree, from outside (CLI/API) and from inside (spritely-env), plus the faults: a daemon
 * killed mid-checkpoint and a data dir that fills up.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { daemonLog, startDaemon, waitFor, type TestDaemon } from './harness.ts';

let d: TestDaemon;

beforeAll(async () => {
  d = await startDaemon();
  await d.api.call('sprites.create', { name: 'dev' }, { timeoutMs: 600_000 });
});

afterAll(async () => {
  await d?.cleanup();
});

const sh = async (name: string, script: string) => {
  const r = await d.api.call('sprites.exec', { name, argv: ['sh', '-c', script] }, { timeoutMs: 120_000 });
  return r;
};
const out = async (name: string, script: string) => {
  const r = await sh(name, script);
  if (r.exitCode !== 0) throw new Error(`"${script}" exited ${r.exitCode}: ${r.stderr}\n${daemonLog(d)}`);
  return r.stdout.trim();
};
const cli = async (args: string[]) => {
  const r = await d.cli(args);
  if (r.code !== 0) throw new Error(`spritely ${args.join(' ')} exited ${r.code}: ${r.stderr}\n${daemonLog(d)}`);
  return r.stdout;
};
const list = (name: string) => d.api.call('checkpoints.list', { name });

describe('checkpoints', () => {
  it('the seed story: tool installed → v1 → system broken → restore v1 → it works and the tool is there', async () => {
    await out('dev', "printf '#!/bin/sh\\necho hello from the tool\\n' > /usr/local/bin/tool && chmod +x /usr/local/bin/tool");
    const created = JSON.parse(await cli(['checkpoint', 'create', 'dev', '-m', 'tool installed', '--json']));
    expect(created).toMatchObject({ id: 'v1', comment: 'tool installed', memory: true, parent: null, auto: false });
    expect(created.pauseMs).toBeGreaterThan(0);
    expect(created.bytes).toBeGreaterThan(1024 * 1024);

    await sh('dev', 'rm -rf /usr/bin/* /usr/local/bin/tool');
    expect((await sh('dev', 'ls /')).exitCode).not.toBe(0);

    const restored = await cli(['checkpoint', 'restore', 'dev', 'v1']);
    expect(restored).toMatch(/restored dev to v1 in .*undo with: spritely checkpoint restore dev v2/);
    expect(await out('dev', 'tool')).toBe('hello from the tool');
    expect(Number(await out('dev', 'ls /usr/bin | wc -l'))).toBeGreaterThan(100);
    const cps = await list('dev');
    expect(cps.map((c) => [c.id, c.parent, c.auto, c.current])).toEqual([
      ['v1', null, false, true],
      ['v2', 'v1', true, false],
    ]);
    // The guest clock was set after the restore (the saved one was behind).
    expect(Math.abs(Number(await out('dev', 'date +%s')) - Date.now() / 1000)).toBeLessThan(10);
  });

  it('resumes the exact moment: a counting process goes on from the checkpointed value', async () => {
    await out('dev', "setsid sh -c 'i=0; while :; do i=$((i+1)); echo $i > /dev/shm/count; sleep 0.2; done' >/dev/null 2>&1 < /dev/null &");
    await new Promise((r) => setTimeout(r, 3000));
    const { checkpoint } = await d.api.call('checkpoints.create', { name: 'dev', comment: 'counting' });
    const atCheckpoint = Number(await out('dev', 'cat /dev/shm/count'));
    await new Promise((r) => setTimeout(r, 4000));
    const later = Number(await out('dev', 'cat /dev/shm/count'));
    expect(later).toBeGreaterThan(atCheckpoint + 5);
    await d.api.call('checkpoints.restore', { name: 'dev', id: checkpoint.id });
    const back = Number(await out('dev', 'cat /dev/shm/count'));
    expect(back).toBeLessThan(later);
    expect(back).toBeGreaterThanOrEqual(atCheckpoint - 2);
    const after = await waitFor('counting to go on', async () => {
      const v = Number(await out('dev', 'cat /dev/shm/count'));
      return v > back + 2 ? v : null;
    }, 30_000);
    expect(after).toBeGreaterThan(back);
  });

  it('is a tree: restore v1 then checkpoint → a branch under v1; deleting re-parents children', async () => {
    await d.api.call('checkpoints.restore', { name: 'dev', id: 'v1', backup: false });
    const { checkpoint: branch } = await d.api.call('checkpoints.create', { name: 'dev', comment: 'branch' });
    expect(branch.parent).toBe('v1');
    expect(branch.current).toBe(true);
    const { checkpoint: leaf } = await d.api.call('checkpoints.create', { name: 'dev', comment: 'leaf' });
    expect(leaf.parent).toBe(branch.id);
    await cli(['checkpoint', 'delete', 'dev', branch.id]);
    const cps = await list('dev');
    expect(cps.find((c) => c.id === branch.id)).toBeUndefined();
    expect(cps.find((c) => c.id === leaf.id)).toMatchObject({ parent: 'v1', current: true });
    const disk = JSON.parse(execFileSync('qemu-img', ['info', '-U', '--output=json', path.join(d.home, 'sprites/dev/disk.qcow2')], { encoding: 'utf8' }));
    expect((disk.snapshots ?? []).map((s: { name: string }) => s.name).sort()).toEqual(cps.map((c) => c.id).sort());
    const tree = await cli(['checkpoint', 'list', 'dev']);
    expect(tree).toMatch(/\*v\d+ +leaf/);
    expect(tree).toMatch(/v1 +tool installed/);
  });

  it('forks: a new sprite from a checkpoint, with its own identity, diverging independently', async () => {
    await cli(['fork', 'dev', 'v1', 'dev2']);
    expect(await out('dev2', 'hostname')).toBe('dev2');
    expect(await out('dev2', 'tool')).toBe('hello from the tool');
    expect(await out('dev2', 'cat /etc/machine-id')).not.toBe(await out('dev', 'cat /etc/machine-id'));
    await out('dev2', 'echo fork-only > /root/side');
    await out('dev', 'echo source-only > /root/side2');
    expect((await sh('dev', 'cat /root/side')).exitCode).not.toBe(0);
    expect((await sh('dev2', 'cat /root/side2')).exitCode).not.toBe(0);
    expect(await list('dev2')).toEqual([]);
    await d.api.call('sprites.destroy', { name: 'dev2' });
  });

  it('works from inside: spritely-env checkpoint create / list / restore, no network needed', async () => {
    const id = await out('dev', 'spritely-env checkpoint create -m "from inside"');
    expect(id).toMatch(/^v\d+$/);
    expect(await out('dev', 'spritely-env checkpoint list')).toContain(`${id}  from inside`);
    const asJson = JSON.parse(await out('dev', 'spritely-env checkpoint list --json'));
    expect(asJson.find((c: { id: string }) => c.id === id)).toMatchObject({ comment: 'from inside', memory: true });
    await out('dev', 'echo after > /root/inside-marker');
    expect(await out('dev', `spritely-env checkpoint restore ${id}`)).toContain(`restoring ${id}`);
    await waitFor('the restore from inside', async () => (await list('dev')).find((c) => c.id === id)?.current, 60_000);
    await waitFor('the machine to answer again', async () => (await sh('dev', 'test ! -e /root/inside-marker')).exitCode === 0, 60_000);
    const bad = await sh('dev', 'spritely-env checkpoint restore v999');
    expect(bad.exitCode).toBe(1);
    expect(bad.stderr).toContain('no checkpoint v999');
  });

  it('refuses bad input clearly and changes nothing', async () => {
    // (what a checkpoint costs changes by itself: older RAM states are compressed in the background)
    const tree = async () => (await list('dev')).map(({ id, parent, comment, createdAt, memory, current, diskBytes }) => ({ id, parent, comment, createdAt, memory, current, diskBytes }));
    const before = await tree();
    const r1 = await d.cli(['checkpoint', 'restore', 'dev', 'v999']);
    expect(r1.code).toBe(1);
    expect(r1.stderr).toContain('no checkpoint v999');
    const r2 = await d.cli(['checkpoint', 'delete', 'dev', '../v1']);
    expect(r2.code).not.toBe(0);
    expect(r2.stderr).toMatch(/checkpoint id/);
    const r3 = await d.cli(['checkpoint', 'restore', 'ghost', 'v1']);
    expect(r3.stderr).toContain('No sprite named "ghost"');
    expect(await tree()).toEqual(before);
    const { checkpoint } = await d.api.call('checkpoints.create', { name: 'dev', comment: 'x'.repeat(9_990) + '\n\x1b[31mred\x07' });
    expect(checkpoint.comment.length).toBe(1000);
    expect(checkpoint.comment).not.toMatch(/[\x00-\x1f]/);
    const tooLong = await d.api.request('POST', '/v1/sprites/dev/checkpoints', JSON.stringify({ comment: 'y'.repeat(20_000) }));
    expect(tooLong.status).toBe(400);
    await d.api.call('checkpoints.delete', { name: 'dev', id: checkpoint.id });
  });

  it('works on a stopped sprite (disk only), and restoring that boots it', async () => {
    await d.api.call('sprites.stop', { name: 'dev', force: true });
    const { checkpoint } = await d.api.call('checkpoints.create', { name: 'dev', comment: 'stopped' });
    expect(checkpoint).toMatchObject({ memory: false, pauseMs: 0 });
    await d.api.call('sprites.start', { name: 'dev' }, { timeoutMs: 600_000 });
    await out('dev', 'echo later > /root/later');
    await d.api.call('checkpoints.restore', { name: 'dev', id: checkpoint.id, backup: false }, { timeoutMs: 600_000 });
    expect((await sh('dev', 'cat /root/later')).exitCode).not.toBe(0);
  });

  it('survives a daemon killed with -9 in the middle of a checkpoint', async () => {
    await out('dev', 'head -c 150M /dev/urandom > /dev/shm/fill');
    const pending = d.api.call('checkpoints.create', { name: 'dev', comment: 'interrupted' }).catch((e) => e);
    await new Promise((r) => setTimeout(r, 150));
    d.kill9();
    await pending;
    await d.restart();
    const s = await waitFor('the sprite to run again', async () => {
      const x = await d.api.call('sprites.get', { name: 'dev' });
      return x.state === 'running' ? x : null;
    }, 60_000);
    expect(s.state).toBe('running');
    expect(await out('dev', 'echo alive')).toBe('alive');
    const disk = path.join(d.home, 'sprites/dev/disk.qcow2');
    const cps = await list('dev');
    const names = (JSON.parse(execFileSync('qemu-img', ['info', '-U', '--output=json', disk], { encoding: 'utf8' })).snapshots ?? []).map((x: { name: string }) => x.name);
    expect(names.sort()).toEqual(cps.map((c) => c.id).sort());
    // a RAM state is kept raw or compressed (.lz4); a half-written one (.state.partial) never survives
    const stateOf = (id: string) => ['.state', '.state.lz4'].some((x) => fs.existsSync(path.join(d.home, 'sprites/dev/checkpoints', `${id}${x}`)));
    for (const c of cps.filter((x) => x.memory)) expect(stateOf(c.id)).toBe(true);
    expect(fs.readdirSync(path.join(d.home, 'sprites/dev/checkpoints')).filter((f) => f.endsWith('.state.partial'))).toEqual([]);
    // Every listed checkpoint with RAM restores, and the image is clean afterwards.
    for (const c of cps.filter((x) => x.memory).slice(-2)) {
      await d.api.call('checkpoints.restore', { name: 'dev', id: c.id, backup: false });
      expect(await out('dev', 'echo ok')).toBe('ok');
    }
    await d.api.call('sprites.stop', { name: 'dev', force: true });
    execFileSync('qemu-img', ['check', disk]);
  });
});

describe('a data dir that fills up during a checkpoint', () => {
  let small: TestDaemon | null = null;
  const mnt = fs.mkdtempSync(path.join(os.tmpdir(), 'sprsmall-'));

  afterAll(async () => {
    await small?.cleanup().catch(() => {});
    try {
      execFileSync('umount', [mnt]);
    } catch {
      /* not mounted */
    }
    fs.rmSync(mnt, { recursive: true, force: true });
  });

  it('gives a clear error; the sprite keeps running; nothing is lost or left behind', async () => {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=700M', 'tmpfs', mnt]);
    small = await startDaemon(path.join(mnt, 'home'));
    await small.api.call('sprites.create', { name: 'tight' }, { timeoutMs: 600_000 });
    const run = (script: string) => small!.api.call('sprites.exec', { name: 'tight', argv: ['sh', '-c', script] }, { timeoutMs: 120_000 });
    await run('echo precious > /root/precious && sync');
    // Leave ~60 MiB free: less than the guest's RAM state.
    const st = fs.statfsSync(mnt);
    const filler = path.join(mnt, 'filler');
    execFileSync('fallocate', ['-l', String(st.bavail * st.bsize - 60 * 1024 * 1024), filler]);
    const err = await small.api.call('checkpoints.create', { name: 'tight', comment: 'too big' }).catch((e) => e);
    expect(err).toBeInstanceOf(Error);
    expect(err.message).toMatch(/Could not checkpoint "tight".*(full|space)/i);
    expect((await small.api.call('sprites.get', { name: 'tight' })).state).toBe('running');
    expect((await run('cat /root/precious')).stdout).toBe('precious\n');
    expect(await small.api.call('checkpoints.list', { name: 'tight' })).toEqual([]);
    const cpDir = path.join(mnt, 'home/sprites/tight/checkpoints');
    expect(fs.existsSync(cpDir) ? fs.readdirSync(cpDir) : []).toEqual([]);
    const snaps = JSON.parse(execFileSync('qemu-img', ['info', '-U', '--output=json', path.join(mnt, 'home/sprites/tight/disk.qcow2')], { encoding: 'utf8' })).snapshots ?? [];
    expect(snaps).toEqual([]);
    // After making room, checkpoints work again.
    fs.rmSync(filler);
    const ok = await small.api.call('checkpoints.create', { name: 'tight', comment: 'fits now' });
    expect(ok.checkpoint.memory).toBe(true);
  });
});
