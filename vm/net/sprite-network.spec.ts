/**
 * The parts together, as the guest side will use them: the guest resolves a name through the
 * daemon, then connects to the address it got, transparently. The server listens on this
 * machine's non-loopback address, declared public for the test (egress-connector.spec.ts).
 */
import net from 'node:net';
import os from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { range } from './address.ts';
import { QTYPE, RCODE } from './dns-message.ts';
import { frame } from './dns-stream.ts';
import { makeQuery, readAnswer } from './dns-test-server.ts';
import { parseNetworkPolicy, type NetworkPolicy } from './egress-policy.ts';
import { SpriteNetwork } from './sprite-network.ts';

const lan = Object.values(os.networkInterfaces()).flatMap((l) => l ?? []).find((i) => i.family === 'IPv4' && !i.internal)?.address;
let server: net.Server;
let port: number;

beforeAll(async () => {
  if (!lan) throw new Error('this test needs one non-loopback IPv4 address on the machine');
  server = net.createServer((s) => s.end('SSH-2.0-OpenSSH_9.2\r\n'));
  await new Promise<void>((r) => server.listen(0, lan, r));
  port = (server.address() as net.AddressInfo).port;
});

afterAll(() => server.close());

/** Two ends of one loopback TCP connection. */
async function socketPair(): Promise<[net.Socket, net.Socket]> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const inbound = new Promise<net.Socket>((r) => s.once('connection', r));
  const client = net.connect((s.address() as net.AddressInfo).port, '127.0.0.1');
  const pair: [net.Socket, net.Socket] = [await inbound, client];
  s.close();
  return pair;
}

let policy: NetworkPolicy;
function sprite() {
  const lines: string[] = [];
  const n = new SpriteNetwork({
    sprite: 'dev',
    policy: () => policy,
    log: (l) => lines.push(l),
    hostNetworks: () => [],
    treatAsPublic: [range(`${lan}/32`)],
    resolver: {
      resolve4: async (name: string) => {
        if (name === 'github.example' || name === 'other.example') return [{ address: lan!, ttl: 60 }];
        throw Object.assign(new Error(), { code: 'ENOTFOUND' });
      },
      resolve6: async () => {
        throw Object.assign(new Error(), { code: 'ENODATA' });
      },
    } as never,
  });
  return { n, lines };
}

describe('SpriteNetwork', () => {
  it('allow=NAME: the guest resolves NAME here, then its plain TCP connection to that address is let out', async () => {
    policy = parseNetworkPolicy('allow=github.example');
    const { n } = sprite();
    expect(await n.tcp({ address: lan!, port })).toMatchObject({ ok: false, kind: 'refused' });
    const a = readAnswer((await n.answerDns(makeQuery('github.example', QTYPE.A)))!);
    expect(a.answers.map((x) => x.data)).toEqual([lan]);
    const c = await n.tcp({ address: lan!, port });
    if (!c.ok || c.ok === 'dns') throw new Error('expected a connection');
    expect(c.name).toBe('github.example');
    const banner = await new Promise<string>((r) => c.socket.once('data', (d) => r(String(d))));
    expect(banner).toBe('SSH-2.0-OpenSSH_9.2\r\n');
    c.socket.destroy();
    n.close();
  });

  it('a name outside the list is REFUSED in DNS, so it never becomes a way to its address', async () => {
    policy = parseNetworkPolicy('allow=github.example');
    const { n } = sprite();
    expect(readAnswer((await n.answerDns(makeQuery('other.example', QTYPE.A)))!).rcode).toBe(RCODE.REFUSED);
    expect(await n.tcp({ address: lan!, port })).toMatchObject({ ok: false, kind: 'refused' });
    n.close();
  });

  it('UDP: DNS is answered, the rest refused and listed; TCP to port 53 is DNS too', async () => {
    policy = parseNetworkPolicy('internet');
    const { n, lines } = sprite();
    expect(n.udp({ address: '10.0.2.3', port: 53 })).toBe('dns');
    expect(n.udp({ address: '142.250.1.1', port: 443 })).toBe('refused');
    expect(await n.tcp({ address: '8.8.8.8', port: 53 })).toEqual({ ok: 'dns' });
    expect(lines).toEqual(['udp refused: 142.250.1.1:443: UDP other than DNS is not carried; QUIC falls back to TCP']);
    // a stream to port 53 is answered by the same responder
    const [inbound, client] = await socketPair();
    const served = n.dnsStream(inbound);
    client.write(frame(makeQuery('github.example', QTYPE.A, { id: 5 })));
    const reply = await new Promise<Buffer>((r) => client.once('data', r));
    expect(readAnswer(reply.subarray(2))).toMatchObject({ id: 5, rcode: RCODE.NOERROR, answers: [{ data: lan }] });
    client.destroy();
    await served;
    n.close();
  });

  it('view(): the policy, the last refusals across DNS, TCP and UDP, connections and bytes', async () => {
    policy = parseNetworkPolicy('allow=github.example');
    const { n } = sprite();
    await n.answerDns(makeQuery('evil.example', QTYPE.A));
    await n.tcp({ address: '203.0.113.7', port: 22 });
    n.udp({ address: '203.0.113.7', port: 443 });
    const v = n.view();
    expect(v).toMatchObject({ policy: 'allow=github.example', connections: { open: 0, max: 128 }, bytes: { in: 0, out: 0 } });
    expect(v.refused.map((r) => [r.protocol, r.name, r.address, r.port])).toEqual([
      ['udp', null, '203.0.113.7', 443],
      ['tcp', null, '203.0.113.7', 22],
      ['dns', 'evil.example', null, null],
    ]);
    expect(v.refused[1].reason).toBe("203.0.113.7 is not in this sprite's allow list (allow=github.example)");
    n.close();
  });
});
