/**
 * The socket client against a fake agent written in the test: a hostile or broken guest (garbage,
 * oversized frames, lies about sessions and credit, silence, a restart) closes that channel only,
 * sessions end with a reason, and the next call connects again with a new epoch.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeFrame, FrameType, MAX_FRAME_LENGTH, PROTOCOL_VERSION, Stream } from './agent-frames.ts';
import { AgentClient, unixSocket } from './agent-client.ts';
import { AgentVersionError } from './agent-protocol.ts';

const INFO = { agent: 'fake', protocol: 1, pid: 1, maxSessions: 10, maxPayload: 65536 };
const json = (v: unknown) => Buffer.from(JSON.stringify(v));

interface Frame {
  type: number;
  session: number;
  payload: Buffer;
}

/** One connection to the fake agent: frames the client sent, and a way to answer. */
class Conn {
  frames: Frame[] = [];
  raw = Buffer.alloc(0);
  private buf = Buffer.alloc(0);
  private helloSeen = false;
  private waiters: Array<() => void> = [];
  constructor(readonly sock: net.Socket) {
    sock.on('data', (d: Buffer) => {
      this.raw = Buffer.concat([this.raw, d]);
      this.buf = Buffer.concat([this.buf, d]);
      // like the agent: nothing counts before the HELLO (a retry sends a zero flush first)
      if (!this.frames.length && !this.helloSeen) {
        const at = this.buf.indexOf('SPRITELY');
        if (at < 9) return;
        this.buf = this.buf.subarray(at - 9);
        this.helloSeen = true;
      }
      while (this.buf.length >= 9 && this.buf.length >= 4 + this.buf.readUInt32BE(0)) {
        const n = this.buf.readUInt32BE(0);
        this.frames.push({ type: this.buf[4], session: this.buf.readUInt32BE(5), payload: Buffer.from(this.buf.subarray(9, 4 + n)) });
        this.buf = this.buf.subarray(4 + n);
      }
      for (const w of this.waiters.splice(0)) w();
    });
    sock.on('error', () => {});
  }
  async next(type: number): Promise<Frame> {
    for (;;) {
      const i = this.frames.findIndex((f) => f.type === type);
      if (i >= 0) return this.frames.splice(i, 1)[0];
      await new Promise<void>((r) => this.waiters.push(r));
    }
  }
  send(type: number, session: number, payload?: Buffer) {
    this.sock.write(encodeFrame(type, session, payload));
  }
  async ack(version = PROTOCOL_VERSION, stale = Buffer.alloc(0)) {
    const hello = await this.next(FrameType.Hello);
    const v = Buffer.alloc(2);
    v.writeUInt16BE(version);
    this.sock.write(stale);
    this.send(FrameType.HelloAck, 0, Buffer.concat([hello.payload.subarray(8, 24), v, json(INFO)]));
  }
  /** Answers the next EXEC/PTY with OPENED. */
  async opened(stdinWindow = 1000): Promise<{ session: number; request: any }> {
    let f: Frame;
    for (;;) {
      f = this.frames.find((x) => x.type === FrameType.Exec || x.type === FrameType.Pty)!;
      if (f) break;
      await new Promise<void>((r) => this.waiters.push(r));
    }
    this.frames.splice(this.frames.indexOf(f), 1);
    this.send(FrameType.Opened, f.session, json({ pid: 77, stdinWindow }));
    return { session: f.session, request: JSON.parse(f.payload.toString()) };
  }
  data(session: number, stream: number, bytes: Buffer | string) {
    this.send(FrameType.Data, session, Buffer.concat([Buffer.from([stream]), Buffer.from(bytes)]));
  }
}

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fake-agent-'));
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function fakeAgent(onConn: (c: Conn) => void, at = path.join(tempDir(), 'agent.sock')) {
  const conns: Conn[] = [];
  const server = net.createServer((sock) => {
    const c = new Conn(sock);
    conns.push(c);
    onConn(c);
  });
  server.listen(at);
  cleanups.push(() => {
    server.close();
    for (const c of conns) c.sock.destroy();
  });
  return { path: at, conns };
}

function client(p: string, logs: string[] = []) {
  const c = new AgentClient({ connect: unixSocket(p), name: 'test', log: (m) => logs.push(m), helloTimeoutsMs: [150] });
  cleanups.push(() => c.close());
  return c;
}

describe('AgentClient', () => {
  it('connects past stale bytes and runs an exec: output, stderr, exit, close', async () => {
    const agent = fakeAgent(async (c) => {
      await c.ack(PROTOCOL_VERSION, Buffer.from('old frames from before a restore'));
      const { session, request } = await c.opened();
      expect(request).toMatchObject({ argv: ['echo', 'hi'], env: { A: 'b' }, cwd: '/tmp' });
      c.data(session, Stream.Stdout, 'hi\n');
      c.data(session, Stream.Stderr, 'warn\n');
      c.send(FrameType.Exit, session, json({ code: 3, signal: null, timedOut: false }));
    });
    const logs: string[] = [];
    const cl = client(agent.path, logs);
    expect((await cl.ready()).agent).toBe('fake');
    const ch = await cl.exec({ argv: ['echo', 'hi'], env: { A: 'b' }, cwd: '/tmp' });
    expect(ch.pid).toBe(77);
    let out = '';
    let err = '';
    ch.on('data', (d) => (out += d));
    ch.stderr.on('data', (d) => (err += d));
    const exit = await ch.done;
    expect({ out, err, code: exit.code }).toEqual({ out: 'hi\n', err: 'warn\n', code: 3 });
    expect(logs.join()).toMatch(/skipped 32 stale bytes/);
  });

  it('retries an unanswered HELLO on a new socket, zeros first', async () => {
    const agent = fakeAgent((c) => {
      if (agent.conns.length === 2) void c.ack();
    });
    const cl = client(agent.path);
    await cl.ready(5000);
    expect(agent.conns).toHaveLength(2);
    expect(agent.conns[0].sock.destroyed || agent.conns[0].sock.readableEnded).toBe(true);
    expect(agent.conns[0].raw.subarray(0, 4).readUInt32BE(0)).toBeGreaterThan(0); // first attempt: HELLO only
    expect(agent.conns[1].raw.subarray(0, 4 + MAX_FRAME_LENGTH).every((b) => b === 0)).toBe(true);
  });

  it('waits for the socket to appear (QEMU starting)', async () => {
    const at = path.join(tempDir(), 'agent.sock');
    const cl = client(at);
    const ready = cl.ready(5000);
    setTimeout(() => fakeAgent((c) => void c.ack(), at), 100);
    expect((await ready).agent).toBe('fake');
  });

  it('refuses an agent that speaks another version, without retrying', async () => {
    const agent = fakeAgent((c) => void c.ack(PROTOCOL_VERSION + 1));
    const cl = client(agent.path);
    await expect(cl.ready(5000)).rejects.toBeInstanceOf(AgentVersionError);
    expect(agent.conns).toHaveLength(1);
  });

  const hostile: Array<[string, (c: Conn, session: number) => void]> = [
    ['an oversized frame', (c) => c.sock.write(Buffer.from([0xff, 0xff, 0xff, 0xff, 0x13, 0, 0, 0, 1]))],
    ['a length that lies (too short)', (c) => c.sock.write(Buffer.from([0, 0, 0, 2, 0x13, 0, 0, 0, 1]))],
    ['an unknown type', (c, s) => c.send(0x7d, s)],
    ['data for an unknown session', (c) => c.data(4242, 1, 'x')],
    ['more data than the window', (c, s) => [1, 2, 3, 4, 5].forEach(() => c.data(s, 1, Buffer.alloc(60 * 1024)))],
    ['garbage JSON in EXIT', (c, s) => c.send(FrameType.Exit, s, Buffer.from('{"code":'))],
  ];
  for (const [name, misbehave] of hostile) {
    it(`${name} closes that channel only, logged once; the next call reconnects`, async () => {
      let round = 0;
      const agent = fakeAgent(async (c) => {
        await c.ack();
        const { session } = await c.opened();
        if (round++ === 0) {
          await new Promise((r) => setTimeout(r, 20)); // the client has its channel by now
          misbehave(c, session);
          misbehave(c, session);
        } else {
          c.send(FrameType.Exit, session, json({ code: 0, signal: null, timedOut: false }));
        }
      });
      const logs: string[] = [];
      const cl = client(agent.path, logs);
      const lost = new Promise((r) => cl.once('lost', r));
      const ch = await cl.exec({ argv: ['x'] });
      const exit = await ch.done;
      await lost;
      expect(exit.code).toBeNull();
      expect(exit.lost).toBeTruthy();
      expect(logs.filter((l) => l.includes('closing the channel'))).toHaveLength(1);
      const again = await cl.exec({ argv: ['y'] });
      expect((await again.done).code).toBe(0);
      expect(agent.conns).toHaveLength(2);
    });
  }

  it('an agent restart (ANNOUNCE) ends the sessions of that epoch', async () => {
    const agent = fakeAgent(async (c) => {
      await c.ack();
      await c.opened();
      c.send(FrameType.Announce, 0, json(INFO));
    });
    const cl = client(agent.path);
    const ch = await cl.exec({ argv: ['sleep', '9'] });
    const exit = await ch.done;
    expect(exit.lost).toMatch(/restarted/);
  });

  it('the socket closing (QEMU gone) ends sessions and pending requests', async () => {
    const agent = fakeAgent(async (c) => {
      await c.ack();
      await c.opened();
      await c.next(FrameType.Identity);
      c.sock.destroy();
    });
    const cl = client(agent.path);
    const ch = await cl.exec({ argv: ['x'] });
    await expect(cl.identity({ hostname: 'a' })).rejects.toThrow(/channel lost/);
    expect((await ch.done).lost).toMatch(/closed/);
  });

  it('a paused consumer grants nothing; resuming grants what was read', async () => {
    let conn!: Conn;
    let session = 0;
    const agent = fakeAgent(async (c) => {
      conn = c;
      await c.ack();
      session = (await c.opened()).session;
      for (let i = 0; i < 4; i++) c.data(session, 1, Buffer.alloc(32 * 1024, i));
    });
    const cl = client(agent.path);
    const ch = await cl.exec({ argv: ['cat', 'big'], window: 128 * 1024 });
    ch.pause();
    await new Promise((r) => setTimeout(r, 100));
    expect(conn.frames.filter((f) => f.type === FrameType.Window)).toHaveLength(0);
    expect(ch.readableLength).toBe(128 * 1024);
    let got = 0;
    ch.on('data', (d) => (got += d.length));
    ch.resume();
    const w = await conn.next(FrameType.Window);
    expect(w.payload[0]).toBe(1);
    expect(got).toBe(128 * 1024);
    let granted = w.payload.readUInt32BE(1);
    await new Promise((r) => setTimeout(r, 50));
    for (const f of conn.frames.filter((x) => x.type === FrameType.Window)) granted += f.payload.readUInt32BE(1);
    expect(granted).toBe(128 * 1024);
    conn.send(FrameType.Exit, session, json({ code: 0, signal: null, timedOut: false }));
    await ch.done;
  });

  it('stdin waits for the credit the agent grants; end() sends EOF after the data', async () => {
    let conn!: Conn;
    let session = 0;
    const agent = fakeAgent(async (c) => {
      conn = c;
      await c.ack();
      session = (await c.opened(10)).session;
    });
    const cl = client(agent.path);
    const ch = await cl.exec({ argv: ['cat'] });
    ch.end(Buffer.from('0123456789abcdefghij'));
    await new Promise((r) => setTimeout(r, 50));
    const sent = () => Buffer.concat(conn.frames.filter((f) => f.type === FrameType.Data).map((f) => f.payload.subarray(1))).toString();
    expect(sent()).toBe('0123456789');
    expect(conn.frames.some((f) => f.type === FrameType.Eof)).toBe(false);
    conn.send(FrameType.Window, session, Buffer.from([0, 0, 0, 0, 10]));
    await conn.next(FrameType.Eof);
    expect(sent()).toBe('0123456789abcdefghij');
    ch.signal('TERM');
    expect((await conn.next(FrameType.Signal)).payload.toString()).toBe('TERM');
    ch.close();
    await conn.next(FrameType.Close);
  });

  it('a refused open rejects with the agent\'s reason; identity results come back', async () => {
    const agent = fakeAgent(async (c) => {
      await c.ack();
      const f = await c.next(FrameType.Pty);
      c.send(FrameType.Error, f.session, json({ code: 'too_many_sessions', message: 'full' }));
      const id = await c.next(FrameType.Identity);
      expect(JSON.parse(id.payload.toString())).toEqual({ hostname: 'n1' });
      c.send(FrameType.Result, id.session, json({ ok: true, ms: 2 }));
      const id2 = await c.next(FrameType.Identity);
      c.send(FrameType.Result, id2.session, json({ ok: false, ms: 1, error: 'invalid hostname' }));
      const ping = await c.next(FrameType.Ping);
      c.send(FrameType.Pong, 0, ping.payload);
    });
    const cl = client(agent.path);
    await expect(cl.pty()).rejects.toThrow(/full \(too_many_sessions\)/);
    expect((await cl.identity({ hostname: 'n1' })).ms).toBe(2);
    await expect(cl.identity({ hostname: 'N!' })).rejects.toThrow(/invalid hostname/);
    expect(await cl.ping()).toBeGreaterThanOrEqual(0);
  });
});
