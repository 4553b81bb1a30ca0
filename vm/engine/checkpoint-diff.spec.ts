import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { formatReport } from '../checkpoints/diff-report.ts';
import type { SpritelyError } from '../errors.ts';
import { makeFixture, type Fixture } from './spec-fixture.ts';

// The fake driver's disks read as real ext4 images of their files, so these run the whole diff.
let f: Fixture;
beforeEach(async () => {
  f = await makeFixture();
  await f.engine.create({ name: 'dev' });
  const p = f.driver.process('dev');
  p.writeFile('/etc/motd', 'hello\n');
  p.writeFile('/etc/app.conf', 'port=80\n');
  await f.engine.createCheckpoint('dev', { comment: 'before' });
});
afterEach(async () => {
  await f.cleanup();
});

const paths = (r: { entries: { change: string; path: string }[] }) => r.entries.map((e) => `${e.change} ${e.path}`);

describe('checkpoint diff', () => {
  it('between a checkpoint and now (running): a temporary snapshot, deleted again; the guest paused only for it', async () => {
    const p = f.driver.process('dev');
    p.writeFile('/etc/app.conf', 'port=8080\n');
    p.writeFile('/usr/local/bin/tool', '#!/bin/sh\n');
    const r = await f.engine.diffCheckpoints('dev', { from: 'v1' });
    expect(paths(r)).toEqual(['modified /etc/app.conf', 'added /usr', 'added /usr/local', 'added /usr/local/bin', 'added /usr/local/bin/tool']);
    expect(r.counts).toEqual({ added: 4, removed: 0, modified: 1 });
    expect(r.entries[0]).toMatchObject({ changes: ['content', 'size'], before: { size: 8 }, after: { size: 10 } });
    const calls = f.driver.calls.join('\n');
    expect(calls).toMatch(/pause dev\nsnapshot diff-[0-9a-f]{8} dev\nresume dev/);
    expect(calls).toMatch(/delete-snapshot diff-[0-9a-f]{8} dev/);
    expect([...(await f.driver.disks.snapshots(`${f.home}/sprites/dev/disk.qcow2`))]).toEqual(['v1']);
    expect(f.engine.get('dev').state).toBe('running');
  });

  it('between two checkpoints, with patches, limited to paths', async () => {
    const p = f.driver.process('dev');
    p.writeFile('/etc/app.conf', 'port=8080\n');
    p.writeFile('/etc/motd', 'hello again\n');
    await f.engine.createCheckpoint('dev');
    const r = await f.engine.diffCheckpoints('dev', { from: 'v1', to: 'v2', patch: true, paths: ['/etc/app.conf'] });
    expect(paths(r)).toEqual(['modified /etc/app.conf']);
    expect(r.entries[0].patch).toEqual({ kind: 'text', noNewlineAtEnd: { before: false, after: false }, hunks: [{ aStart: 1, aLines: 1, bStart: 1, bLines: 1, lines: [{ op: '-', text: 'port=80' }, { op: '+', text: 'port=8080' }] }] });
    expect(formatReport(r)).toContain('   -port=80\n   +port=8080');
  });

  it('identical checkpoints: empty, without reading either filesystem', async () => {
    await f.engine.createCheckpoint('dev');
    const before = f.driver.calls.length;
    const r = await f.engine.diffCheckpoints('dev', { from: 'v1', to: 'v2' });
    expect(r.entries).toEqual([]);
    expect(r.changedBytes).toBe(0);
    expect(f.driver.calls.slice(before).some((c) => c.startsWith('read'))).toBe(false);
    expect(formatReport(r)).toMatch(/no differences/);
  });

  it('of a sleeping sprite: its disk as it is, nothing woken', async () => {
    f.driver.process('dev').writeFile('/new', 'x');
    await f.engine.sleep('dev');
    const r = await f.engine.diffCheckpoints('dev', { from: 'v1', to: 'now' });
    expect(paths(r)).toEqual(['added /new']);
    expect(f.engine.get('dev').state).toBe('sleeping');
  });

  it('names that are hostile to terminals come out inert', async () => {
    f.driver.process('dev').writeFile('/evil\x1b]0;pwned\x07\nname', 'x');
    const r = await f.engine.diffCheckpoints('dev', { from: 'v1' });
    expect(r.entries[0].path).toBe('/evil\x1b]0;pwned\x07\nname');
    const text = formatReport(r);
    expect(text).toContain('A  "/evil\\x1b]0;pwned\\x07\\x0aname"');
    expect(text).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f]/);
  });

  it('refuses unknown checkpoints clearly', async () => {
    const err = (await f.engine.diffCheckpoints('dev', { from: 'v9' }).catch((e) => e)) as SpritelyError;
    expect(err.code).toBe('not_found');
    expect(err.message).toMatch(/has no checkpoint v9/);
  });

  it('a daemon killed mid-diff leaves a temporary snapshot: the next one removes it', async () => {
    const disk = `${f.home}/sprites/dev/disk.qcow2`;
    await f.engine.machine('dev')!.snapshotDisk('diff-deadbeef');
    const e2 = await f.restart();
    expect([...(await f.driver.disks.snapshots(disk))]).toEqual(['v1']);
    expect(e2.listCheckpoints('dev').map((c) => c.id)).toEqual(['v1']);
  });
});
