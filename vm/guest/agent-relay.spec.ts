/**
 * The network relay end to end without a VM: the real guest agent (built from
 * resources/guest-agent, `--listen unix:PATH`, its relay and DNS listeners on loopback, every
 * relayed connection "going to" 192.0.2.10:7 since nothing redirects here) and the real client
 * with a network whose connections lead to loopback servers of this spec. What the policy decides
 * is vm/net's; here: bytes both ways and intact, windows, half-closes, resets, refusals, DNS over
 * UDP and TCP, and a channel that ends taking its connections with it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import dgram from 'node:dgram';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { serveDnsStream } from '../net/dns-stream.ts';
import { freeLoopbackPort } from '../net/free-port.ts';
import { buildAgent } from './agent-build.ts';
import { AgentClient, unixSocket } from './agent-client.ts';
import type { GuestNetwork } from '../net/sprite-network.ts';
import { AgentRelay, MAX_DNS_IN_FLIGHT } from './agent-relay.ts';
import { RelayProtocol } from './agent-relay-protocol.ts';

let dir: string;
let proc: ChildProcess;
let client: AgentClient;
let relayPort: number;
let dnsPort: number;
const servers: net.Server[] = [];

/** What the fake network does with the next connections. */
let mode: 'connect' | 'refuse' | 'dns' = 'connect';
let target = 0;
const asked: Array<{ address: string; port: number }> = [];
const serverSockets: net.Socket[] = [];

const network: GuestNetwork = {
  async tcp(d) {
    asked.push({ address: d.address, port: d.port });
    if (mode === 'refuse') return { ok: false, kind: 'refused', message: `spritely: ${d.address}:${d.port} refused: it is not in this sprite's allow list (allow=example.org)` };
    if (mode === 'dns') return { ok: 'dns' };
    const socket = net.connect(target, '127.0.0.1');
    await once(socket, 'connect');
    return { ok: true, socket };
  },
  async answerDns(packet) {
    return Buffer.concat([Buffer.from('answer to '), Buffer.from(packet)]);
  },
  udp: () => 'refused',
  dnsStream(stream) {
    return serveDnsStream(stream, async (p) => Buffer.concat([Buffer.from('tcp answer: '), Buffer.from(p)]));
  },
};

/** A loopback server; a connection ends its side when the guest's side ends, unless `halfOpen`. */
async function server(onConn: (s: net.Socket) => void, halfOpen = false): Promise<number> {
  const s = net.createServer({ allowHalfOpen: halfOpen }, (sock) => {
    serverSockets.push(sock);
    onConn(sock);
  });
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return (s.address() as net.AddressInfo).port;
}

/** A guest program's connection (to the relay port, as the redirect would make it). */
function guestConnect(): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port: relayPort, host: '127.0.0.1', allowHalfOpen: true });
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

function readAll(s: net.Socket): Promise<{ data: Buffer; error: NodeJS.ErrnoException | null }> {
  return new Promise((resolve) => {
    const parts: Buffer[] = [];
    let error: NodeJS.ErrnoException | null = null;
    s.on('data', (d: Buffer) => parts.push(d));
    s.on('end', () => s.end()); // the other side ended: this one is done too
    s.on('error', (e) => (error = e));
    s.on('close', () => resolve({ data: Buffer.concat(parts), error }));
  });
}

const sha = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agent-relay-'));
  const bin = path.join(dir, 'spritely-agent');
  await buildAgent({ out: bin });
  relayPort = await freeLoopbackPort();
  dnsPort = await freeLoopbackPort();
  const socket = path.join(dir, 'agent.sock');
  proc = spawn(bin, ['--listen', `unix:${socket}`, '--root', dir, '--host-gone-grace', '200ms', '--tcp-relay', `127.0.0.1:${relayPort}`, '--dns', `127.0.0.1:${dnsPort}`, '--test-original-dst', '192.0.2.10:7'], { stdio: ['ignore', 'ignore', 'inherit'] });
  client = new AgentClient({ connect: unixSocket(socket), network });
  await client.ready(10_000);
}, 180_000);

afterAll(() => {
  client?.close();
  proc?.kill('SIGKILL');
  for (const s of servers) s.close();
  for (const s of serverSockets) s.destroy();
  fs.rmSync(dir, { recursive: true, force: true });
});

beforeEach(() => {
  mode = 'connect';
});

describe('the network relay with the real agent', () => {
  it('carries a connection to where the guest meant, both ways, 8 MiB each way intact', async () => {
    const down = crypto.randomBytes(8 << 20);
    let up: Promise<Buffer> = Promise.resolve(Buffer.alloc(0));
    target = await server((s) => {
      up = readAll(s).then((r) => r.data);
      s.end(down);
    });
    asked.length = 0;
    const c = await guestConnect();
    const got = readAll(c);
    const sent = crypto.randomBytes(8 << 20);
    c.end(sent);
    const t0 = performance.now();
    const r = await got;
    const ms = performance.now() - t0;
    expect(r.error).toBeNull();
    expect(sha(r.data)).toBe(sha(down));
    expect(sha(await up)).toBe(sha(sent));
    expect(asked).toEqual([{ address: '192.0.2.10', port: 7 }]);
    expect(ms).toBeLessThan(30_000);
  }, 60_000);

  it('half-closes: the guest ends its request and still reads the answer', async () => {
    target = await server((s) => {
      s.resume(); // reads the request to its end, then answers
      s.on('end', () => s.end('answer after your end'));
    }, true);
    const c = await guestConnect();
    const got = readAll(c);
    c.end('request');
    const r = await got;
    expect(r.data.toString()).toBe('answer after your end');
    expect(r.error).toBeNull();
  });

  it('a destination that resets resets the guest connection; a guest that resets closes the destination', async () => {
    target = await server((s) => setTimeout(() => s.resetAndDestroy(), 50));
    const c = await guestConnect();
    const r = await readAll(c);
    expect(r.error?.code).toBe('ECONNRESET');

    let closed!: Promise<unknown>;
    target = await server((s) => {
      closed = readAll(s);
    });
    const c2 = await guestConnect();
    c2.write('x');
    await new Promise((r) => setTimeout(r, 100));
    c2.resetAndDestroy();
    await closed;
  });

  it('the guest\'s first bytes and its EOF, sent before the destination answered, reach it once connected (the early window)', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const got: Buffer[] = [];
    target = await server((s) => {
      s.on('data', (d: Buffer) => got.push(d));
      s.on('end', () => s.end(`got ${Buffer.concat(got).length}`));
    }, true);
    const slow = network.tcp;
    network.tcp = async (d) => (await gate, slow(d));
    try {
      const g = await guestConnect();
      const body = crypto.randomBytes(40_000);
      g.end(body); // request and EOF before the answer
      const answer = readAll(g);
      await new Promise((r) => setTimeout(r, 300)); // the agent has sent them by now
      release();
      const r = await answer;
      expect(r.error).toBeNull();
      expect(r.data.toString()).toBe(`got ${body.length}`);
      expect(Buffer.concat(got).equals(body)).toBe(true);
    } finally {
      network.tcp = slow;
    }
  });

  it('a refused destination is reset at once', async () => {
    mode = 'refuse';
    const t0 = performance.now();
    const c = await guestConnect().catch((e: NodeJS.ErrnoException) => e);
    const r = c instanceof net.Socket ? await readAll(c) : { data: Buffer.alloc(0), error: c };
    expect(r.error?.code).toBe('ECONNRESET');
    expect(performance.now() - t0).toBeLessThan(2000);
  });

  it('holds the destination back while the guest does not read (credit), then delivers everything', async () => {
    const blob = crypto.randomBytes(48 << 20);
    let taken = 0; // bytes the server's kernel accepted
    target = await server((s) => {
      let at = 0;
      const pump = () => {
        while (at < blob.length) {
          const piece = blob.subarray(at, at + (1 << 20));
          at += piece.length;
          const more = s.write(piece, () => (taken += piece.length));
          if (!more) return void s.once('drain', pump);
        }
        s.end();
      };
      pump();
    });
    const c = await guestConnect();
    c.pause();
    await new Promise((r) => setTimeout(r, 1500));
    // what left the server: the relay's window and the sockets' buffers on the way, not the blob
    expect(taken).toBeGreaterThan(0);
    expect(taken).toBeLessThan(blob.length / 2);
    const got = readAll(c);
    c.resume();
    expect(sha((await got).data)).toBe(sha(blob));
  }, 60_000);

  it('DNS over UDP: the query reaches the network and its answer comes back', async () => {
    const s = dgram.createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
    const answer = new Promise<Buffer>((r) => s.once('message', r));
    s.send(Buffer.from('a query'), dnsPort, '127.0.0.1');
    expect((await answer).toString()).toBe('answer to a query');
    s.close();
  });

  it('DNS over TCP (a connection to port 53) is answered by the network\'s stream server', async () => {
    mode = 'dns';
    const c = await guestConnect();
    const msg = Buffer.from('twelve bytes at least');
    const len = Buffer.alloc(2);
    len.writeUInt16BE(msg.length);
    const got = readAll(c);
    c.end(Buffer.concat([len, msg]));
    const r = await got;
    expect(r.data.readUInt16BE(0)).toBe(r.data.length - 2);
    expect(r.data.subarray(2).toString()).toBe('tcp answer: twelve bytes at least');
  });

  it('when the channel to the agent ends, relayed connections end on both sides', async () => {
    let serverSide!: Promise<unknown>;
    target = await server((s) => {
      serverSide = readAll(s);
    });
    const c = await guestConnect();
    c.write('hi');
    await new Promise((r) => setTimeout(r, 100));
    const guestSide = readAll(c);
    client.reset('test');
    await serverSide; // the daemon closed its side at once
    expect((await guestSide).error?.code).toBe('ECONNRESET'); // the agent reset its own after the host-gone grace
    await client.ready(10_000);
  });
});

describe('AgentRelay on its own', () => {
  it('reports refused datagrams to the network, and answers at most MAX_DNS_IN_FLIGHT queries at once', async () => {
    const refused: Array<{ address: string; port: number }> = [];
    const waiting: Array<() => void> = [];
    const sent: Buffer[] = [];
    const relay = new AgentRelay(
      {
        ...network,
        udp: (d) => (refused.push(d), 'refused'),
        answerDns: () => new Promise((r) => waiting.push(() => r(Buffer.from('a')))),
      },
      { protocol: () => new RelayProtocol(), write: (b) => sent.push(b) },
    );
    relay.onEvent({ kind: 'udp-refused', address: '203.0.113.9', port: 123 });
    expect(refused).toEqual([{ address: '203.0.113.9', port: 123 }]);
    for (let i = 0; i < MAX_DNS_IN_FLIGHT + 10; i++) relay.onEvent({ kind: 'dns-query', handle: i, message: Buffer.from('q') });
    expect(waiting).toHaveLength(MAX_DNS_IN_FLIGHT);
    for (const w of waiting) w();
    await new Promise((r) => setImmediate(r));
    expect(sent).toHaveLength(MAX_DNS_IN_FLIGHT);
    // after a reset, late answers are not sent
    relay.onEvent({ kind: 'dns-query', handle: 1, message: Buffer.from('q') });
    relay.reset();
    waiting.at(-1)!();
    await new Promise((r) => setImmediate(r));
    expect(sent).toHaveLength(MAX_DNS_IN_FLIGHT);
  });
});
