/**
 * The real guest agent, built from resources/guest-agent and run on this host in its test mode
 * (`--listen unix:PATH`), driven by the real client: exec and pty semantics, flow control and
 * concurrency, fast and without a VM. (In a sprite the same program serves a virtio-serial port:
 * test/vm/guest-agent.test.ts.)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AgentChannel } from './agent-channel.ts';
import { AgentClient, unixSocket } from './agent-client.ts';
import { buildAgent } from './agent-build.ts';
import { encodeFrame, FrameType } from './agent-frames.ts';

let dir: string;
let bin: string;
const agents: ChildProcess[] = [];
const clients: AgentClient[] = [];

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agent-bin-'));
  bin = path.join(dir, 'spritely-agent');
  await buildAgent({ out: bin });
}, 180_000);

afterAll(() => {
  for (const c of clients) c.close();
  for (const a of agents) a.kill('SIGKILL');
  fs.rmSync(dir, { recursive: true, force: true });
});

/** A fresh agent on its own socket (host-gone grace short, identity under a temp root). */
async function agent(): Promise<{ client: AgentClient; socket: string; root: string; proc: ChildProcess }> {
  const socket = path.join(dir, `a-${crypto.randomBytes(4).toString('hex')}.sock`);
  const root = fs.mkdtempSync(path.join(dir, 'root-'));
  const proc = spawn(bin, ['--listen', `unix:${socket}`, '--root', root, '--host-gone-grace', '200ms'], { stdio: ['ignore', 'ignore', 'pipe'] });
  agents.push(proc);
  const client = new AgentClient({ connect: unixSocket(socket) });
  clients.push(client);
  await client.ready(10_000);
  return { client, socket, root, proc };
}

async function run(ch: AgentChannel, stdin?: Buffer | string): Promise<{ out: Buffer; err: Buffer; code: number | null; signal: string | null; timedOut: boolean }> {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  ch.on('data', (d: Buffer) => out.push(d));
  ch.stderr.on('data', (d: Buffer) => err.push(d));
  if (stdin !== undefined) ch.end(stdin);
  const e = await ch.done;
  return { out: Buffer.concat(out), err: Buffer.concat(err), code: e.code, signal: e.signal, timedOut: e.timedOut };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !fs.readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ');
  } catch {
    return false;
  }
}

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('the real agent: exec', () => {
  let c: AgentClient;
  beforeAll(async () => {
    c = (await agent()).client;
  });

  it('exit codes, signals, separate stdout and stderr', async () => {
    expect((await run(await c.exec({ argv: ['true'] }))).code).toBe(0);
    const r = await run(await c.exec({ argv: ['sh', '-c', 'echo out; echo err >&2; exit 7'] }));
    expect([r.out.toString(), r.err.toString(), r.code, r.signal]).toEqual(['out\n', 'err\n', 7, null]);
    const killed = await run(await c.exec({ argv: ['sh', '-c', 'kill -TERM $$'] }));
    expect([killed.code, killed.signal]).toEqual([null, 'TERM']);
  });

  it('a signal from the host reaches the whole process group', async () => {
    const ch = await c.exec({ argv: ['sh', '-c', 'sleep 100 & echo $!; wait'] });
    let out = '';
    ch.on('data', (d) => (out += d));
    await until(() => out.includes('\n'));
    const child = Number(out.trim());
    ch.signal('TERM'); // (a non-interactive shell's background jobs ignore INT)
    const e = await ch.done;
    expect(e.signal).toBe('TERM');
    await until(() => !alive(child));
  });

  it('stdin to EOF, binary-safe both ways (all 256 byte values)', async () => {
    const bytes = Buffer.alloc(256 * 1024);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7 + (i >> 8)) & 0xff;
    const r = await run(await c.exec({ argv: ['cat'] }), bytes);
    expect(r.code).toBe(0);
    expect(r.out.equals(bytes)).toBe(true);
    const all = await run(await c.exec({ argv: ['sh', '-c', 'i=0; while [ $i -lt 256 ]; do printf "\\\\$(printf %o $i)"; i=$((i+1)); done'] }));
    expect([...all.out]).toEqual([...Array(256).keys()]);
  });

  it('env and cwd; a missing program is 127 with a message, a missing cwd 126', async () => {
    const r = await run(await c.exec({ argv: ['sh', '-c', 'echo "$FOO|$HOME|$USER"; pwd'], env: { FOO: 'bar baz' }, cwd: '/tmp' }));
    expect(r.out.toString()).toBe('bar baz|/root|root\n/tmp\n');
    const missing = await run(await c.exec({ argv: ['no-such-program-xyz'] }));
    expect(missing.code).toBe(127);
    expect(missing.err.toString()).toMatch(/cannot run no-such-program-xyz/);
    expect((await run(await c.exec({ argv: ['true'], cwd: '/no/such/dir' }))).code).toBe(126);
    await expect(c.exec({ argv: ['true'], env: { 'BAD NAME': 'x' } })).rejects.toThrow(/invalid environment variable name/);
  });

  it('a timeout kills the group and says so', async () => {
    const t0 = Date.now();
    const r = await run(await c.exec({ argv: ['sleep', '30'], timeoutMs: 300 }));
    expect([r.code, r.signal, r.timedOut]).toEqual([null, 'KILL', true]);
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  it('a command that outlives its client is killed: on close, and when the host goes away', async () => {
    const ch = await c.exec({ argv: ['sh', '-c', 'sleep 100 & echo $!; wait'] });
    let out = '';
    ch.on('data', (d) => (out += d));
    await until(() => out.includes('\n'));
    const child = Number(out.trim());
    ch.close();
    expect((await ch.done).signal).toBe('KILL');
    await until(() => !alive(child));

    const other = await agent();
    const ch2 = await other.client.exec({ argv: ['sh', '-c', 'sleep 100 & echo $!; wait'] });
    let out2 = '';
    ch2.on('data', (d) => (out2 += d));
    await until(() => out2.includes('\n'));
    const pids = [ch2.pid!, Number(out2.trim())];
    other.client.close(); // the daemon goes away without a word
    expect((await ch2.done).lost).toBeTruthy();
    await until(() => pids.every((p) => !alive(p)));
  });

  it('a background child holding stdout does not keep the session open', async () => {
    const t0 = Date.now();
    const r = await run(await c.exec({ argv: ['sh', '-c', 'sleep 5 & echo started'] }));
    expect(r.out.toString()).toBe('started\n');
    expect(Date.now() - t0).toBeLessThan(3000);
  });

  it('200 concurrent sessions', async () => {
    const results = await Promise.all(
      Array.from({ length: 200 }, async (_, i) => run(await c.exec({ argv: ['sh', '-c', `sleep 0.2; echo ${i}; echo e${i} >&2; exit ${i % 7}`] }))),
    );
    results.forEach((r, i) => expect([r.out.toString(), r.err.toString(), r.code]).toEqual([`${i}\n`, `e${i}\n`, i % 7]));
  });
});

describe('the real agent: flow control', () => {
  it('50 MB of stdout to a slow reader: bounded memory on both sides, nothing lost', async () => {
    const { client, proc } = await agent();
    const ch = await client.exec({ argv: ['head', '-c', '50000000', '/dev/zero'], window: 256 * 1024 });
    ch.pause();
    await new Promise((r) => setTimeout(r, 500));
    // the guest's process is held back: at most a window is here, the agent holds little
    expect(ch.readableLength).toBeLessThanOrEqual(256 * 1024);
    const rss = () => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${proc.pid}/status`, 'utf8'))![1]) * 1024;
    expect(rss()).toBeLessThan(60 * 2 ** 20);
    let total = 0;
    let maxBuffered = 0;
    ch.on('data', (d: Buffer) => {
      total += d.length;
      maxBuffered = Math.max(maxBuffered, ch.readableLength);
      if (total < 4_000_000) {
        ch.pause(); // slow at first
        setTimeout(() => ch.resume(), 2);
      }
    });
    ch.resume();
    const e = await ch.done;
    expect(e.code).toBe(0);
    expect(total).toBe(50_000_000);
    expect(maxBuffered).toBeLessThanOrEqual(256 * 1024);
    expect(rss()).toBeLessThan(60 * 2 ** 20);
  }, 60_000);

  it('stdin to a process that does not read is held back by the window', async () => {
    const { client } = await agent();
    const ch = await client.exec({ argv: ['sh', '-c', 'sleep 0.5; wc -c'] });
    let out = '';
    ch.on('data', (d) => (out += d));
    const chunk = Buffer.alloc(1 << 20, 0x61);
    let writes = 0;
    while (ch.write(chunk) && writes < 64) writes++;
    expect(writes).toBeLessThan(4); // backpressure well before 64 MiB are queued here
    for (let i = writes; i < 20; i++) if (!ch.write(chunk)) await new Promise((r) => ch.once('drain', r));
    ch.end();
    await ch.done;
    expect(out.trim()).toBe(String(21 * chunk.length));
  }, 60_000);
});

describe('the real agent: pty', () => {
  it('echo, size, resize, exit', async () => {
    const { client } = await agent();
    const ch = await client.pty({ argv: ['/bin/sh'], env: { PS1: '$ ' }, cols: 80, rows: 24 });
    let out = '';
    ch.on('data', (d) => (out += d));
    const seen = (s: string) => until(() => out.includes(s));
    ch.write('stty size; echo "T=$TERM"\n');
    await seen('24 80');
    await seen('T=xterm-256color');
    ch.resize(100, 30);
    ch.write('stty size\n');
    await seen('30 100');
    const t0 = performance.now();
    ch.write('Z');
    await seen('Z');
    expect(performance.now() - t0).toBeLessThan(1000);
    ch.write('\nexit 3\n');
    expect((await ch.done).code).toBe(3);
  });

  it('closing a pty hangs the shell up', async () => {
    const { client } = await agent();
    const ch = await client.pty({ argv: ['/bin/sh'] });
    ch.resume();
    const pid = ch.pid!;
    ch.close();
    const e = await ch.done;
    expect(e.signal === 'HUP' || e.signal === 'KILL').toBe(true);
    expect(alive(pid)).toBe(false);
  });
});

describe('the real agent: identity, reconnects and a hostile host', () => {
  it('applies an identity under its test root in milliseconds', async () => {
    const { client, root } = await agent();
    const r = await client.identity({ hostname: 'box-1', machineId: 'f'.repeat(32), seed: crypto.randomBytes(64), timeNs: 1767225600000000000n });
    expect(r.ok).toBe(true);
    expect(r.ms).toBeLessThan(100);
    expect(fs.readFileSync(path.join(root, 'etc/hostname'), 'utf8')).toBe('box-1\n');
    await expect(client.identity({ hostname: 'Not Valid' })).rejects.toThrow(/invalid hostname/);
  });

  it('a new connection is a new epoch: the old sessions die, the new one works', async () => {
    const { client, socket } = await agent();
    const ch = await client.exec({ argv: ['sleep', '100'] });
    ch.resume();
    const pid = ch.pid!;
    const second = new AgentClient({ connect: unixSocket(socket) });
    clients.push(second);
    client.close();
    await second.ready(10_000);
    await until(() => !alive(pid));
    expect((await run(await second.exec({ argv: ['echo', 'hi'] }))).out.toString()).toBe('hi\n');
  });

  it('a suspended epoch resumes on the next connection: the session goes on, held input arrives, nothing is lost', async () => {
    const socket = path.join(dir, `r-${crypto.randomBytes(4).toString('hex')}.sock`);
    agents.push(spawn(bin, ['--listen', `unix:${socket}`, '--host-gone-grace', '2s'], { stdio: ['ignore', 'ignore', 'pipe'] }));
    const conns: net.Socket[] = [];
    const open = unixSocket(socket);
    const c = new AgentClient({ connect: async () => conns[conns.push((await open()) as net.Socket) - 1] });
    clients.push(c);
    await c.ready(10_000);
    const cat = await c.exec({ argv: ['cat'] });
    let out = '';
    cat.on('data', (d: Buffer) => (out += d));
    cat.write('before\n');
    await until(() => out === 'before\n');
    expect(await c.suspend()).toBe(true);
    cat.write('while away\n'); // held: the machine is "saved"
    conns[0].destroy(); // the hypervisor ends
    await new Promise((r) => setTimeout(r, 100));
    expect(out).toBe('before\n');
    const resumed = new Promise((r) => c.once('resumed', r));
    await c.ready(10_000);
    await resumed;
    await until(() => out === 'before\nwhile away\n');
    cat.end('after\n');
    expect((await cat.done).code).toBe(0);
    expect(out).toBe('before\nwhile away\nafter\n');
    expect(conns).toHaveLength(2);
  });

  it('a resume the agent does not grant (the host stayed away past its grace): the sessions are lost, the client goes on with a new epoch', async () => {
    const socket = path.join(dir, `g-${crypto.randomBytes(4).toString('hex')}.sock`);
    agents.push(spawn(bin, ['--listen', `unix:${socket}`, '--host-gone-grace', '100ms'], { stdio: ['ignore', 'ignore', 'pipe'] }));
    const conns: net.Socket[] = [];
    const open = unixSocket(socket);
    const c = new AgentClient({ connect: async () => conns[conns.push((await open()) as net.Socket) - 1] });
    clients.push(c);
    await c.ready(10_000);
    const sleeper = await c.exec({ argv: ['sleep', '100'] });
    sleeper.resume();
    const pid = sleeper.pid!;
    expect(await c.suspend()).toBe(true);
    conns[0].destroy();
    await until(() => !alive(pid));
    await c.ready(10_000);
    expect((await sleeper.done).lost).toMatch(/started over/);
    expect((await run(await c.exec({ argv: ['echo', 'new epoch'] }))).out.toString()).toBe('new epoch\n');
  });

  it('garbage from the host makes the agent fault and resync; the next HELLO works', async () => {
    const { client, socket } = await agent();
    client.close();
    const raw = net.connect(socket);
    await new Promise((r) => raw.once('connect', r));
    const got: Buffer[] = [];
    raw.on('data', (d) => got.push(d));
    const nonce = crypto.randomBytes(16);
    const hello = encodeFrame(FrameType.Hello, 0, Buffer.concat([Buffer.from('SPRITELY'), nonce, Buffer.from([0, 1])]));
    raw.write(Buffer.concat([crypto.randomBytes(1000), hello, Buffer.from([0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4, 5])]));
    await until(() => Buffer.concat(got).includes(Buffer.from([FrameType.Fault, 0, 0, 0, 0])));
    raw.destroy();
    const again = new AgentClient({ connect: unixSocket(socket) });
    clients.push(again);
    expect(await again.ping()).toBeGreaterThanOrEqual(0);
  });
});
