import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { QTYPE, RCODE } from './dns-message.ts';
import { DnsResponder } from './dns-responder.ts';
import { DnsStreamFramer, frame, MAX_INFLIGHT, serveDnsStream } from './dns-stream.ts';
import { makeQuery, readAnswer } from './dns-test-server.ts';
import { parseNetworkPolicy } from './egress-policy.ts';

describe('DnsStreamFramer', () => {
  it('splits length-prefixed messages across and within chunks', () => {
    const f = new DnsStreamFramer();
    const a = makeQuery('a.example', QTYPE.A, { id: 1 });
    const b = makeQuery('b.example', QTYPE.AAAA, { id: 2 });
    const wire = Buffer.concat([frame(a), frame(b)]);
    const got: Uint8Array[] = [];
    for (let i = 0; i < wire.length; i += 3) got.push(...f.push(wire.subarray(i, i + 3)));
    expect(got.map((m) => Buffer.from(m).toString('hex'))).toEqual([Buffer.from(a).toString('hex'), Buffer.from(b).toString('hex')]);
    expect(f.push(Buffer.concat([frame(a), frame(b), frame(a)]))).toHaveLength(3);
    expect(f.failed).toBeNull();
  });

  it('fails on a length no query has, and then takes nothing more', () => {
    for (const len of [0, 11, 1025, 65535]) {
      const f = new DnsStreamFramer();
      expect(f.push(Uint8Array.of(len >> 8, len & 0xff, 1, 2, 3))).toEqual([]);
      expect(f.failed).toMatch(/over TCP/);
      expect(f.push(frame(makeQuery('a.example', QTYPE.A)))).toEqual([]);
    }
  });
});

describe('serveDnsStream', () => {
  const servers: net.Server[] = [];
  afterEach(() => {
    for (const s of servers.splice(0)) s.close();
  });

  async function start(answer: (p: Uint8Array) => Promise<Uint8Array | null>, idleMs?: number) {
    const lines: string[] = [];
    const done: Promise<void>[] = [];
    const server = net.createServer((s) => done.push(serveDnsStream(s, answer, { idleMs, log: (l) => lines.push(l) })));
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
    await new Promise((r) => client.once('connect', r));
    return { client, lines, done };
  }

  function answers(client: net.Socket, n: number): Promise<ReturnType<typeof readAnswer>[]> {
    // answers can be longer than a query may be: read their frames by hand
    return new Promise((resolve) => {
      let buf = Buffer.alloc(0);
      const out: ReturnType<typeof readAnswer>[] = [];
      client.on('data', (c: Buffer) => {
        buf = Buffer.concat([buf, c]);
        while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
          out.push(readAnswer(buf.subarray(2, 2 + buf.readUInt16BE(0))));
          buf = buf.subarray(2 + buf.readUInt16BE(0));
        }
        if (out.length >= n) resolve(out);
      });
    });
  }

  it("answers each message with the sprite's responder, over TCP, whole", async () => {
    const responder = new DnsResponder({
      sprite: 'dev',
      policy: () => parseNetworkPolicy('allow=many.example'),
      hostNetworks: () => [],
      resolver: {
        resolve4: async () => Array.from({ length: 100 }, (_, i) => ({ address: `93.184.216.${i}`, ttl: 60 })),
        resolve6: async () => {
          throw Object.assign(new Error(), { code: 'ENODATA' });
        },
      } as never,
    });
    const { client } = await start((p) => responder.answer(p, 'tcp'));
    const got = answers(client, 2);
    client.write(Buffer.concat([frame(makeQuery('many.example', QTYPE.A, { id: 1 })), frame(makeQuery('other.example', QTYPE.A, { id: 2 }))]));
    const [a, b] = (await got).sort((x, y) => x.id - y.id);
    expect(a.answers).toHaveLength(100); // more than a UDP answer could carry
    expect(b.rcode).toBe(RCODE.REFUSED);
    client.destroy();
  });

  it('closes a stream that sends a bad length, and one that idles', async () => {
    const { client, lines, done } = await start(async () => null, 100);
    client.write(Uint8Array.of(0xff, 0xff, 0));
    await new Promise((r) => client.once('close', r));
    await done[0];
    expect(lines).toEqual(['dns over tcp: a DNS message of 65535 octets over TCP (12 to 1024); closing the connection']);
    const idle = await start(async () => null, 100);
    const t = performance.now();
    await new Promise((r) => idle.client.once('close', r));
    expect(performance.now() - t).toBeGreaterThanOrEqual(90);
  });

  it(`answers at most ${MAX_INFLIGHT} at once, then reads on`, async () => {
    let running = 0;
    let most = 0;
    const { client } = await start(async (p) => {
      running++;
      most = Math.max(most, running);
      await new Promise((r) => setTimeout(r, 5));
      running--;
      return p;
    });
    const got = answers(client, 50);
    client.write(Buffer.concat(Array.from({ length: 50 }, (_, i) => frame(makeQuery('a.example', QTYPE.A, { id: i })))));
    expect((await got).map((a) => a.id).sort((x, y) => x - y)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(most).toBeLessThanOrEqual(MAX_INFLIGHT);
    client.end();
    await new Promise((r) => client.once('close', r));
  });
});
