import crypto from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { AgentProtocolError, encodeFrame, FrameType, NONCE_BYTES, PROTOCOL_VERSION, Stream } from './agent-frames.ts';
import { AgentProtocol, AgentVersionError, DEFAULT_WINDOW, MAX_SESSIONS } from './agent-protocol.ts';

const INFO = { agent: 'spritely-agent', protocol: 1, pid: 42, maxSessions: 1024, maxPayload: 65536 };
const json = (v: unknown) => Buffer.from(JSON.stringify(v));

function ackFor(nonce: Buffer, version = PROTOCOL_VERSION, info: unknown = INFO): Buffer {
  const v = Buffer.alloc(2);
  v.writeUInt16BE(version);
  return encodeFrame(FrameType.HelloAck, 0, Buffer.concat([nonce, v, json(info)]));
}

/** A protocol that said HELLO and got its answer. */
function ready(): AgentProtocol {
  const p = new AgentProtocol();
  const hello = p.hello();
  const events = p.receive(ackFor(hello.subarray(17, 17 + NONCE_BYTES)));
  expect(events).toEqual([{ kind: 'ready', info: INFO }]);
  return p;
}

function data(session: number, stream: number, bytes: Buffer): Buffer {
  return encodeFrame(FrameType.Data, session, Buffer.concat([Buffer.from([stream]), bytes]));
}

/** An exec session the agent has OPENED with a stdin window of `stdin`. */
function opened(p: AgentProtocol, stdin = 1000, window?: number): number {
  const { session, bytes } = p.openExec({ argv: ['true'], window });
  expect(bytes[4]).toBe(FrameType.Exec);
  expect(JSON.parse(bytes.subarray(9).toString())).toMatchObject({ argv: ['true'] });
  expect(p.receive(encodeFrame(FrameType.Opened, session, json({ pid: 7, stdinWindow: stdin })))).toEqual([{ kind: 'opened', session, pid: 7, stdinWindow: stdin }]);
  return session;
}

describe('AgentProtocol handshake', () => {
  it('is ready only after the ack that echoes its nonce; stale acks and bytes are skipped', () => {
    const p = new AgentProtocol();
    const nonce = Buffer.alloc(NONCE_BYTES, 3);
    p.hello(nonce);
    expect(p.ready).toBe(false);
    expect(p.receive(Buffer.concat([crypto.randomBytes(100), ackFor(Buffer.alloc(NONCE_BYTES, 4))]))).toEqual([]);
    expect(p.receive(ackFor(nonce))).toEqual([{ kind: 'ready', info: INFO }]);
    expect(p.ready).toBe(true);
    expect(p.droppedBytes).toBeGreaterThan(100);
  });

  it('refuses an agent of another protocol version with a clear error', () => {
    const p = new AgentProtocol();
    const nonce = Buffer.alloc(NONCE_BYTES, 3);
    p.hello(nonce);
    expect(() => p.receive(ackFor(nonce, 1))).toThrow(AgentVersionError);
    expect(() => {
      const q = new AgentProtocol();
      q.hello(nonce);
      q.receive(ackFor(nonce, 4));
    }).toThrow(/protocol version 4; this daemon speaks 3/);
  });

  it('refuses an ack whose info is not what an agent says', () => {
    for (const info of [{ ...INFO, extra: 1 }, { agent: 'x' }, 'nope', { ...INFO, pid: 'x' }]) {
      const p = new AgentProtocol();
      const nonce = crypto.randomBytes(NONCE_BYTES);
      p.hello(nonce);
      expect(() => p.receive(ackFor(nonce, 1, info))).toThrow(AgentProtocolError);
    }
  });

  it('nothing can be asked before the answer, and data before HELLO is an error', () => {
    const p = new AgentProtocol();
    expect(() => p.receive(Buffer.from('x'))).toThrow(AgentProtocolError);
    p.hello();
    expect(() => p.openExec({ argv: ['true'] })).toThrow(/not ready/);
    expect(() => p.ping()).toThrow(/not ready/);
  });

  it('a new HELLO forgets every session of the old epoch', () => {
    const p = ready();
    const s = opened(p);
    p.hello();
    expect(p.sessionCount).toBe(0);
    expect(() => p.stdin(s, Buffer.from('x'))).toThrow(/not open/);
  });
});

describe('AgentProtocol sessions', () => {
  it('exec: output within the window, grants, stdin within its credit, exit', () => {
    const p = ready();
    const s = opened(p, 10, 8);
    expect(p.receive(data(s, Stream.Stdout, Buffer.from('abcdefgh')))).toEqual([{ kind: 'data', session: s, stream: 1, data: Buffer.from('abcdefgh') }]);
    expect(() => p.receive(data(s, Stream.Stdout, Buffer.from('i')))).toThrow(/exceed the credit of 0/);
  });

  it('grants reopen the window; stderr has its own', () => {
    const p = ready();
    const s = opened(p, 10, 4);
    p.receive(data(s, Stream.Stdout, Buffer.from('abcd')));
    const g = p.grant(s, 1, 4);
    expect([...g]).toEqual([0, 0, 0, 10, FrameType.Window, 0, 0, 0, s, 1, 0, 0, 0, 4]);
    expect(p.receive(data(s, Stream.Stdout, Buffer.from('efgh')))).toHaveLength(1);
    expect(p.receive(data(s, Stream.Stderr, Buffer.from('1234')))).toHaveLength(1);
    expect(() => p.grant(s, 1, 0)).toThrow(RangeError);
    expect(() => p.grant(s, 1, 2 ** 31)).toThrow(RangeError);
  });

  it('stdin is limited to the credit the agent gave and split into frames', () => {
    const p = ready();
    const s = opened(p, 200_000);
    const frames = p.stdin(s, Buffer.alloc(150_000, 1));
    expect(frames).toHaveLength(3);
    expect(frames.reduce((n, f) => n + f.length - 10, 0)).toBe(150_000);
    expect(p.stdinCredit(s)).toBe(50_000);
    expect(() => p.stdin(s, Buffer.alloc(50_001))).toThrow(/exceeds the credit/);
    expect(p.receive(encodeFrame(FrameType.Window, s, Buffer.from([0, 0, 0, 0, 100])))).toEqual([{ kind: 'window', session: s, bytes: 100 }]);
    expect(p.stdinCredit(s)).toBe(50_100);
    expect([...p.eof(s)]).toEqual([0, 0, 0, 6, FrameType.Eof, 0, 0, 0, s, 0]);
  });

  it('exit ends the session; later frames for it are errors', () => {
    const p = ready();
    const s = opened(p);
    expect(p.receive(encodeFrame(FrameType.Exit, s, json({ code: null, signal: 'KILL', timedOut: true })))).toEqual([
      { kind: 'exit', session: s, code: null, signal: 'KILL', timedOut: true },
    ]);
    expect(p.sessionCount).toBe(0);
    expect(() => p.receive(data(s, 1, Buffer.from('late')))).toThrow(/no such session/);
  });

  it('close is sent once; output and exit still arrive while closing', () => {
    const p = ready();
    const s = opened(p);
    expect(p.close(s)?.[4]).toBe(FrameType.Close);
    expect(p.close(s)).toBeNull();
    expect(p.receive(data(s, 1, Buffer.from('x')))).toHaveLength(1);
    expect(p.receive(encodeFrame(FrameType.Exit, s, json({ code: null, signal: 'KILL', timedOut: false })))).toHaveLength(1);
  });

  it('a refused open comes back as an error event', () => {
    const p = ready();
    const { session } = p.openPty({ cols: 100, rows: 30 });
    expect(p.receive(encodeFrame(FrameType.Error, session, json({ code: 'invalid_request', message: 'no' })))).toEqual([
      { kind: 'error', session, code: 'invalid_request', message: 'no' },
    ]);
    expect(p.sessionCount).toBe(0);
  });

  it('pty: resize is clamped, stderr does not exist', () => {
    const p = ready();
    const { session } = p.openPty({});
    p.receive(encodeFrame(FrameType.Opened, session, json({ pid: 9, stdinWindow: 10 })));
    expect([...p.resize(session, 5000, 0).subarray(9)]).toEqual([0x03, 0xe8, 0, 24]);
    expect(() => p.receive(data(session, Stream.Stderr, Buffer.from('x')))).toThrow(/stream 2 has ended/);
    const e = opened(p);
    expect(() => p.resize(e, 10, 10)).toThrow(/only a pty/);
  });

  it('signals go by name, checked', () => {
    const p = ready();
    const s = opened(p);
    expect(p.signal(s, 'SIGTERM').subarray(9).toString()).toBe('TERM');
    expect(p.signal(s, 'INT').subarray(9).toString()).toBe('INT');
    expect(() => p.signal(s, 'kill; rm')).toThrow(/invalid signal/);
  });

  it('identity: JSON with the seed in base64 and the time as a decimal string; answered by RESULT', () => {
    const p = ready();
    const { session, bytes } = p.identity({ hostname: 'a', seed: Buffer.from([1, 2, 3]), timeNs: 1767225600000000123n, resize: { device: '/dev/vda', minBytes: 5 } });
    expect(JSON.parse(bytes.subarray(9).toString())).toEqual({ hostname: 'a', seed: 'AQID', timeNs: '1767225600000000123', resize: { device: '/dev/vda', minBytes: 5 } });
    const result = { ok: true, ms: 3.5, steps: { hostname: 1 } };
    expect(p.receive(encodeFrame(FrameType.Result, session, json(result)))).toEqual([{ kind: 'result', session, result }]);
  });

  it('pings are matched by token; a pong for no ping is an error', () => {
    const p = ready();
    const { token, bytes } = p.ping(Buffer.from('12345678'));
    expect(p.receive(encodeFrame(FrameType.Pong, 0, bytes.subarray(9)))).toEqual([{ kind: 'pong', token }]);
    expect(() => p.receive(encodeFrame(FrameType.Pong, 0, bytes.subarray(9)))).toThrow(/answers no ping/);
  });

  it('strips control characters from text the guest sends (it reaches logs and terminals)', () => {
    const p = ready();
    const { session } = p.openExec({ argv: ['x'] });
    expect(p.receive(encodeFrame(FrameType.Error, session, json({ code: 'invalid_request', message: 'bad\x1b[2Jthing\n' })))).toEqual([
      { kind: 'error', session, code: 'invalid_request', message: 'bad?[2Jthing?' },
    ]);
    const q = ready();
    expect(q.receive(encodeFrame(FrameType.Fault, 0, json({ message: '\u0007x' })))).toEqual([{ kind: 'fault', message: '?x' }]);
    const r = ready();
    const s = opened(r);
    expect(() => r.receive(encodeFrame(FrameType.Exit, s, json({ code: null, signal: 'KILL\n', timedOut: false })))).toThrow(AgentProtocolError);
  });

  it('announce and fault end the epoch', () => {
    const p = ready();
    expect(p.receive(encodeFrame(FrameType.Announce, 0, json(INFO)))).toEqual([{ kind: 'announce', info: INFO }]);
    expect(p.ready).toBe(false);
    const q = ready();
    expect(q.receive(encodeFrame(FrameType.Fault, 0, json({ message: 'bad' })))).toEqual([{ kind: 'fault', message: 'bad' }]);
  });

  it('bounds the number of sessions', () => {
    const p = ready();
    for (let i = 0; i < MAX_SESSIONS; i++) p.openExec({ argv: ['true'] });
    expect(() => p.openExec({ argv: ['true'] })).toThrow(/too many/);
  });

  it('refuses what the agent never sends, and frames in the wrong state', () => {
    const hostile: Array<[string, (p: AgentProtocol, s: number, pending: number) => Buffer]> = [
      ['unknown type', () => encodeFrame(0x7e, 0)],
      ['reserved relay type', () => encodeFrame(0x30, 1)],
      ['a host-to-agent type', (_p, s) => encodeFrame(FrameType.Exec, s, json({ argv: ['x'] }))],
      ['a second ack', () => encodeFrame(FrameType.HelloAck, 0, Buffer.alloc(30))],
      ['data for an unknown session', () => data(999, 1, Buffer.from('x'))],
      ['data on session 0', () => data(0, 1, Buffer.from('x'))],
      ['data before opened', (_p, _s, pending) => data(pending, 1, Buffer.from('x'))],
      ['data for stdin', (_p, s) => data(s, 0, Buffer.from('x'))],
      ['empty data', (_p, s) => encodeFrame(FrameType.Data, s, Buffer.from([1]))],
      ['a second opened', (_p, s) => encodeFrame(FrameType.Opened, s, json({ pid: 1, stdinWindow: 1 }))],
      ['opened with extra fields', (_p, _s, pending) => encodeFrame(FrameType.Opened, pending, json({ pid: 1, stdinWindow: 1, x: 1 }))],
      ['opened with a huge window', (_p, _s, pending) => encodeFrame(FrameType.Opened, pending, json({ pid: 1, stdinWindow: 2 ** 31 }))],
      ['exit that is not JSON', (_p, s) => encodeFrame(FrameType.Exit, s, Buffer.from('{'))],
      ['exit with a wrong type', (_p, s) => encodeFrame(FrameType.Exit, s, json({ code: '0', signal: null, timedOut: false }))],
      ['window of 0', (_p, s) => encodeFrame(FrameType.Window, s, Buffer.from([0, 0, 0, 0, 0]))],
      ['window for stdout', (_p, s) => encodeFrame(FrameType.Window, s, Buffer.from([1, 0, 0, 0, 1]))],
      ['window that overflows', (_p, s) => encodeFrame(FrameType.Window, s, Buffer.from([0, 0x7f, 0xff, 0xff, 0xff]))],
      ['window too short', (_p, s) => encodeFrame(FrameType.Window, s, Buffer.from([0, 1]))],
      ['eof twice', (p, s) => (p.receive(encodeFrame(FrameType.Eof, s, Buffer.from([1]))), encodeFrame(FrameType.Eof, s, Buffer.from([1])))],
      ['result for an exec', (_p, s) => encodeFrame(FrameType.Result, s, json({ ok: true, ms: 1 }))],
      ['error for an open session', (_p, s) => encodeFrame(FrameType.Error, s, json({ code: 'x', message: 'y' }))],
      ['pong on a session', () => encodeFrame(FrameType.Pong, 3, Buffer.alloc(8))],
      ['announce that is not JSON', () => encodeFrame(FrameType.Announce, 0, Buffer.from('hi'))],
      ['deeply nested JSON', (_p, s) => encodeFrame(FrameType.Exit, s, Buffer.from('['.repeat(60000)))],
    ];
    for (const [name, make] of hostile) {
      const p = ready();
      const s = opened(p);
      const pending = p.openExec({ argv: ['x'] }).session;
      expect(() => p.receive(make(p, s, pending)), name).toThrow(AgentProtocolError);
    }
  });

  it('fuzz: random and mutated frames from the guest give events or AgentProtocolError, nothing else', () => {
    let seed = 7;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const types = [...Object.values(FrameType), 0x00, 0x30, 0x31, 0xff];
    let events = 0;
    let errors = 0;
    for (let round = 0; round < 400; round++) {
      const p = ready();
      const s = opened(p, 100, DEFAULT_WINDOW);
      try {
        for (let i = 0; i < 30; i++) {
          // mostly well-formed traffic, with a hostile frame now and then
          let frame =
            rnd(4) ? data(s, 1 + rnd(2), crypto.randomBytes(1 + rnd(20)))
            : encodeFrame(
                types[rnd(types.length)],
                [0, s, s + 1, 2 ** 31][rnd(4)],
                rnd(3) === 0 ? crypto.randomBytes(rnd(40))
                : rnd(2) ? json({ code: rnd(2) ? 0 : null, signal: null, timedOut: false })
                : Buffer.concat([Buffer.from([rnd(3)]), crypto.randomBytes(rnd(20))]),
              );
          if (rnd(10) === 0) frame = frame.subarray(0, rnd(frame.length));
          events += p.receive(frame).length;
        }
      } catch (err) {
        expect(err).toBeInstanceOf(AgentProtocolError);
        errors++;
      }
    }
    expect(errors).toBeGreaterThan(100);
    expect(events).toBeGreaterThan(0);
  });
});
