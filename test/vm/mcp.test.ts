/**
 * `spritely mcp` end to end: the SDK's own Client spawns the real server (`node bin/spritely.js
 * mcp`) over stdio against a real daemon and a real sprite, and drives it the way a coding agent
 * would: create, exec, write/read/list files, checkpoint, break the machine, restore, fork — and
 * the errors a model must be able to read.
 */
import crypto from 'node:crypto';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, daemonLog, startDaemon, type TestDaemon } from './harness.ts';

let d: TestDaemon;
let client: Client;
let transport: StdioClientTransport;
let serverStderr = '';

interface ToolResult {
  isError?: boolean;
  content: Array<{ type: string; text: string }>;
  structuredContent?: Record<string, any>;
}

const STEP_MS = 180_000;

beforeAll(async () => {
  d = await startDaemon();
  const env = Object.fromEntries(Object.entries(d.env).filter((e): e is [string, string] => e[1] !== undefined));
  transport = new StdioClientTransport({ command: process.execPath, args: [BIN, 'mcp'], env, stderr: 'pipe' });
  transport.stderr?.on('data', (c) => (serverStderr += c));
  client = new Client({ name: 'spritely-test', version: '1.0.0' });
  await client.connect(transport, { timeout: 60_000 });
});

afterAll(async () => {
  await client?.close().catch(() => {});
  await d?.cleanup();
});

/** Calls a tool; fails the test (with the server's stderr and the daemon log) if it errors unexpectedly. */
async function call(name: string, args: Record<string, unknown>, expectError = false): Promise<ToolResult> {
  const r = (await client.callTool({ name, arguments: args }, undefined, { timeout: STEP_MS })) as ToolResult;
  if (!!r.isError !== expectError) throw new Error(`${name}(${JSON.stringify(args).slice(0, 300)}) ${expectError ? 'did not fail' : 'failed'}: ${text(r)}\nserver stderr: ${serverStderr}\n${daemonLog(d)}`);
  return r;
}
const text = (r: ToolResult) => r.content.map((c) => c.text).join('\n');
const exec = async (args: Record<string, unknown>) => (await call('exec', { name: 'dev', ...args })).structuredContent!;
const sh = async (command: string) => {
  const r = await exec({ command });
  if (r.exitCode !== 0) throw new Error(`${command} exited ${r.exitCode}: ${r.stderr}`);
  return r.stdout as string;
};

const NOTES = 'hello from MCP ✓\nsecond line\n';
const BINARY = Buffer.from([...Array(256).keys()].map((i) => i).concat([0, 0, 255]));
const ODD_NAME = `/root/project/it's a "file" $(touch pwned); rm -rf x.txt`;

describe('spritely mcp (real daemon, real sprite)', () => {
  it('lists every tool, each with a description; none destroys a sprite', async () => {
    const { tools } = await client.listTools();
    const names = tools.map((t) => t.name);
    for (const n of ['sprite_create', 'sprite_list', 'sprite_sleep', 'sprite_wake', 'sprite_url', 'sprite_fork', 'exec', 'file_read', 'file_write', 'file_list', 'checkpoint_create', 'checkpoint_list', 'checkpoint_restore', 'checkpoint_delete']) {
      const t = tools.find((x) => x.name === n);
      expect(t, n).toBeDefined();
      expect(t!.description!.length, n).toBeGreaterThan(60);
    }
    expect(names.filter((n) => /destroy/.test(n))).toEqual([]);
    expect(client.getServerVersion()?.name).toBe('spritely');
  });

  it('creates a sprite, which sprite_list shows', async () => {
    const r = await call('sprite_create', { name: 'dev' });
    expect(r.structuredContent!.sprite).toMatchObject({ name: 'dev', state: 'running', network: 'internet' });
    expect(text(r)).toMatch(/^Created sprite dev in /);
    const l = await call('sprite_list', {});
    expect(l.structuredContent!.sprites.map((s: { name: string }) => s.name)).toEqual(['dev']);
    expect(text(l)).toMatch(/dev +running/);
  });

  it('exec: exit code, stdout and stderr apart, cwd, env, stdin, timeout, output cap', async () => {
    const r = await call('exec', { name: 'dev', command: 'echo out; echo err >&2; exit 3' });
    expect(r.structuredContent).toMatchObject({ exitCode: 3, signal: null, stdout: 'out\n', stderr: 'err\n', timedOut: false, truncated: false, checkpoint: null });
    expect(text(r)).toBe(`exit code 3 (${r.structuredContent!.durationMs < 1000 ? `${r.structuredContent!.durationMs} ms` : `${(r.structuredContent!.durationMs / 1000).toFixed(1)} s`})\n--- stdout ---\nout\n--- stderr ---\nerr`);
    expect(await exec({ argv: ['pwd'], cwd: '/tmp' })).toMatchObject({ exitCode: 0, stdout: '/tmp\n' });
    expect(await exec({ argv: ['pwd'] })).toMatchObject({ stdout: '/root\n' });
    expect(await exec({ argv: ['sh', '-c', 'echo "$GREETING"'], env: { GREETING: 'hi there' } })).toMatchObject({ stdout: 'hi there\n' });
    // argv is passed as it is: nothing expands.
    expect(await exec({ argv: ['echo', '$HOME', '*', '$(id -u)'] })).toMatchObject({ stdout: '$HOME * $(id -u)\n' });
    expect(await exec({ argv: ['cat'], stdin: 'piped in' })).toMatchObject({ stdout: 'piped in' });
    // The command is really ended at the timeout (not left running until it ends by itself), with
    // whatever it started in the foreground.
    const slow = await exec({ command: 'sleep 100 & sleep 100; echo never', timeout_ms: 3000 });
    expect(slow).toMatchObject({ timedOut: true, exitCode: null, stdout: '' });
    expect(slow.durationMs).toBeGreaterThanOrEqual(3000);
    expect(slow.durationMs).toBeLessThan(30_000);
    const alive = `for p in /proc/[0-9]*; do [ "$(cat $p/comm 2>/dev/null)" = sleep ] || continue; s=$(awk '/^State:/{print $2}' $p/status 2>/dev/null); case "$s" in R|S|D|T) echo "$p $s";; esac; done`;
    expect(await sh(alive)).toBe('');
    const stubborn = await exec({ command: "trap '' TERM; sleep 30", timeout_ms: 1000 });
    expect(stubborn).toMatchObject({ timedOut: true, exitCode: null });
    expect(stubborn.durationMs).toBeLessThan(20_000);
    // A program's own exit status 124 is not a timeout.
    expect(await exec({ command: 'exit 124' })).toMatchObject({ exitCode: 124, timedOut: false });
    const big = await exec({ command: "head -c 5000 /dev/zero | tr '\\0' a", max_output_bytes: 100 });
    expect(big).toMatchObject({ truncated: true, stdout: 'a'.repeat(100) });
  });

  it('file_write / file_read round-trip text and binary; file_list shows them', async () => {
    const w = await call('file_write', { name: 'dev', path: '/root/project/notes.txt', content: NOTES });
    expect(w.structuredContent).toEqual({ path: '/root/project/notes.txt', bytes: Buffer.byteLength(NOTES), mode: '0644' });
    const r = await call('file_read', { name: 'dev', path: '/root/project/notes.txt' });
    expect(r.structuredContent).toEqual({ path: '/root/project/notes.txt', encoding: 'utf8', size: Buffer.byteLength(NOTES), content: NOTES });
    expect(text(r)).toBe(NOTES);

    await call('file_write', { name: 'dev', path: 'project/blob.bin', content: BINARY.toString('base64'), encoding: 'base64' });
    const b = await call('file_read', { name: 'dev', path: '/root/project/blob.bin' });
    expect(b.structuredContent).toMatchObject({ encoding: 'base64', size: BINARY.length });
    expect(Buffer.from(b.structuredContent!.content, 'base64')).toEqual(BINARY);
    // Checked independently of the file tools: the bytes in the guest are exactly these.
    expect((await sh('sha256sum /root/project/blob.bin')).split(' ')[0]).toBe(crypto.createHash('sha256').update(BINARY).digest('hex'));

    await call('file_write', { name: 'dev', path: ODD_NAME, content: 'odd' });
    expect((await call('file_read', { name: 'dev', path: ODD_NAME })).structuredContent!.content).toBe('odd');
    expect(await exec({ command: 'ls /root/pwned /root/project/pwned' })).toMatchObject({ exitCode: 2, stdout: '' });

    await call('file_write', { name: 'dev', path: '/root/project/run.sh', content: '#!/bin/sh\necho ran\n', mode: '755' });
    expect(await exec({ argv: ['/root/project/run.sh'] })).toMatchObject({ exitCode: 0, stdout: 'ran\n' });

    const l = await call('file_list', { name: 'dev', path: '/root/project' });
    const entries = Object.fromEntries(l.structuredContent!.entries.map((e: { name: string }) => [e.name, e]));
    expect(Object.keys(entries).sort()).toEqual(['blob.bin', `it's a "file" $(touch pwned); rm -rf x.txt`, 'notes.txt', 'run.sh'].sort());
    expect(entries['notes.txt']).toMatchObject({ type: 'file', size: Buffer.byteLength(NOTES), mode: '0644' });
    expect(entries['run.sh']).toMatchObject({ type: 'file', mode: '0755' });
    expect(Math.abs(Date.parse(entries['notes.txt'].mtime) - Date.now())).toBeLessThan(120_000);
    expect(text(l)).toMatch(/^\/root\/project \(4 entries\)/);
    const root = await call('file_list', { name: 'dev', path: '/' });
    expect(root.structuredContent!.entries.find((e: { name: string }) => e.name === 'bin')).toMatchObject({ type: 'symlink', target: 'usr/bin' });
  });

  it('checkpoint → break the machine → restore: the files and the tools are back, and the undo id is given', async () => {
    const c = await call('checkpoint_create', { name: 'dev', comment: 'project written' });
    expect(c.structuredContent!.checkpoint).toMatchObject({ id: 'v1', comment: 'project written', memory: true, current: true });

    await exec({ command: 'rm -rf /root/project /usr/bin/*' });
    const broken = await call('file_read', { name: 'dev', path: '/root/project/notes.txt' }, true);
    // bash itself is gone: the file tools say so instead of returning nonsense.
    expect(text(broken)).toMatch(/^Error .*Could not read \/root\/project\/notes\.txt in sprite "dev": .*bash/);

    const r = await call('checkpoint_restore', { name: 'dev', id: 'v1' });
    expect(r.structuredContent).toMatchObject({ restored: 'v1', backup: 'v2', sprite: { name: 'dev', state: 'running' } });
    expect(text(r)).toMatch(/Restored dev to v1 .*saved as checkpoint v2: checkpoint_restore id v2 undoes this/);
    expect((await call('file_read', { name: 'dev', path: '/root/project/notes.txt' })).structuredContent!.content).toBe(NOTES);
    expect(Buffer.from((await call('file_read', { name: 'dev', path: '/root/project/blob.bin' })).structuredContent!.content, 'base64')).toEqual(BINARY);
    expect(Number(await sh('ls /usr/bin | wc -l'))).toBeGreaterThan(100);

    const l = await call('checkpoint_list', { name: 'dev' });
    expect(l.structuredContent!.checkpoints.map((x: { id: string; auto: boolean; current: boolean }) => [x.id, x.auto, x.current])).toEqual([
      ['v1', false, true],
      ['v2', true, false],
    ]);
    expect(text(l)).toMatch(/\*v1  project written/);
  });

  it('exec with checkpoint_before checkpoints first and reports the id; checkpoint_delete removes one', async () => {
    const r = await call('exec', { name: 'dev', command: 'echo changed > /root/project/notes.txt', checkpoint_before: true });
    expect(r.structuredContent).toMatchObject({ exitCode: 0, checkpoint: 'v3' });
    expect(text(r)).toContain('checkpoint v3 was taken before running');
    const cps = (await call('checkpoint_list', { name: 'dev' })).structuredContent!.checkpoints;
    expect(cps.find((x: { id: string }) => x.id === 'v3')).toMatchObject({ comment: 'before: echo changed > /root/project/notes.txt', parent: 'v1' });
    // The checkpoint holds the state before the command.
    await call('checkpoint_restore', { name: 'dev', id: 'v3', backup: false });
    expect((await call('file_read', { name: 'dev', path: '/root/project/notes.txt' })).structuredContent!.content).toBe(NOTES);

    const del = await call('checkpoint_delete', { name: 'dev', id: 'v2' });
    expect(text(del)).toBe('Deleted checkpoint v2 of dev.');
    expect((await call('checkpoint_list', { name: 'dev' })).structuredContent!.checkpoints.map((x: { id: string }) => x.id)).toEqual(['v1', 'v3']);
  });

  it('errors come back as isError results with a sentence the model can act on', async () => {
    const ghost = await call('exec', { name: 'ghost', argv: ['true'] }, true);
    expect(text(ghost)).toMatch(/^Error \(not_found\): .*No sprite named "ghost"/);
    expect(text(await call('file_read', { name: 'dev', path: '' }, true))).toMatch(/path is empty/);
    expect(text(await call('file_read', { name: 'dev', path: '/root/a\0b' }, true))).toMatch(/NUL byte/);
    expect(text(await call('file_read', { name: 'dev', path: '/root/nope.txt' }, true))).toBe('Error (not_found): No such file in sprite "dev": /root/nope.txt.');
    expect(text(await call('file_read', { name: 'dev', path: '/root/project' }, true))).toMatch(/is a directory .*use file_list/);
    expect(text(await call('file_read', { name: 'dev', path: '/root/project/notes.txt', max_bytes: 5 }, true))).toMatch(/larger than 5 bytes/);
    expect(text(await call('checkpoint_restore', { name: 'dev', id: 'v999' }, true))).toMatch(/no checkpoint v999/);
    expect(text(await call('exec', { name: 'dev' }, true))).toMatch(/Nothing to run/);
    expect(text(await call('sprite_create', { name: 'dev' }, true))).toMatch(/^Error \(already_exists\)/);
  });

  it('sprite_url gives the local URL; a sleeping sprite wakes on exec', async () => {
    const u = await call('sprite_url', { name: 'dev' });
    expect(u.structuredContent!.local).toMatch(/^http:\/\/dev\.localhost:\d+\/$/);
    expect(u.structuredContent!.port).toBe(8080);
    const s = await call('sprite_sleep', { name: 'dev' });
    expect(s.structuredContent!.sprite.state).toBe('sleeping');
    expect(await exec({ argv: ['cat', '/root/project/notes.txt'] })).toMatchObject({ exitCode: 0, stdout: NOTES });
    expect((await d.api.call('sprites.get', { name: 'dev' })).state).toBe('running');
  });

  it('forks a checkpoint into a new sprite with its own identity', async () => {
    const f = await call('sprite_fork', { name: 'dev', checkpoint: 'v1', new_name: 'dev2' });
    expect(f.structuredContent!.sprite).toMatchObject({ name: 'dev2', state: 'running' });
    expect(await exec({ name: 'dev2', argv: ['hostname'] })).toMatchObject({ stdout: 'dev2\n' });
    expect((await call('file_read', { name: 'dev2', path: '/root/project/notes.txt' })).structuredContent!.content).toBe(NOTES);
    await d.api.call('sprites.destroy', { name: 'dev2' });
  });

  it('the server process ends by itself when the client closes stdin', async () => {
    const pid = transport.pid!;
    const t0 = Date.now();
    // The transport ends stdin, waits up to 2 s for the process to exit, and only then sends SIGTERM.
    await client.close();
    expect(Date.now() - t0).toBeLessThan(1900);
    expect(() => process.kill(pid, 0)).toThrow();
  });
});
