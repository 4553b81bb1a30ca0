import crypto from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { AgentProtocolError, encodeFrame, FrameType, MAX_PAYLOAD, NONCE_BYTES, PROTOCOL_VERSION } from './agent-frames.ts';
import { AgentProtocol } from './agent-protocol.ts';
import {
  AGENT_SESSION_BIT, CloseReason, decodeDestination, EARLY_WINDOW, encodeDestination, MAX_CLOSE_MESSAGE, MAX_RELAYED, RELAY_WINDOW, RelayProtocol,
} from './agent-relay-protocol.ts';

const A = (n: number) => (AGENT_SESSION_BIT | n) >>> 0;
const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};
const connectFrame = (session: number, window = 1000, address = '192.0.2.7', port = 22) =>
  encodeFrame(FrameType.TcpConnect, session, Buffer.concat([u32(window), encodeDestination(address, port)]));
const frameOf = (b: Buffer) => ({ type: b[4], session: b.readUInt32BE(5), payload: b.subarray(9) });

/** A relay protocol with connection A(1) open: the agent takes `toGuest`, this side granted `fromGuest`. */
function open(toGuest = 1000, fromGuest = 1000): RelayProtocol {
  const p = new RelayProtocol();
  expect(p.frame(frameOf(connectFrame(A(1), toGuest)))).toEqual({ kind: 'tcp-connect', session: A(1), address: '192.0.2.7', port: 22, window: toGuest });
  const c = p.connected(A(1), fromGuest);
  expect(c[4]).toBe(FrameType.TcpConnected);
  expect(c.readUInt32BE(9)).toBe(fromGuest);
  return p;
}

describe('relay destinations', () => {
  it('round-trip IPv4 and IPv6 (any spelling in, one spelling out), and nothing else decodes', () => {
    expect(decodeDestination(encodeDestination('140.82.121.3', 22))).toEqual({ address: '140.82.121.3', port: 22 });
    expect(decodeDestination(encodeDestination('2001:db8::1', 443))).toEqual({ address: '2001:db8:0:0:0:0:0:1', port: 443 });
    expect(decodeDestination(encodeDestination('::', 1))).toEqual({ address: '0:0:0:0:0:0:0:0', port: 1 });
    for (const n of [0, 1, 5, 7, 17, 19, 100]) expect(decodeDestination(Buffer.alloc(n))).toBeNull();
  });
});

describe('RelayProtocol: what the agent sends', () => {
  it('a connection: connect, data within the window, window grants, half-closes both ways, then it is forgotten', () => {
    const p = open(10, 100);
    expect(p.frame(frameOf(encodeFrame(FrameType.TcpData, A(1), Buffer.from('hello'))))).toEqual({ kind: 'tcp-data', session: A(1), data: Buffer.from('hello') });
    expect(p.credit(A(1))).toBe(10);
    const frames = p.data(A(1), Buffer.from('0123456789'));
    expect(frames.map((f) => f[4])).toEqual([FrameType.TcpData]);
    expect(p.credit(A(1))).toBe(0);
    expect(() => p.data(A(1), Buffer.from('x'))).toThrow(/credit/);
    expect(p.frame(frameOf(encodeFrame(FrameType.TcpWindow, A(1), u32(5))))).toEqual({ kind: 'tcp-window', session: A(1), bytes: 5 });
    expect(p.credit(A(1))).toBe(5);
    expect(p.window(A(1), 5).readUInt32BE(9)).toBe(5);
    expect(p.frame(frameOf(encodeFrame(FrameType.TcpEof, A(1))))).toEqual({ kind: 'tcp-eof', session: A(1) });
    expect(p.openCount).toBe(1);
    expect(p.eof(A(1))[4]).toBe(FrameType.TcpEof);
    expect(p.openCount).toBe(0);
    // its late frames crossed the end: dropped, not an error
    expect(p.frame(frameOf(encodeFrame(FrameType.TcpWindow, A(1), u32(5))))).toBeNull();
    expect(p.frame(frameOf(encodeFrame(FrameType.TcpClose, A(1), Buffer.from([0]))))).toBeNull();
  });

  it('early data: the agent may send its first bytes (and EOF) before the answer, within the early window; CONNECTED grants more on top', () => {
    const p = new RelayProtocol();
    p.frame(frameOf(connectFrame(A(1))));
    expect(p.credit(A(1))).toBe(0); // this side sends nothing before it is connected
    expect(p.frame(frameOf(encodeFrame(FrameType.TcpData, A(1), Buffer.alloc(EARLY_WINDOW - 1))))).toMatchObject({ kind: 'tcp-data', session: A(1) });
    expect(() => p.frame(frameOf(encodeFrame(FrameType.TcpData, A(1), Buffer.alloc(2))))).toThrow(/exceed the window of 1/);
    const q = new RelayProtocol();
    q.frame(frameOf(connectFrame(A(1))));
    q.frame(frameOf(encodeFrame(FrameType.TcpData, A(1), Buffer.alloc(EARLY_WINDOW))));
    expect(q.frame(frameOf(encodeFrame(FrameType.TcpEof, A(1))))).toEqual({ kind: 'tcp-eof', session: A(1) });
    const c = q.connected(A(1));
    expect(c.readUInt32BE(9)).toBe(RELAY_WINDOW - EARLY_WINDOW);
    const r = new RelayProtocol();
    r.frame(frameOf(connectFrame(A(1))));
    r.frame(frameOf(encodeFrame(FrameType.TcpData, A(1), Buffer.alloc(EARLY_WINDOW))));
    r.connected(A(1), 10);
    expect(r.frame(frameOf(encodeFrame(FrameType.TcpData, A(1), Buffer.alloc(10))))).toMatchObject({ kind: 'tcp-data' });
    expect(() => r.frame(frameOf(encodeFrame(FrameType.TcpData, A(1), Buffer.alloc(1))))).toThrow(AgentProtocolError);
  });

  it('large data is split into frames of at most 64 KiB', () => {
    const p = open(RELAY_WINDOW);
    const frames = p.data(A(1), crypto.randomBytes(MAX_PAYLOAD * 2 + 1));
    expect(frames.map((f) => f.length - 9)).toEqual([MAX_PAYLOAD, MAX_PAYLOAD, 1]);
  });

  it('a refusal ends a connection that never opened; its late frames are dropped', () => {
    const p = new RelayProtocol();
    p.frame(frameOf(connectFrame(A(1))));
    const f = p.close(A(1), CloseReason.Refused, 'spritely: 192.0.2.7:22 refused: no')!;
    expect(f[4]).toBe(FrameType.TcpClose);
    expect(f[9]).toBe(CloseReason.Refused);
    expect(f.subarray(10).toString()).toBe('spritely: 192.0.2.7:22 refused: no');
    expect(p.close(A(1), CloseReason.Reset)).toBeNull();
    expect(p.frame(frameOf(encodeFrame(FrameType.TcpData, A(1), Buffer.from('x'))))).toBeNull();
    expect(p.close(A(2), CloseReason.Reset)).toBeNull();
    // a long message is cut to what a CLOSE may carry
    p.frame(frameOf(connectFrame(A(2))));
    expect(p.close(A(2), CloseReason.Refused, 'x'.repeat(5000))!.length).toBe(9 + 1 + MAX_CLOSE_MESSAGE);
  });

  it('the agent resetting ends the connection', () => {
    const p = open();
    expect(p.frame(frameOf(encodeFrame(FrameType.TcpClose, A(1), Buffer.from([CloseReason.Reset]))))).toEqual({ kind: 'tcp-close', session: A(1) });
    expect(p.openCount).toBe(0);
    expect(() => p.data(A(1), Buffer.from('x'))).toThrow(/not open/);
  });

  it('DNS queries and refused datagrams', () => {
    const p = new RelayProtocol();
    expect(p.frame(frameOf(encodeFrame(FrameType.DnsQuery, 0, Buffer.from([0, 7, 1, 2, 3]))))).toEqual({ kind: 'dns-query', handle: 7, message: Buffer.from([1, 2, 3]) });
    expect(p.frame(frameOf(encodeFrame(FrameType.UdpRefused, 0, encodeDestination('203.0.113.5', 123))))).toEqual({ kind: 'udp-refused', address: '203.0.113.5', port: 123 });
    const a = p.dnsAnswer(7, Buffer.from([9, 9]));
    expect([...a]).toEqual([0, 0, 0, 9, FrameType.DnsAnswer, 0, 0, 0, 0, 0, 7, 9, 9]);
    expect(() => p.dnsAnswer(70000, Buffer.alloc(1))).toThrow(RangeError);
  });

  it('ids: the agent\'s, increasing; dropAll keeps counting (a resumed epoch), reset starts again', () => {
    const p = open();
    expect(() => p.frame(frameOf(connectFrame(A(1))))).toThrow(/not above/);
    p.frame(frameOf(connectFrame(A(5))));
    expect(() => p.frame(frameOf(connectFrame(A(3))))).toThrow(/not above/);
    p.dropAll();
    expect(p.frame(frameOf(encodeFrame(FrameType.TcpData, A(5), Buffer.from('x'))))).toBeNull();
    expect(() => p.frame(frameOf(connectFrame(A(5))))).toThrow(/not above/);
    p.reset();
    expect(p.frame(frameOf(connectFrame(A(1))))).toMatchObject({ kind: 'tcp-connect' });
  });

  it('refuses every frame the agent may not send, or not now', () => {
    const bad: Array<[string, (p: RelayProtocol) => void, Buffer]> = [
      ['a CONNECT on a host id', () => {}, connectFrame(5)],
      ['a CONNECT on session 0', () => {}, connectFrame(0)],
      ['a CONNECT on the bare top bit', () => {}, connectFrame(AGENT_SESSION_BIT)],
      ['a CONNECT with window 0', () => {}, connectFrame(A(2), 0)],
      ['a CONNECT with a window too big', () => {}, connectFrame(A(2), 2 ** 30 + 1)],
      ['a CONNECT without a destination', () => {}, encodeFrame(FrameType.TcpConnect, A(2), u32(10))],
      ['a CONNECT with 5 address bytes', () => {}, encodeFrame(FrameType.TcpConnect, A(2), Buffer.concat([u32(10), Buffer.alloc(7)]))],
      ['data before it opened, beyond the early window', (p) => (p.frame(frameOf(connectFrame(A(2)))), p.frame(frameOf(encodeFrame(FrameType.TcpData, A(2), Buffer.alloc(EARLY_WINDOW))))), encodeFrame(FrameType.TcpData, A(2), Buffer.from('x'))],
      ['a window grant before it opened', (p) => p.frame(frameOf(connectFrame(A(2)))), encodeFrame(FrameType.TcpWindow, A(2), u32(5))],
      ['empty data', () => {}, encodeFrame(FrameType.TcpData, A(1), Buffer.alloc(0))],
      ['data beyond the window (early and granted)', (p) => p.frame(frameOf(encodeFrame(FrameType.TcpData, A(1), Buffer.alloc(EARLY_WINDOW)))), encodeFrame(FrameType.TcpData, A(1), Buffer.alloc(1001))],
      ['data after its EOF', (p) => p.frame(frameOf(encodeFrame(FrameType.TcpEof, A(1)))), encodeFrame(FrameType.TcpData, A(1), Buffer.from('x'))],
      ['EOF twice', (p) => p.frame(frameOf(encodeFrame(FrameType.TcpEof, A(1)))), encodeFrame(FrameType.TcpEof, A(1))],
      ['EOF with a payload', () => {}, encodeFrame(FrameType.TcpEof, A(1), Buffer.from('x'))],
      ['a window of 0', () => {}, encodeFrame(FrameType.TcpWindow, A(1), u32(0))],
      ['a window past 1 GiB', () => {}, encodeFrame(FrameType.TcpWindow, A(1), u32(2 ** 30))],
      ['a short window', () => {}, encodeFrame(FrameType.TcpWindow, A(1), Buffer.alloc(3))],
      ['an empty CLOSE', () => {}, encodeFrame(FrameType.TcpClose, A(1))],
      ['a CLOSE too long', () => {}, encodeFrame(FrameType.TcpClose, A(1), Buffer.alloc(2 + MAX_CLOSE_MESSAGE))],
      ['data for an id never opened', () => {}, encodeFrame(FrameType.TcpData, A(9), Buffer.from('x'))],
      ['data on a host id', () => {}, encodeFrame(FrameType.TcpData, 1, Buffer.from('x'))],
      ['CONNECTED (the host sends it)', () => {}, encodeFrame(FrameType.TcpConnected, A(1), u32(10))],
      ['DNS_ANSWER (the host sends it)', () => {}, encodeFrame(FrameType.DnsAnswer, 0, Buffer.alloc(3))],
      ['a query on a session', () => {}, encodeFrame(FrameType.DnsQuery, A(1), Buffer.alloc(3))],
      ['a query of 2 bytes', () => {}, encodeFrame(FrameType.DnsQuery, 0, Buffer.alloc(2))],
      ['a refused datagram on a session', () => {}, encodeFrame(FrameType.UdpRefused, A(1), encodeDestination('192.0.2.1', 1))],
      ['a refused datagram of 5 bytes', () => {}, encodeFrame(FrameType.UdpRefused, 0, Buffer.alloc(5))],
      ['an unassigned relay type', () => {}, encodeFrame(0x3f, 0)],
    ];
    for (const [what, before, frame] of bad) {
      const p = open();
      before(p);
      expect(() => p.frame(frameOf(frame)), what).toThrow(AgentProtocolError);
    }
  });

  it('bounds how many connections are open at once', () => {
    const p = new RelayProtocol();
    for (let i = 1; i <= MAX_RELAYED; i++) p.frame(frameOf(connectFrame(A(i))));
    expect(() => p.frame(frameOf(connectFrame(A(MAX_RELAYED + 1))))).toThrow(/more than/);
  });

  it('refuses to send what this side may not', () => {
    const p = open();
    expect(() => p.connected(A(1))).toThrow(/not waiting/);
    expect(() => p.connected(A(7))).toThrow(/not waiting/);
    expect(() => p.window(A(1), 0)).toThrow(RangeError);
    expect(() => p.window(A(1), 2 ** 30)).toThrow(RangeError);
    p.eof(A(1));
    expect(() => p.eof(A(1))).toThrow(/already/);
    expect(() => p.data(A(1), Buffer.from('x'))).toThrow(/ended/);
    expect(p.credit(A(1))).toBe(0);
  });

  it('fuzz: random and mutated relay frames give an event, null or AgentProtocolError', () => {
    const seeds = [connectFrame(A(3)), encodeFrame(FrameType.TcpData, A(1), Buffer.from('abc')), encodeFrame(FrameType.TcpWindow, A(1), u32(9)), encodeFrame(FrameType.DnsQuery, 0, Buffer.from([0, 1, 2])), encodeFrame(FrameType.UdpRefused, 0, encodeDestination('192.0.2.1', 1))];
    for (let i = 0; i < 20_000; i++) {
      const p = open();
      const f = Buffer.from(seeds[i % seeds.length]);
      for (let k = crypto.randomInt(4); k >= 0; k--) f[4 + crypto.randomInt(f.length - 4)] = crypto.randomInt(256);
      f[4] = 0x30 + (f[4] & 0x0f);
      try {
        p.frame(frameOf(f.subarray(0, 9 + crypto.randomInt(f.length - 8))));
      } catch (err) {
        expect(err).toBeInstanceOf(AgentProtocolError);
      }
    }
  });
});

describe('AgentProtocol with the relay', () => {
  it('routes relay frames after the handshake; a new HELLO forgets every relayed connection', () => {
    const p = new AgentProtocol();
    const hello = p.hello();
    const v = Buffer.alloc(2);
    v.writeUInt16BE(PROTOCOL_VERSION);
    const info = { agent: 'spritely-agent', protocol: PROTOCOL_VERSION, pid: 1, maxSessions: 1024, maxPayload: 65536 };
    const ack = (nonce: Buffer) => encodeFrame(FrameType.HelloAck, 0, Buffer.concat([nonce, v, Buffer.from(JSON.stringify(info))]));
    p.receive(ack(hello.subarray(17, 17 + NONCE_BYTES)));
    expect(p.receive(connectFrame(A(1)))).toEqual([{ kind: 'tcp-connect', session: A(1), address: '192.0.2.7', port: 22, window: 1000 }]);
    // a dropped frame gives no event
    p.relay.close(A(1), CloseReason.Refused);
    expect(p.receive(encodeFrame(FrameType.TcpClose, A(1), Buffer.from([0])))).toEqual([]);
    const again = p.hello();
    p.receive(ack(again.subarray(17, 17 + NONCE_BYTES)));
    expect(p.relay.openCount).toBe(0);
    expect(p.receive(connectFrame(A(1)))).toHaveLength(1);
  });
});
