/**
 * The tool layer over a fake daemon, driven by the SDK's own Client through an in-memory
 * transport: the wiring (argument → API call, result → text + structuredContent that passes the
 * declared output schema, daemon errors → isError) without a VM. test/vm/mcp.test.ts does the same
 * for real.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { afterEach, describe, expect, it } from 'vitest';
import type { Checkpoint, MethodInput, MethodName, MethodOutput, Sprite } from '../api/contract.ts';
import { SpritelyError } from '../errors.ts';
import type { DaemonCaller } from './daemon-link.ts';
import { createMcpServer } from './server.ts';

const sprite = (name: string, extra: Partial<Sprite> = {}): Sprite => ({
  name,
  state: 'running',
  operation: null,
  image: 'debian-12-x',
  createdAt: '2025-01-01T00:00:00.000Z',
  startedAt: '2025-01-01T00:00:00.000Z',
  uptimeSeconds: 12,
  memoryMiB: 512,
  cpus: 1,
  diskGiB: 100,
  accel: 'tcg',
  pid: 42,
  sshPort: 2222,
  lastError: null,
  urlPort: 8080,
  idleTimeoutSec: null,
  network: 'internet',
  usage: { awakeSeconds: 1, cpuSeconds: 1, diskBytes: 1, lastActiveAt: null },
  ...extra,
});
const checkpoint = (id: string, extra: Partial<Checkpoint> = {}): Checkpoint => ({ id, parent: null, comment: '', createdAt: '2025-01-01T00:00:00.000Z', auto: false, memory: true, bytes: 3 << 20, ramBytes: 2 << 20, diskBytes: 1 << 20, pauseMs: 300, current: true, ...extra });

type Handlers = { [M in MethodName]?: (input: MethodInput<M>) => Promise<MethodOutput<M>> | MethodOutput<M> };

let client: Client | null = null;
afterEach(async () => {
  await client?.close();
  client = null;
});

async function connect(handlers: Handlers, heartbeatMs?: number) {
  const calls: Array<[string, unknown]> = [];
  const daemon: DaemonCaller = {
    call: async (method, input) => {
      calls.push([method, input]);
      const h = handlers[method] as ((i: unknown) => unknown) | undefined;
      if (!h) throw new Error(`unexpected ${method}`);
      return (await h(input)) as never;
    },
  };
  const server = createMcpServer(daemon, { heartbeatMs });
  const [a, b] = InMemoryTransport.createLinkedPair();
  await server.connect(a);
  client = new Client({ name: 'spec', version: '1' });
  await client.connect(b);
  return { client, calls };
}

const text = (r: object) => ((r as { content: Array<{ type: string; text: string }> }).content ?? []).map((c) => c.text).join('\n');

describe('MCP tools over a fake daemon', () => {
  it('lists every tool with a description and schemas, and no way to destroy a sprite', async () => {
    const { client } = await connect({});
    const { tools } = await client.listTools();
    const names = tools.map((t) => t.name).sort();
    expect(names).toEqual(
      ['checkpoint_create', 'checkpoint_delete', 'checkpoint_diff', 'checkpoint_list', 'checkpoint_restore', 'exec', 'file_list', 'file_read', 'file_write', 'sprite_create', 'sprite_fork', 'sprite_list', 'sprite_sleep', 'sprite_url', 'sprite_wake'].sort(),
    );
    for (const t of tools) {
      expect(t.description!.length, t.name).toBeGreaterThan(60);
      expect(t.outputSchema, t.name).toBeDefined();
    }
    expect(names.some((n) => /destroy|delete_sprite|remove/.test(n))).toBe(false);
    const desc = Object.fromEntries(tools.map((t) => [t.name, t.description!]));
    expect(desc.exec).toMatch(/checkpoint_before/);
    expect(desc.checkpoint_create).toMatch(/before anything risky/);
    expect(desc.checkpoint_restore).toMatch(/automatic checkpoint of the current state is taken first/);
    expect(desc.sprite_create).toMatch(/TCP connections of any protocol/);
    expect(desc.sprite_create).toMatch(/spritely net set/);
    expect(desc.sprite_list).toMatch(/sleep when idle.*wake/);
    expect(client.getInstructions()).toMatch(/no tool to destroy a sprite/);
  });

  it('exec: a command line runs with bash -lc; the result comes as text and structured content', async () => {
    const { client, calls } = await connect({ 'sprites.exec': () => ({ exitCode: 3, signal: null, stdout: 'hi\n', stderr: 'oops\n', truncated: false, timedOut: false, durationMs: 12 }) });
    const r = await client.callTool({ name: 'exec', arguments: { name: 'dev', command: 'echo hi; echo oops >&2; exit 3', cwd: '/tmp', env: { A: 'b' } } });
    expect(r.isError).toBeFalsy();
    expect(calls).toEqual([['sprites.exec', { name: 'dev', argv: ['bash', '-lc', 'echo hi; echo oops >&2; exit 3'], cwd: '/tmp', env: { A: 'b' }, timeoutMs: 300_000, maxOutputBytes: 65536 }]]);
    expect(text(r)).toBe('exit code 3 (12 ms)\n--- stdout ---\nhi\n--- stderr ---\noops');
    expect(r.structuredContent).toEqual({ exitCode: 3, signal: null, stdout: 'hi\n', stderr: 'oops\n', truncated: false, timedOut: false, durationMs: 12, checkpoint: null });
  });

  it('exec with checkpoint_before checkpoints first, then runs, and reports the id', async () => {
    const { client, calls } = await connect({
      'checkpoints.create': (i) => ({ checkpoint: checkpoint('v7', { comment: i.comment ?? '' }), timings: { totalMs: 500 } }),
      'sprites.exec': () => ({ exitCode: 0, signal: null, stdout: '', stderr: '', truncated: false, timedOut: false, durationMs: 5 }),
    });
    const r = await client.callTool({ name: 'exec', arguments: { name: 'dev', argv: ['apt-get', '-y', 'upgrade'], checkpoint_before: true } });
    expect(calls.map((c) => c[0])).toEqual(['checkpoints.create', 'sprites.exec']);
    expect(calls[0][1]).toEqual({ name: 'dev', comment: 'before: apt-get -y upgrade' });
    expect(r.structuredContent).toMatchObject({ checkpoint: 'v7' });
    expect(text(r)).toContain('checkpoint v7 was taken before running');
  });

  it('a failed checkpoint_before stops the command from running', async () => {
    const { client, calls } = await connect({
      'checkpoints.create': () => {
        throw new SpritelyError('resource_exhausted', 'No space left for the checkpoint.');
      },
    });
    const r = await client.callTool({ name: 'exec', arguments: { name: 'dev', command: 'rm -rf /', checkpoint_before: 'risky' } });
    expect(r.isError).toBe(true);
    expect(text(r)).toBe('Error (resource_exhausted): No space left for the checkpoint.');
    expect(calls.map((c) => c[0])).toEqual(['checkpoints.create']);
  });

  it('daemon errors come back as isError results carrying the daemon\'s sentence', async () => {
    const { client } = await connect({
      'checkpoints.restore': () => {
        throw new SpritelyError('not_found', 'Sprite "dev" has no checkpoint v999.');
      },
      'sprites.list': () => {
        throw Object.assign(new Error('connect ECONNREFUSED /x/api.sock'), { code: 'ECONNREFUSED' });
      },
    });
    const r = await client.callTool({ name: 'checkpoint_restore', arguments: { name: 'dev', id: 'v999' } });
    expect(r).toMatchObject({ isError: true, content: [{ type: 'text', text: 'Error (not_found): Sprite "dev" has no checkpoint v999.' }] });
    const down = await client.callTool({ name: 'sprite_list', arguments: {} });
    expect(down.isError).toBe(true);
    expect(text(down)).toMatch(/cannot reach the spritely daemon.*spritely daemon status/);
    // Refused before any call: a bad name and a bad path.
    const badName = await client.callTool({ name: 'file_read', arguments: { name: '../etc', path: '/x' } });
    expect(badName.isError).toBe(true);
    expect(text(badName)).toMatch(/Invalid sprite name/);
  });

  it('checkpoint_restore takes the undo checkpoint by default and names it', async () => {
    const { client, calls } = await connect({ 'checkpoints.restore': () => ({ sprite: sprite('dev'), backup: 'v4', timings: { totalMs: 900 } }) });
    const r = await client.callTool({ name: 'checkpoint_restore', arguments: { name: 'dev', id: 'v1' } });
    expect(calls[0]).toEqual(['checkpoints.restore', { name: 'dev', id: 'v1', backup: true }]);
    expect(text(r)).toMatch(/Restored dev to v1 in 900 ms .*saved as checkpoint v4: checkpoint_restore id v4 undoes this/);
    expect(r.structuredContent).toMatchObject({ restored: 'v1', backup: 'v4', sprite: { name: 'dev', state: 'running' } });
  });

  it('sprite tools map their arguments onto the API', async () => {
    const { client, calls } = await connect({
      'sprites.create': () => ({ sprite: sprite('box', { network: 'none', memoryMiB: 1024 }), timings: { totalMs: 2100 } }),
      'sprites.list': () => [sprite('box'), sprite('old', { state: 'sleeping', uptimeSeconds: null })],
      'sprites.url': (i) => ({ local: `http://${i.name}.localhost:7777/`, port: i.port ?? 8080 }),
      'sprites.fork': (i) => ({ sprite: sprite(i.newName), timings: { totalMs: 3000 } }),
      'checkpoints.list': () => [checkpoint('v1', { current: false, comment: 'base' }), checkpoint('v2', { parent: 'v1', auto: true })],
    });
    const c = await client.callTool({ name: 'sprite_create', arguments: { name: 'box', memory: 1024, network: 'none' } });
    expect(calls.at(-1)).toEqual(['sprites.create', { name: 'box', memoryMiB: 1024, cpus: undefined, network: 'none' }]);
    expect(text(c)).toMatch(/Created sprite box in 2\.1 s: running, 1024 MiB, 1 CPU\(s\), network none/);
    const l = await client.callTool({ name: 'sprite_list', arguments: {} });
    expect(text(l)).toMatch(/NAME +STATE[\s\S]*old +sleeping/);
    expect((l.structuredContent as { sprites: unknown[] }).sprites).toHaveLength(2);
    const u = await client.callTool({ name: 'sprite_url', arguments: { name: 'box', port: 3000 } });
    expect(u.structuredContent).toEqual({ local: 'http://box.localhost:7777/', port: 3000 });
    await client.callTool({ name: 'sprite_fork', arguments: { name: 'box', checkpoint: 'v1', new_name: 'box2' } });
    expect(calls.at(-1)).toEqual(['sprites.fork', { name: 'box', checkpoint: 'v1', newName: 'box2' }]);
    const cl = await client.callTool({ name: 'checkpoint_list', arguments: { name: 'box' } });
    expect(text(cl)).toMatch(/ v1  base[\s\S]*└─ \*v2/);
  });

  it('sprite_create lets an agent narrow the network, never widen it: addresses and ranges are refused before the daemon is asked', async () => {
    const { client, calls } = await connect({ 'sprites.create': (i) => ({ sprite: sprite(i.name, { network: i.network ?? 'internet' }), timings: { totalMs: 1000 } }) });
    for (const network of ['internet', 'none', 'allow=mirror.example.org,*.github.com']) {
      const r = await client.callTool({ name: 'sprite_create', arguments: { name: 'box', network } });
      expect(r.isError, network).toBeFalsy();
      expect(calls.at(-1), network).toEqual(['sprites.create', { name: 'box', memoryMiB: undefined, cpus: undefined, network }]);
    }
    const made = calls.length;
    const table: Array<[string, RegExp]> = [
      ['allow=192.0.2.2,10.0.2.2,169.254.169.254', /192\.0\.2\.2, 10\.0\.2\.2, 169\.254\.169\.254 are IP addresses or ranges, which only the user can allow/],
      ['allow=mirror.example.org,[::ffff:c0a8:101]', /192\.168\.1\.1 is an IP address or range/],
      ['allow=192.168.0.0/16', /192\.168\.0\.0\/16 is an IP address or range/],
      ['allow=[fd00::]/8', /\[fd00::\]\/8 is an IP address or range/],
      ['allow=127.0.0.1', /loopback/],
      ['allow=0x7f.1', /not a host name/],
      ['allow=printer.local', /multicast DNS/],
      ['everything', /"everything" is not a network policy/],
    ];
    for (const [network, why] of table) {
      const r = await client.callTool({ name: 'sprite_create', arguments: { name: 'box', network } });
      expect(r.isError, network).toBe(true);
      expect(text(r), network).toMatch(/^Error \(invalid_argument\): Network policy refused: /);
      expect(text(r), network).toMatch(why);
    }
    expect(calls.length).toBe(made);
  });

  it('long calls report progress to a client that asked for it', async () => {
    const { client } = await connect(
      { 'sprites.exec': async () => (await new Promise((r) => setTimeout(r, 250)), { exitCode: 0, signal: null, stdout: '', stderr: '', truncated: false, timedOut: false, durationMs: 250 }) },
      40,
    );
    const progress: string[] = [];
    await client.callTool({ name: 'exec', arguments: { name: 'dev', argv: ['sleep', '1'] } }, undefined, { onprogress: (p) => progress.push(p.message ?? '') });
    expect(progress.length).toBeGreaterThanOrEqual(2);
    expect(progress[0]).toMatch(/^exec: still running after \d+ s$/);
  });

  it('checkpoint_diff asks the daemon for the diff (now by default) and shows names safely', async () => {
    const { client, calls } = await connect({
      'checkpoints.diff': (i) => ({
        name: i.name,
        from: i.from,
        to: i.to ?? 'now',
        entries: [
          { path: '/etc/app.conf', change: 'modified', changes: ['content', 'size'], before: { type: 'file', size: 8, mode: '0644', uid: 0, gid: 0, mtime: '2025-01-01T00:00:00.000Z', target: null }, after: { type: 'file', size: 10, mode: '0644', uid: 0, gid: 0, mtime: '2025-01-01T00:00:00.000Z', target: null } },
          { path: '/tmp/\x1b[2Jevil', change: 'added', changes: [], before: null, after: { type: 'file', size: 1, mode: '0644', uid: 0, gid: 0, mtime: '2025-01-01T00:00:00.000Z', target: null } },
        ],
        counts: { added: 1, removed: 0, modified: 1 },
        truncated: false,
        changedBytes: 65536,
        problems: [],
        timings: { totalMs: 120 },
      }),
    });
    const r = await client.callTool({ name: 'checkpoint_diff', arguments: { name: 'box', from: 'v3', paths: ['/etc'] } });
    expect(r.isError).toBeFalsy();
    expect(calls.at(-1)).toEqual(['checkpoints.diff', { name: 'box', from: 'v3', to: 'now', paths: ['/etc'] }]);
    expect(text(r)).toMatch(/box: v3 → now: 1 added, 0 removed, 1 modified/);
    expect(text(r)).toContain('M  /etc/app.conf  (8 B → 10 B)');
    expect(text(r)).toContain('A  "/tmp/\\x1b[2Jevil"');
    expect(text(r)).not.toContain('\x1b');
    expect((r.structuredContent as { entries: unknown[] }).entries[0]).toEqual({ path: '/etc/app.conf', change: 'modified', changes: ['content', 'size'], type: 'file', sizeBefore: 8, sizeAfter: 10 });
  });
});
