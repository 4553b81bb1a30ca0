/**
 * The netstack link over real unix sockets in a temp dir, with a fake network whose tcp() connects
 * to a real destination server on 127.0.0.1. The test plays the helper: it opens connections to the
 * link's socket and speaks the wire protocol (one first line, then bytes or CTL frames).
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  CtlFrameReader,
  encodeFrame,
  FRAME_DNS_ANSWER,
  FRAME_DNS_QUERY,
  FRAME_UDP_REFUSED,
  MAX_DNS_IN_FLIGHT,
  NetstackLink,
  parseHeader,
  replyLine,
  REPLY_MAX_BYTES,
} from './netstack-link.ts';
import type { GuestNetwork } from './sprite-network.ts';

/** One end of a connection, recording what it reads and whether it ended or closed. */
class Peer {
  private chunks: Buffer[] = [];
  bytes = 0;
  ended = false;
  closed = false;
  constructor(readonly sock: net.Socket) {
    sock.on('data', (c: Buffer) => {
      this.chunks.push(c);
      this.bytes += c.length;
    });
    sock.on('end', () => (this.ended = true));
    sock.on('close', () => (this.closed = true));
    sock.on('error', () => {});
  }
  get data(): Buffer {
    if (this.chunks.length > 1) this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0] ?? Buffer.alloc(0);
  }
  text(): string {
    return this.data.toString('latin1');
  }
}

async function until(cond: () => boolean, what: string, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let dir: string;
let dest: net.Server;
let destPort: number;
/** Connections the destination accepted, in order. */
let arrived: Peer[] = [];

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'netstack-'));
  dest = net.createServer({ allowHalfOpen: true }, (s) => arrived.push(new Peer(s)));
  await new Promise<void>((r) => dest.listen(0, '127.0.0.1', r));
  destPort = (dest.address() as net.AddressInfo).port;
});

afterAll(() => {
  dest.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function connectTo(address: string, port: number): Promise<net.Socket> {
  const s = net.connect({ host: address, port, allowHalfOpen: true });
  await once(s, 'connect');
  return s;
}

const defaults = (): GuestNetwork => ({
  tcp: async (d) => ({ ok: true, socket: await connectTo(d.address, d.port) }),
  answerDns: async (p) => Buffer.concat([Buffer.from('A:'), p]),
  udp: (d) => (udps.push(d), 'refused'),
  dnsStream: async () => {},
});

let impl: GuestNetwork;
let udps: { address: string; port: number }[];
let logs: string[];
let link: NetstackLink;
let socketPath: string;
let n = 0;
const clients: net.Socket[] = [];

async function start(headerTimeoutMs?: number): Promise<void> {
  link?.close();
  socketPath = path.join(dir, `link-${n++}.sock`);
  const network: GuestNetwork = {
    tcp: (d) => impl.tcp(d),
    answerDns: (p) => impl.answerDns(p),
    udp: (d) => impl.udp(d),
    dnsStream: (s) => impl.dnsStream(s),
  };
  link = new NetstackLink({ socketPath, network, log: (l) => logs.push(l), headerTimeoutMs });
  await link.listen();
}

beforeEach(async () => {
  arrived = [];
  udps = [];
  logs = [];
  impl = defaults();
  await start();
});

afterEach(() => {
  link.close();
  for (const c of clients.splice(0)) c.destroy();
  for (const p of arrived) p.sock.destroy();
});

/**
 * A helper connection to the link, having sent `first` (the first line and whatever follows it).
 * `halfOpen`: it stays open for writing after the link ended its side (otherwise it ends too, and
 * closes once both have).
 */
async function helper(first: string | Buffer = '', halfOpen = false): Promise<Peer> {
  const s = net.connect({ path: socketPath, allowHalfOpen: halfOpen });
  clients.push(s);
  const p = new Peer(s);
  await once(s, 'connect');
  if (first.length) s.write(first);
  return p;
}

const tcpLine = (port = destPort, address = '127.0.0.1') => `TCP ${address} ${port}\n`;

/** A piped connection: the helper side (OK read) and the destination side. */
async function piped(early = '', halfOpen = true): Promise<{ h: Peer; d: Peer }> {
  const h = await helper(tcpLine() + early, halfOpen);
  await until(() => h.text().startsWith('OK\n') && arrived.length === 1, 'OK and the destination');
  return { h, d: arrived[0] };
}

describe('parseHeader', () => {
  it.each([
    ['TCP 1.2.3.4 80\n', '1.2.3.4', 80],
    ['TCP 0.0.0.0 1\n', '0.0.0.0', 1],
    ['TCP 255.255.255.255 65535\n', '255.255.255.255', 65535],
    ['TCP 10.0.2.100 443\n', '10.0.2.100', 443],
  ])('%j is a TCP connection', (line, address, port) => {
    expect(parseHeader(line)).toEqual({ kind: 'tcp', address, port });
  });

  it('CTL\\n is the control stream', () => {
    expect(parseHeader('CTL\n')).toEqual({ kind: 'ctl' });
  });

  it.each([
    'TCP 01.2.3.4 80\n',
    'TCP 1.2.3.00 80\n',
    'TCP 1.2.3.4 080\n',
    'TCP 256.1.1.1 80\n',
    'TCP 1.2.3.999 80\n',
    'TCP 1.2.3.4 0\n',
    'TCP 1.2.3.4 65536\n',
    'TCP 1.2.3.4 99999\n',
    'TCP 1.2.3.4 -1\n',
    'TCP 1.2.3.4 +80\n',
    'TCP 1.2.3.4 0x50\n',
    'TCP ::1 80\n',
    'TCP [::1] 80\n',
    'TCP ::ffff:1.2.3.4 80\n',
    'TCP example.com 80\n',
    'TCP localhost 80\n',
    'TCP 1.2.3 80\n',
    'TCP 1.2.3.4.5 80\n',
    'TCP 1.2.3.4\n',
    'TCP 1.2.3.4:80\n',
    'TCP\n',
    'TCP  1.2.3.4 80\n',
    'TCP 1.2.3.4  80\n',
    'TCP 1.2.3.4 80 \n',
    'TCP 1.2.3.4 80 x\n',
    'TCP 1.2.3.4\t80\n',
    'TCP 1.2.3.4 80\r\n',
    'TCP 1.2.3.4 \u0668\u0660\n',
  ])('%j is a bad TCP line: answered NO invalid', (line) => {
    const h = parseHeader(line);
    expect(h).toMatchObject({ kind: 'invalid', reply: true });
  });

  it.each([
    'tcp 1.2.3.4 80\n',
    'Tcp 1.2.3.4 80\n',
    'TCP1.2.3.4 80\n',
    'ctl\n',
    'CTL \n',
    'CTL\r\n',
    'UDP 1.2.3.4 53\n',
    '\n',
    'GET / HTTP/1.1\n',
  ])('%j is not this protocol: dropped without a reply', (line) => {
    expect(parseHeader(line)).toMatchObject({ kind: 'invalid', reply: false });
  });

  it('a line must end with its one newline', () => {
    expect(parseHeader('TCP 1.2.3.4 80')).toMatchObject({ kind: 'invalid', reply: false, why: expect.stringContaining('newline') });
    expect(parseHeader('CTL')).toMatchObject({ kind: 'invalid', reply: false });
    expect(parseHeader('CTL\nX')).toMatchObject({ kind: 'invalid', reply: false });
    expect(parseHeader('')).toMatchObject({ kind: 'invalid', reply: false });
  });

  it('a line is at most 64 bytes, its newline included', () => {
    expect(parseHeader(`${'X'.repeat(63)}\n`)).toMatchObject({ kind: 'invalid', why: expect.stringContaining('unknown') });
    expect(parseHeader('X'.repeat(64))).toMatchObject({ kind: 'invalid', reply: false, why: expect.stringContaining('over 64 bytes') });
    expect(parseHeader('X'.repeat(63))).toMatchObject({ kind: 'invalid', reply: false, why: expect.stringContaining('newline') });
    expect(parseHeader(`${'X'.repeat(64)}\n`)).toMatchObject({ kind: 'invalid', reply: false, why: expect.stringContaining('over 64 bytes') });
    expect(parseHeader(`TCP 1.2.3.4 80${' '.repeat(60)}\n`)).toMatchObject({ kind: 'invalid', reply: false });
  });

  it('what a line says is shown safely in why', () => {
    const h = parseHeader('TCP \x1b]0;x\x07 80\n');
    expect(h.kind === 'invalid' && h.why).toContain('\\x1b]0;x\\x07');
    expect(h.kind === 'invalid' && h.why).not.toMatch(/[\x00-\x1f]/);
  });
});

describe('replyLine', () => {
  it('is NO, the kind and the message on one line', () => {
    expect(replyLine('refused', 'spritely: no.')).toBe('NO refused spritely: no.\n');
  });

  it('a message with newlines and controls comes out as one printable line', () => {
    const line = replyLine('refused', 'first\nsecond\r\nthird\x1b[31m red\u202eevil\x00');
    expect(line).toBe('NO refused first second third\\x1b[31m red\\u202eevil\\x00\n');
  });

  it('is cut to 1024 bytes without splitting a character', () => {
    for (const ch of ['x', 'é', '€', '😀']) {
      const line = replyLine('unreachable', ch.repeat(3000));
      expect(Buffer.byteLength(line)).toBeLessThanOrEqual(REPLY_MAX_BYTES);
      expect(Buffer.byteLength(line)).toBeGreaterThan(REPLY_MAX_BYTES - 8);
      expect(line.endsWith('…\n')).toBe(true);
      expect(line).not.toContain('\ufffd');
      expect(Buffer.from(line).toString()).toBe(line);
      expect(line.indexOf('\n')).toBe(line.length - 1);
    }
  });
});

describe('CtlFrameReader', () => {
  const query = (tag: number, body: string) => encodeFrame(FRAME_DNS_QUERY, tag, Buffer.from(body));

  it('reads frames split byte by byte and coalesced', () => {
    const bytes = Buffer.concat([query(1, 'one'), query(0xffffffff, 'two'), encodeFrame(FRAME_UDP_REFUSED, 7, Buffer.from([1, 2, 3, 4, 0, 53]))]);
    const r = new CtlFrameReader();
    const split = [...bytes].flatMap((b) => r.push(Buffer.from([b])));
    const whole = new CtlFrameReader().push(bytes);
    const want = [
      { type: 1, tag: 1, payload: Buffer.from('one') },
      { type: 1, tag: 0xffffffff, payload: Buffer.from('two') },
      { type: 3, tag: 7, payload: Buffer.from([1, 2, 3, 4, 0, 53]) },
    ];
    expect(split).toEqual(want);
    expect(whole).toEqual(want);
  });

  it('reads a frame of the largest payload', () => {
    const big = Buffer.alloc(0xffff, 7);
    const f = new CtlFrameReader().push(Buffer.concat([query(9, ''), encodeFrame(FRAME_DNS_QUERY, 3, big)]).subarray(7));
    expect(f).toEqual([{ type: 1, tag: 3, payload: big }]);
  });

  it.each([
    [encodeFrame(FRAME_DNS_QUERY, 1, Buffer.alloc(0)), 'empty DNS query'],
    [encodeFrame(FRAME_DNS_ANSWER, 1, Buffer.from('x')), 'DNS answer frame'],
    [encodeFrame(FRAME_UDP_REFUSED, 1, Buffer.alloc(5)), 'refused-datagram frame of 5 bytes'],
    [encodeFrame(FRAME_UDP_REFUSED, 1, Buffer.alloc(7)), 'refused-datagram frame of 7 bytes'],
    [encodeFrame(9, 1, Buffer.from('x')), 'unknown type 9'],
    [encodeFrame(0, 1, Buffer.from('x')), 'unknown type 0'],
  ])('fails on a bad frame from its header alone (%#)', (frame, why) => {
    const r = new CtlFrameReader();
    expect(r.push(frame.subarray(0, 7))).toEqual([]);
    expect(r.failed).toContain(why);
    expect(r.push(query(1, 'after'))).toEqual([]);
  });

  it('encodeFrame refuses a payload over 65535 bytes', () => {
    expect(() => encodeFrame(FRAME_DNS_ANSWER, 1, Buffer.alloc(0x10000))).toThrow(RangeError);
  });
});

describe('TCP connections', () => {
  it('OK, then bytes both ways; what came after the first line reaches the destination first', async () => {
    const seen: { address: string; port: number; signal?: AbortSignal }[] = [];
    const connect = impl.tcp;
    impl.tcp = (d) => (seen.push(d), connect(d));
    const { h, d } = await piped('EARLY|');
    h.sock.write('more');
    await until(() => d.text() === 'EARLY|more', 'the helper bytes at the destination');
    d.sock.write('hello');
    await until(() => h.text() === 'OK\nhello', 'the destination bytes at the helper');
    expect(seen).toEqual([{ address: '127.0.0.1', port: destPort, signal: expect.any(AbortSignal) }]);
    expect(link.open).toBe(1);
  });

  it('bytes the helper sends while the network decides reach the destination first, in order', async () => {
    let go!: () => void;
    const connect = impl.tcp;
    impl.tcp = async (d) => (await new Promise<void>((r) => (go = r)), connect(d));
    const h = await helper(tcpLine() + 'one|');
    await sleep(20);
    h.sock.write('two|');
    await sleep(20);
    go();
    await until(() => h.text() === 'OK\n' && arrived.length === 1, 'OK');
    h.sock.write('three');
    await until(() => arrived[0].text() === 'one|two|three', 'the early bytes first');
  });

  it('the helper ending its side ends the destination’s; the destination may still answer', async () => {
    const { h, d } = await piped();
    h.sock.end('request');
    await until(() => d.ended, 'the end at the destination');
    expect(d.text()).toBe('request');
    d.sock.end('late answer');
    await until(() => h.ended && h.closed, 'the helper connection to end and close');
    expect(h.text()).toBe('OK\nlate answer');
    await until(() => d.closed && link.open === 0, 'both closed');
  });

  it('the destination ending its side ends the helper’s; the helper may still send', async () => {
    const { h, d } = await piped();
    d.sock.end('bye');
    await until(() => h.ended, 'the end at the helper');
    expect(h.text()).toBe('OK\nbye');
    expect(h.closed).toBe(false);
    h.sock.write('still here');
    await until(() => d.text() === 'still here', 'bytes after the destination ended');
    h.sock.end();
    await until(() => d.ended && d.closed && h.closed && link.open === 0, 'both closed');
  });

  it('a destination that resets closes the helper connection', async () => {
    const { h, d } = await piped('', false);
    d.sock.resetAndDestroy();
    await until(() => h.closed, 'the helper connection closed');
    await until(() => link.open === 0, 'the pipe forgotten');
  });

  it('keeps backpressure: while the helper does not read, the destination is not read either', async () => {
    const { h, d } = await piped();
    h.sock.pause();
    const chunk = Buffer.alloc(256 * 1024);
    let stop = false;
    const pump = () => {
      while (!stop && d.sock.write(chunk));
    };
    d.sock.on('drain', pump);
    pump();
    await sleep(1000);
    stop = true;
    // what left the destination's process: the kernel's buffers and a stream buffer or two, not all it offered
    const taken = d.sock.bytesWritten - d.sock.writableLength;
    expect(taken).toBeLessThan(16 * 1024 * 1024);
    expect(h.bytes).toBeLessThan(16 * 1024 * 1024);
    h.sock.resume();
    await until(() => h.bytes === 3 + d.sock.bytesWritten, 'everything delivered once the helper reads', 10_000);
  });

  it.each(['invalid', 'refused', 'unreachable', 'busy'] as const)('refused (%s): NO kind message, then the end', async (kind) => {
    impl.tcp = async () => ({ ok: false, kind, message: `spritely: not allowed (${kind}).` });
    const h = await helper(tcpLine(80, '192.0.2.1') + 'ignored');
    await until(() => h.ended, 'the end');
    expect(h.text()).toBe(`NO ${kind} spritely: not allowed (${kind}).\n`);
    await until(() => h.closed, 'the close');
    expect(link.open).toBe(0);
  });

  it('a refusal message with newlines and controls comes out as one safe line', async () => {
    impl.tcp = async () => ({ ok: false, kind: 'refused', message: 'a\nb\x1b[2Jc\u202ed' });
    const h = await helper(tcpLine(80, '192.0.2.1'));
    await until(() => h.ended, 'the end');
    expect(h.text()).toBe('NO refused a b\\x1b[2Jc\\u202ed\n');
  });

  it('tcp() throwing is NO unreachable with its message', async () => {
    impl.tcp = async () => {
      throw new Error('boom');
    };
    const h = await helper(tcpLine(80, '192.0.2.1'));
    await until(() => h.ended, 'the end');
    expect(h.text()).toBe('NO unreachable spritely: 192.0.2.1:80: boom\n');
  });

  it('a bad TCP line is NO invalid, and logged', async () => {
    const h = await helper('TCP 1.2.3.4 080\n');
    await until(() => h.ended, 'the end');
    expect(h.text()).toMatch(/^NO invalid spritely: "TCP 1\.2\.3\.4 080" is not /);
    expect(h.text().endsWith('\n')).toBe(true);
    expect(logs).toEqual([expect.stringContaining('"TCP 1.2.3.4 080"')]);
  });

  it('the helper leaving while tcp() decides aborts its signal, and a socket it then returns is closed', async () => {
    let signal!: AbortSignal;
    let returned: net.Socket | null = null;
    impl.tcp = async (d) => {
      signal = d.signal!;
      await once(signal, 'abort');
      returned = await connectTo('127.0.0.1', destPort);
      return { ok: true, socket: returned };
    };
    const h = await helper(tcpLine());
    await until(() => signal !== undefined, 'tcp() called');
    expect(signal.aborted).toBe(false);
    h.sock.destroy();
    await until(() => signal.aborted, 'the abort');
    await until(() => returned !== null && returned.destroyed, 'the late socket closed');
    expect(link.open).toBe(0);
  });

  it('port 53: OK, then the DNS stream server gets the bytes, the early ones first', async () => {
    let got = '';
    impl.tcp = async (d) => (d.port === 53 ? { ok: 'dns' } : { ok: false, kind: 'refused', message: 'no' });
    impl.dnsStream = (s) =>
      new Promise((resolve) => {
        s.on('data', (c: Buffer) => {
          got += c.toString();
          if (got === 'LEFTOVER') s.end('ANSWER');
        });
        s.on('close', resolve);
      });
    const h = await helper('TCP 10.0.2.3 53\nLEFT');
    await until(() => h.text() === 'OK\n', 'OK');
    expect(link.open).toBe(1);
    h.sock.write('OVER');
    await until(() => h.ended, 'the answer and the end');
    expect(h.text()).toBe('OK\nANSWER');
    expect(got).toBe('LEFTOVER');
    h.sock.end();
    await until(() => h.closed && link.open === 0, 'the stream closed');
  });
});

describe('first lines', () => {
  it('something else is dropped without a reply, and logged safely', async () => {
    const h = await helper('HELLO \x1b[31m\n');
    await until(() => h.closed, 'the close');
    expect(h.text()).toBe('');
    expect(logs).toEqual(['netstack: a connection sent an unknown first line "HELLO \\x1b[31m"; closed it']);
  });

  it('64 bytes without a newline are dropped at once', async () => {
    const h = await helper('A'.repeat(64));
    await until(() => h.closed, 'the close');
    expect(h.text()).toBe('');
    expect(logs).toEqual([expect.stringContaining('over 64 bytes')]);
  });

  it('a first line that never finishes is dropped after the timeout', async () => {
    await start(150);
    const t0 = Date.now();
    const h = await helper('TCP 1.2');
    const silent = await helper();
    await until(() => h.closed && silent.closed, 'both closed');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(140);
    expect(logs).toEqual([expect.stringContaining('no complete first line in 150 ms'), expect.stringContaining('no complete first line in 150 ms')]);
  });

  it('a first line split over writes is read whole', async () => {
    const h = await helper('TC');
    await sleep(20);
    h.sock.write('P 127.0.0.1 ');
    await sleep(20);
    h.sock.write(`${destPort}\nafter`);
    await until(() => h.text() === 'OK\n' && arrived.length === 1 && arrived[0].text() === 'after', 'OK and the bytes');
  });
});

describe('the control stream', () => {
  async function ctl(): Promise<Peer> {
    return helper('CTL\n');
  }
  /** The whole frames the helper has read. */
  const frames = (p: Peer) => {
    const out: { type: number; tag: number; payload: Buffer }[] = [];
    for (let b = p.data; b.length >= 7 && b.length >= 7 + b.readUInt16BE(5); b = b.subarray(7 + b.readUInt16BE(5))) {
      out.push({ type: b[0], tag: b.readUInt32BE(1), payload: b.subarray(7, 7 + b.readUInt16BE(5)) });
    }
    return out;
  };
  const query = (tag: number, body: string) => encodeFrame(FRAME_DNS_QUERY, tag, Buffer.from(body));

  it('a query is answered with its tag', async () => {
    const c = await ctl();
    c.sock.write(query(0xdeadbeef, 'q1'));
    await until(() => frames(c).length === 1, 'the answer');
    expect(frames(c)).toEqual([{ type: FRAME_DNS_ANSWER, tag: 0xdeadbeef, payload: Buffer.from('A:q1') }]);
  });

  it('a query in the same write as CTL is answered', async () => {
    const c = await helper(Buffer.concat([Buffer.from('CTL\n'), query(5, 'early')]));
    await until(() => frames(c).length === 1, 'the answer');
    expect(frames(c)[0]).toMatchObject({ tag: 5, payload: Buffer.from('A:early') });
  });

  it('answers go out as they come, in any order', async () => {
    const waiting = new Map<string, (a: Uint8Array) => void>();
    impl.answerDns = (p) => new Promise((r) => waiting.set(Buffer.from(p).toString(), r));
    const c = await ctl();
    c.sock.write(Buffer.concat([query(1, 'first'), query(2, 'second')]));
    await until(() => waiting.size === 2, 'both asked');
    waiting.get('second')!(Buffer.from('two'));
    await until(() => frames(c).length === 1, 'the second answer');
    waiting.get('first')!(Buffer.from('one'));
    await until(() => frames(c).length === 2, 'the first answer');
    expect(frames(c).map((f) => [f.tag, f.payload.toString()])).toEqual([
      [2, 'two'],
      [1, 'one'],
    ]);
  });

  it('a frame split byte by byte is read', async () => {
    const c = await ctl();
    for (const b of query(77, 'split')) {
      c.sock.write(Buffer.from([b]));
      await sleep(2);
    }
    await until(() => frames(c).length === 1, 'the answer');
    expect(frames(c)[0]).toMatchObject({ tag: 77, payload: Buffer.from('A:split') });
  });

  it('two frames in one write are both handled', async () => {
    const c = await ctl();
    c.sock.write(Buffer.concat([encodeFrame(FRAME_UDP_REFUSED, 0, Buffer.from([192, 0, 2, 1, 0x30, 0x39])), query(8, 'both')]));
    await until(() => frames(c).length === 1, 'the answer');
    expect(udps).toEqual([{ address: '192.0.2.1', port: 12345 }]);
    expect(frames(c)[0]).toMatchObject({ tag: 8 });
  });

  it('no answer sends nothing', async () => {
    impl.answerDns = async (p) => (Buffer.from(p).toString() === 'none' ? null : Buffer.from('yes'));
    const c = await ctl();
    c.sock.write(query(1, 'none'));
    await sleep(30);
    c.sock.write(query(2, 'some'));
    await until(() => c.data.length > 0, 'an answer');
    await sleep(30);
    expect(frames(c)).toEqual([{ type: FRAME_DNS_ANSWER, tag: 2, payload: Buffer.from('yes') }]);
    expect(logs).toEqual([]);
  });

  it('answerDns throwing is logged, nothing is sent, and the stream goes on', async () => {
    impl.answerDns = async (p) => {
      if (Buffer.from(p).toString() === 'bad') throw new Error('resolver\nbroke');
      return Buffer.from('fine');
    };
    const c = await ctl();
    c.sock.write(query(1, 'bad'));
    await until(() => logs.length === 1, 'the log line');
    expect(logs[0]).toBe('netstack: a DNS query was not answered: resolver\\x0abroke');
    c.sock.write(query(2, 'good'));
    await until(() => frames(c).length === 1, 'the next answer');
    expect(frames(c)[0].tag).toBe(2);
  });

  it('a refused datagram is handed to udp() with its address and port', async () => {
    const c = await ctl();
    c.sock.write(encodeFrame(FRAME_UDP_REFUSED, 0, Buffer.from([10, 0, 2, 15, 0x1f, 0x90])));
    c.sock.write(encodeFrame(FRAME_UDP_REFUSED, 0, Buffer.from([255, 255, 255, 255, 0xff, 0xff])));
    await until(() => udps.length === 2, 'two calls');
    expect(udps).toEqual([
      { address: '10.0.2.15', port: 8080 },
      { address: '255.255.255.255', port: 65535 },
    ]);
    expect(c.closed).toBe(false);
  });

  it.each([
    ['an unknown type', encodeFrame(9, 1, Buffer.from('x')), 'unknown type 9'],
    ['a DNS answer from the helper', encodeFrame(FRAME_DNS_ANSWER, 1, Buffer.from('x')), 'DNS answer frame'],
    ['a refused datagram of 5 bytes', encodeFrame(FRAME_UDP_REFUSED, 1, Buffer.alloc(5)), '5 bytes'],
    ['an empty query', encodeFrame(FRAME_DNS_QUERY, 1, Buffer.alloc(0)), 'empty DNS query'],
  ])('%s closes that control stream only', async (_what, bad, why) => {
    const { h, d } = await piped();
    const c = await ctl();
    const other = await ctl();
    c.sock.write(bad);
    await until(() => c.closed, 'the control stream closed');
    expect(logs).toEqual([expect.stringContaining(why)]);
    h.sock.write('still');
    await until(() => d.text() === 'still', 'the TCP connection still works');
    other.sock.write(query(3, 'alive'));
    await until(() => frames(other).length === 1, 'the other control stream still answers');
    expect(other.closed).toBe(false);
  });

  it(`answers at most ${MAX_DNS_IN_FLIGHT} queries at once; more are dropped`, async () => {
    const waiting: ((a: Uint8Array) => void)[] = [];
    impl.answerDns = () => new Promise((r) => waiting.push(r));
    const c = await ctl();
    c.sock.write(Buffer.concat(Array.from({ length: MAX_DNS_IN_FLIGHT + 1 }, (_, i) => query(i, `q${i}`))));
    await until(() => waiting.length === MAX_DNS_IN_FLIGHT, `${MAX_DNS_IN_FLIGHT} asked`);
    await sleep(50);
    expect(waiting.length).toBe(MAX_DNS_IN_FLIGHT);
    waiting[0](Buffer.from('done'));
    await until(() => frames(c).length === 1, 'one answer');
    c.sock.write(query(999, 'next'));
    await until(() => waiting.length === MAX_DNS_IN_FLIGHT + 1, 'a freed slot used');
    expect(c.closed).toBe(false);
  });

  it('answers after the stream closed are dropped', async () => {
    let answer!: (a: Uint8Array) => void;
    impl.answerDns = () => new Promise((r) => (answer = r));
    const c = await ctl();
    c.sock.write(query(1, 'q'));
    await until(() => answer !== undefined, 'asked');
    c.sock.destroy();
    await sleep(30);
    answer(Buffer.from('late'));
    await sleep(30);
    expect(logs).toEqual([]);
  });
});

describe('the socket', () => {
  it('is 0600 and replaces a stale file', async () => {
    expect(fs.statSync(socketPath).mode & 0o777).toBe(0o600);
    link.close();
    fs.writeFileSync(socketPath, 'stale');
    link = new NetstackLink({ socketPath, network: impl });
    await link.listen();
    expect(fs.statSync(socketPath).isSocket()).toBe(true);
    expect(fs.statSync(socketPath).mode & 0o777).toBe(0o600);
  });

  it('close() ends live pipes, control streams and connections still deciding, and removes the socket', async () => {
    const { h, d } = await piped('', false);
    const c = await ctl();
    let signal!: AbortSignal;
    const connect = impl.tcp;
    impl.tcp = async (x) => ((signal = x.signal!), await once(signal, 'abort'), connect(x));
    const deciding = await helper(tcpLine());
    await until(() => signal !== undefined, 'deciding');
    link.close();
    await until(() => h.closed && d.closed && c.closed && deciding.closed && signal.aborted, 'everything closed');
    expect(fs.existsSync(socketPath)).toBe(false);
    expect(link.open).toBe(0);
  });

  async function ctl(): Promise<Peer> {
    return helper('CTL\n');
  }
});
