/**
 * The egress proxy over a real unix socket, with real servers on this machine. The origin listens
 * on this machine's first non-loopback IPv4 address and the policy lists that exact address (the
 * user's way to reach this computer). A second server, "this computer", listens on 0.0.0.0 and ::
 * and counts connections: every spelling of every interface address, through CONNECT and
 * absolute-form, under `internet` and wide `allow=` policies, must leave its count at zero.
 */
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spellings, urlHost } from './address-spellings.ts';
import { EgressConnector } from './egress-connector.ts';
import { EgressProxy } from './egress-proxy.ts';
import { parseNetworkPolicy, type NetworkPolicy } from './egress-policy.ts';

const interfaces = Object.values(os.networkInterfaces()).flatMap((l) => l ?? []);
const lanAddress = interfaces.find((i) => i.family === 'IPv4' && !i.internal)?.address;
/** Every address of this machine, zone ids dropped. */
const hostAddresses = [...new Set(interfaces.map((i) => i.address.split('%')[0]))];

let dir: string;
let origin: http.Server;
let originPort: number;
/** "This computer": one port on 0.0.0.0 and :: that counts every connection it accepts. */
let computer4: net.Server;
let computer6: net.Server;
let computerPort: number;
let hits = 0;
let proxy: EgressProxy;
let policy: NetworkPolicy;
const lookups: string[] = [];
const logs: string[] = [];
let fakeAnswers: Record<string, string[]> = {};
const defaultPolicy = () => parseNetworkPolicy(`allow=${lanAddress},app.example`);

function countingServer(): net.Server {
  return net.createServer((s) => {
    hits++;
    s.end('HTTP/1.1 200 OK\r\nContent-Length: 14\r\nConnection: close\r\n\r\nthis computer\n');
  });
}

beforeAll(async () => {
  if (!lanAddress) throw new Error('this test needs one non-loopback IPv4 address on the machine');
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'egress-'));
  origin = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => res.end(JSON.stringify({ method: req.method, url: req.url, host: req.headers.host, proxyAuth: req.headers['proxy-authorization'] ?? null, body })));
  });
  await new Promise<void>((r) => origin.listen(0, lanAddress, r));
  originPort = (origin.address() as net.AddressInfo).port;
  computer4 = countingServer();
  await new Promise<void>((r) => computer4.listen(0, '0.0.0.0', r));
  computerPort = (computer4.address() as net.AddressInfo).port;
  computer6 = countingServer();
  await new Promise<void>((r, j) => computer6.once('error', j).listen({ port: computerPort, host: '::', ipv6Only: true }, r));
  policy = defaultPolicy();
  proxy = new EgressProxy({
    sprite: 'dev',
    socketPath: path.join(dir, 'egress.sock'),
    policy: () => policy,
    log: (line) => logs.push(line),
    treatAsPublic: [],
    lookup: async (h) => {
      lookups.push(h);
      if (h === 'app.example') return [lanAddress!];
      if (fakeAnswers[h]) return fakeAnswers[h];
      throw Object.assign(new Error('not found'), { code: 'ENOTFOUND' });
    },
  });
  await proxy.listen();
});

afterAll(() => {
  proxy.close();
  origin.close();
  computer4.close();
  computer6.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Sends raw bytes to the proxy and returns everything it answers until it closes or `until` matches. */
function raw(bytes: string, until?: RegExp, socket = path.join(dir, 'egress.sock')): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(socket);
    let out = '';
    s.on('data', (c) => {
      out += c;
      if (until?.test(out)) {
        s.destroy();
        resolve(out);
      }
    });
    s.on('end', () => resolve(out));
    s.on('error', reject);
    s.write(bytes);
  });
}

async function withPolicy<T>(p: string, body: () => Promise<T>): Promise<T> {
  policy = parseNetworkPolicy(p);
  try {
    return await body();
  } finally {
    policy = defaultPolicy();
  }
}

/** Every spelling of every address of this machine, as CONNECT and as absolute-form; returns each answer's status line. */
async function probeThisComputer(): Promise<Array<{ request: string; status: string }>> {
  const out: Array<{ request: string; status: string }> = [];
  for (const addr of hostAddresses) {
    for (const s of spellings(addr)) {
      const connect = `CONNECT ${s.host}:${computerPort} HTTP/1.1\r\nHost: ${s.host}:${computerPort}\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n`;
      const absolute = `GET http://${urlHost(s)}:${computerPort}/ HTTP/1.1\r\nHost: ${urlHost(s)}:${computerPort}\r\nConnection: close\r\n\r\n`;
      for (const request of [connect, absolute]) out.push({ request: request.split('\r\n')[0], status: (await raw(request)).split('\r\n')[0] });
    }
  }
  return out;
}

describe('EgressProxy', () => {
  it('tunnels CONNECT to an allowed destination (bytes both ways)', async () => {
    const out = await raw(`CONNECT ${lanAddress}:${originPort} HTTP/1.1\r\nHost: x\r\n\r\nGET /tunneled HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n`, /"url":"\/tunneled"/);
    expect(out).toMatch(/^HTTP\/1\.1 200 Connection established\r\n\r\n/);
    expect(out).toContain('"host":"app"');
    expect(proxy.bytesIn).toBeGreaterThan(0);
  });

  it('forwards absolute-form http:// requests with the body, resolving the name on the host, dropping proxy headers', async () => {
    const out = await raw(`POST http://app.example:${originPort}/p?q=1 HTTP/1.1\r\nHost: app.example:${originPort}\r\nProxy-Authorization: Basic eDp5\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello`);
    expect(out).toMatch(/^HTTP\/1\.1 200 OK/);
    const body = JSON.parse(out.slice(out.indexOf('\r\n\r\n') + 4));
    expect(body).toEqual({ method: 'POST', url: '/p?q=1', host: `app.example:${originPort}`, proxyAuth: null, body: 'hello' });
    expect(lookups).toContain('app.example');
  });

  it('refuses a destination outside the allow list with a 403 that says why and how to change it', async () => {
    const out = await raw('CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n');
    expect(out).toMatch(/^HTTP\/1\.1 403 Forbidden by Spritely network policy/);
    expect(out).toContain("example.com:443 refused: example.com is not in this sprite's allow list");
    expect(out).toContain(`spritely net set dev allow=${lanAddress},app.example,example.com`);
    expect(lookups).not.toContain('example.com');
    const get = await raw('GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n');
    expect(get).toMatch(/^HTTP\/1\.1 403/);
    expect(get).toMatch(/x-spritely-error: spritely: example\.com:80 refused/i);
  });

  it("the listed address is reached in every spelling of it — each spelling decides the same", async () => {
    const before = hits;
    await withPolicy(`allow=${lanAddress}`, async () => {
      for (const s of spellings(lanAddress!).filter((x) => x.kind === 'canonical' || x.kind === 'same')) {
        expect(await raw(`CONNECT ${s.host}:${computerPort} HTTP/1.1\r\n\r\n`, /this computer/), s.host).toMatch(/^HTTP\/1\.1 200 Connection established[^]*this computer/);
        expect(await raw(`GET http://${s.host}:${computerPort}/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`), s.host).toMatch(/^HTTP\/1\.1 200 OK[^]*this computer/);
      }
    });
    expect(hits - before).toBe(2 * spellings(lanAddress!).filter((x) => x.kind === 'canonical' || x.kind === 'same').length);
  });

  it('never reaches this computer, in any spelling of any of its addresses, through CONNECT or absolute-form (0 hits)', async () => {
    const before = hits;
    // a resolver that answers this computer's addresses, in several spellings, for ordinary names
    fakeAnswers = { 'rebind.example': ['93.184.215.14', '::ffff:7f00:1'], 'me.example': hostAddresses, 'lan.example': [lanAddress!] };
    const policies = ['internet', 'allow=0.0.0.0/0,[::]/0,rebind.example,me.example,lan.example', 'allow=me.example,*.example'];
    let probes = 0;
    for (const p of policies) {
      const answers = await withPolicy(p, async () => {
        const all = await probeThisComputer();
        for (const name of ['rebind.example', 'me.example', 'lan.example']) {
          all.push({ request: `CONNECT ${name}`, status: (await raw(`CONNECT ${name}:${computerPort} HTTP/1.1\r\n\r\n`)).split('\r\n')[0] });
          all.push({ request: `GET ${name}`, status: (await raw(`GET http://${name}:${computerPort}/ HTTP/1.1\r\nHost: x\r\n\r\n`)).split('\r\n')[0] });
        }
        return all;
      });
      for (const a of answers) expect(a.status, `${p}: ${a.request}`).toMatch(/^HTTP\/1\.1 (400|403) /);
      probes += answers.length;
    }
    expect(probes).toBeGreaterThan(hostAddresses.length * 20 * policies.length);
    expect(hits - before).toBe(0);
  });

  it('the review\'s spellings of loopback, one by one, with the reason in the answer', async () => {
    const before = hits;
    await withPolicy('internet', async () => {
      for (const host of ['[::ffff:7f00:1]', '[0:0:0:0:0:ffff:127.0.0.1]', '[::FFFF:7F00:0001]', '[::ffff:127.0.0.1]', '[::127.0.0.1]', '[64:ff9b::7f00:1]']) {
        expect(await raw(`CONNECT ${host}:${computerPort} HTTP/1.1\r\n\r\n`), host).toMatch(/^HTTP\/1\.1 403[^]*refused: 127\.0\.0\.1 is this computer's loopback|^HTTP\/1\.1 403[^]*refused: 64:ff9b::7f00:1 is this computer's loopback/);
      }
      // WHATWG serialises http://[::ffff:127.0.0.1]/ as [::ffff:7f00:1]
      const whatwg = await raw(`GET http://[::ffff:127.0.0.1]:${computerPort}/ HTTP/1.1\r\nHost: x\r\n\r\n`);
      expect(whatwg).toMatch(/^HTTP\/1\.1 403[^]*\[::ffff:7f00:1\]:\d+ refused: 127\.0\.0\.1 is this computer's loopback/);
      expect(await raw(`GET http://0x7f.1:${computerPort}/ HTTP/1.1\r\nHost: x\r\n\r\n`)).toMatch(/^HTTP\/1\.1 403[^]*loopback/);
      expect(await raw(`CONNECT 0x7f.1:${computerPort} HTTP/1.1\r\n\r\n`)).toMatch(/^HTTP\/1\.1 403[^]*0x7f\.1 is not a host name and not an IPv4 address/);
      // WHATWG reads a zero-padded octet as octal (another, public address): decided as written, like CONNECT
      expect(await raw(`GET http://010.231.077.001:${computerPort}/ HTTP/1.1\r\nHost: x\r\n\r\n`)).toMatch(/^HTTP\/1\.1 400[^]*010\.231\.077\.001" is not an IP address \(IPv4 is written a\.b\.c\.d in decimal\)/);
      expect(await raw(`CONNECT [fe80::1%eth0]:${computerPort} HTTP/1.1\r\n\r\n`)).toMatch(/^HTTP\/1\.1 400[^]*zone id/);
    });
    expect(hits - before).toBe(0);
  });

  it('addresses in disguise never reach the system resolver, which would read them as 127.0.0.1', async () => {
    const real = new EgressProxy({ sprite: 'dev', socketPath: path.join(dir, 'real.sock'), policy: () => parseNetworkPolicy('internet'), treatAsPublic: [] });
    await real.listen();
    const before = hits;
    try {
      for (const host of ['0x7f.1', '017700000001', '2130706433', '127.1', '0177.0.0.1', 'localhost', 'LOCALHOST.', 'x.localhost', 'router.local']) {
        expect(await raw(`CONNECT ${host}:${computerPort} HTTP/1.1\r\n\r\n`, undefined, path.join(dir, 'real.sock')), host).toMatch(/^HTTP\/1\.1 (400|403) /);
      }
    } finally {
      real.close();
    }
    expect(hits - before).toBe(0);
  });

  it('internet refuses this computer; none refuses all; a change applies to the next connection', async () => {
    await withPolicy('internet', async () => {
      expect(await raw(`CONNECT ${lanAddress}:${originPort} HTTP/1.1\r\n\r\n`)).toMatch(/^HTTP\/1\.1 403[^]*is this computer \(an address of its interface/);
      policy = parseNetworkPolicy('none');
      expect(await raw(`CONNECT ${lanAddress}:${originPort} HTTP/1.1\r\n\r\n`)).toMatch(/^HTTP\/1\.1 403[^]*network none[^]*spritely net set dev internet/);
      expect(await raw('CONNECT app.example:1 HTTP/1.1\r\n\r\n')).toMatch(/^HTTP\/1\.1 403[^]*network none/);
    });
    expect(await raw(`CONNECT ${lanAddress}:${originPort} HTTP/1.1\r\n\r\n`, /established/)).toMatch(/^HTTP\/1\.1 200/);
  });

  it('a listed name that resolves to this computer is refused, naming the address to list instead', async () => {
    fakeAnswers = { 'me.example': [lanAddress!] };
    const out = await withPolicy('allow=me.example', () => raw(`CONNECT me.example:${computerPort} HTTP/1.1\r\n\r\n`));
    expect(out).toMatch(new RegExp(`^HTTP/1\\.1 403[^]*me\\.example resolves to ${lanAddress!.replace(/\./g, '\\.')}, which is this computer[^]*spritely net set dev allow=me\\.example,${lanAddress!.replace(/\./g, '\\.')}`));
  });

  it('keeps control characters from the guest out of logs and answers', async () => {
    logs.length = 0;
    const out = await raw('CONNECT \x1b[31mevil\x07.example:443 HTTP/1.1\r\n\r\n');
    expect(out).toMatch(/^HTTP\/1\.1 400/);
    expect(out).not.toMatch(/[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/);
    fakeAnswers = { 'ok.example': ['10.1.2.3'] };
    await withPolicy('internet', () => raw('GET http://ok.example/%1b HTTP/1.1\r\nHost: x\r\n\r\n'));
    expect(logs.join('\n')).toMatch(/egress refused: ok\.example:80: ok\.example resolves to 10\.1\.2\.3, which is private-use/);
    for (const l of logs) expect(l).not.toMatch(/[\x00-\x1f\x7f]/);
  });

  it('answers nonsense with clear 4xx/5xx and keeps serving', async () => {
    expect(await raw('GET / HTTP/1.1\r\nHost: x\r\n\r\n')).toMatch(/^HTTP\/1\.1 400[^]*egress proxy/);
    expect(await raw('CONNECT nohost HTTP/1.1\r\n\r\n')).toMatch(/^HTTP\/1\.1 400[^]*host:port/);
    expect(await raw('CONNECT app.example:99999 HTTP/1.1\r\n\r\n')).toMatch(/^HTTP\/1\.1 400/);
    expect(await raw('CONNECT ::1:80 HTTP/1.1\r\n\r\n')).toMatch(/^HTTP\/1\.1 400/);
    expect(await raw('\x16\x03\x01\x02\x00garbage\r\n\r\n')).toMatch(/^HTTP\/1\.1 400/);
    expect(await raw('CONNECT unknown.example:443 HTTP/1.1\r\n\r\n')).toMatch(/^HTTP\/1\.1 403/);
    await withPolicy('allow=unknown.example', async () => {
      expect(await raw('CONNECT unknown.example:443 HTTP/1.1\r\n\r\n')).toMatch(/^HTTP\/1\.1 502[^]*could not resolve unknown\.example \(ENOTFOUND\)/);
    });
    // a closed port: 502, not a hang
    const closed = net.createServer();
    await new Promise<void>((r) => closed.listen(0, lanAddress, r));
    const port = (closed.address() as net.AddressInfo).port;
    closed.close();
    expect(await raw(`CONNECT ${lanAddress}:${port} HTTP/1.1\r\n\r\n`)).toMatch(/^HTTP\/1\.1 502[^]*ECONNREFUSED/);
    expect(await raw(`CONNECT ${lanAddress}:${originPort} HTTP/1.1\r\n\r\n`, /established/)).toMatch(/^HTTP\/1\.1 200/);
  });

  it("answers 503 with the sprite's connection cap when it is reached, and serves again once one closes", async () => {
    const connector = new EgressConnector({ sprite: 'dev', policy: () => parseNetworkPolicy(`allow=${lanAddress}`), maxConnections: 1, treatAsPublic: [] });
    const capped = new EgressProxy({ sprite: 'dev', socketPath: path.join(dir, 'capped.sock'), policy: () => policy, connector });
    await capped.listen();
    try {
      const first = net.connect(path.join(dir, 'capped.sock'));
      first.write(`CONNECT ${lanAddress}:${originPort} HTTP/1.1\r\n\r\n`);
      await new Promise((r) => first.once('data', r));
      const out = await raw(`CONNECT ${lanAddress}:${originPort} HTTP/1.1\r\n\r\n`, undefined, path.join(dir, 'capped.sock'));
      expect(out).toMatch(/^HTTP\/1\.1 503 [^]*refused: this sprite already has 1 connections open, the most it may have at once\. Close some and try again/);
      first.destroy();
      for (let i = 0; i < 100 && connector.active > 0; i++) await new Promise((r) => setTimeout(r, 10));
      expect(connector.active).toBe(0);
      expect(await raw(`CONNECT ${lanAddress}:${originPort} HTTP/1.1\r\n\r\n`, /established/, path.join(dir, 'capped.sock'))).toMatch(/^HTTP\/1\.1 200/);
    } finally {
      capped.close();
      connector.close();
    }
  });

  it('is a 0600 socket', () => {
    expect(fs.statSync(path.join(dir, 'egress.sock')).mode & 0o777).toBe(0o600);
  });
});

describe('EgressProxy: connections open at once', () => {
  it('past the cap a connection gets a 503 saying why and ends at once (logged once); below it again, connections work', async () => {
    const socketPath = path.join(dir, 'capped.sock');
    const notes: string[] = [];
    const capped = new EgressProxy({ sprite: 'dev', socketPath, policy: () => policy, log: (l) => notes.push(l), treatAsPublic: [], maxConnections: 5 });
    await capped.listen();
    try {
      const held: net.Socket[] = [];
      for (let i = 0; i < 5; i++) {
        const s = net.connect(socketPath);
        s.on('error', () => {});
        await new Promise((r) => s.once('connect', r));
        held.push(s);
      }
      await new Promise((r) => setTimeout(r, 50));
      expect(capped.connections).toBe(5);
      const t0 = Date.now();
      const answers = await Promise.all(Array.from({ length: 20 }, () => raw('', undefined, socketPath)));
      expect(Date.now() - t0).toBeLessThan(1000);
      for (const a of answers) {
        expect(a).toMatch(/^HTTP\/1\.1 503 Too many connections\r\n/);
        expect(a).toContain('\r\n\r\nspritely: this sprite already has 5 connections open through its proxy, the most it may have at once; close some and try again.\n');
      }
      expect(capped.connections).toBe(5);
      expect(notes).toEqual(['egress: 5 connections open at once, the most a sprite may have; new ones are refused with a 503']);
      held.pop()!.destroy();
      await new Promise((r) => setTimeout(r, 50));
      const out = await raw(`CONNECT ${lanAddress}:${originPort} HTTP/1.1\r\nHost: x\r\n\r\nGET /after HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n`, /"url":"\/after"/, socketPath);
      expect(out).toMatch(/^HTTP\/1\.1 200 Connection established/);
      for (const s of held) s.destroy();
    } finally {
      capped.close();
    }
  });
});
