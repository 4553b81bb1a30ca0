/**
 * The egress proxy over a real unix socket, with a real origin. The origin listens on this
 * machine's first non-loopback address (the proxy refuses loopback in every mode, by design), and
 * the policy names that address, which `allow` permits.
 */
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EgressProxy } from './egress-proxy.ts';
import { parseNetworkPolicy, type NetworkPolicy } from './egress-policy.ts';

const lanAddress = Object.values(os.networkInterfaces()).flatMap((l) => l ?? []).find((i) => i.family === 'IPv4' && !i.internal)?.address;

let dir: string;
let origin: http.Server;
let originPort: number;
let proxy: EgressProxy;
let policy: NetworkPolicy;
const lookups: string[] = [];

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
  policy = parseNetworkPolicy(`allow=${lanAddress},app.test`);
  proxy = new EgressProxy({
    sprite: 'dev',
    socketPath: path.join(dir, 'egress.sock'),
    policy: () => policy,
    lookup: async (h) => {
      lookups.push(h);
      if (h === 'app.test') return [lanAddress!];
      if (h === 'loop.test') return ['127.0.0.1'];
      throw Object.assign(new Error('not found'), { code: 'ENOTFOUND' });
    },
  });
  await proxy.listen();
});

afterAll(() => {
  proxy.close();
  origin.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Sends raw bytes to the proxy and returns everything it answers until it closes or `until` matches. */
function raw(bytes: string, until?: RegExp): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(path.join(dir, 'egress.sock'));
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

describe('EgressProxy', () => {
  it('tunnels CONNECT to an allowed destination (bytes both ways)', async () => {
    const out = await raw(`CONNECT ${lanAddress}:${originPort} HTTP/1.1\r\nHost: x\r\n\r\nGET /tunneled HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n`, /"url":"\/tunneled"/);
    expect(out).toMatch(/^HTTP\/1\.1 200 Connection established\r\n\r\n/);
    expect(out).toContain('"host":"app"');
    expect(proxy.bytesIn).toBeGreaterThan(0);
  });

  it('forwards absolute-form http:// requests with the body, resolving the name on the host, dropping proxy headers', async () => {
    const out = await raw(`POST http://app.test:${originPort}/p?q=1 HTTP/1.1\r\nHost: app.test:${originPort}\r\nProxy-Authorization: Basic eDp5\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello`);
    expect(out).toMatch(/^HTTP\/1\.1 200 OK/);
    const body = JSON.parse(out.slice(out.indexOf('\r\n\r\n') + 4));
    expect(body).toEqual({ method: 'POST', url: '/p?q=1', host: `app.test:${originPort}`, proxyAuth: null, body: 'hello' });
    expect(lookups).toContain('app.test');
  });

  it('refuses a destination outside the allow list with a 403 that says why and how to change it', async () => {
    const out = await raw('CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n');
    expect(out).toMatch(/^HTTP\/1\.1 403 Forbidden by Spritely network policy/);
    expect(out).toContain("example.com:443 refused: example.com is not in this sprite's allow list");
    expect(out).toContain(`spritely net set dev allow=${lanAddress},app.test,example.com`);
    expect(lookups).not.toContain('example.com');
    const get = await raw('GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n');
    expect(get).toMatch(/^HTTP\/1\.1 403/);
    expect(get).toMatch(/x-spritely-error: spritely: example\.com:80 refused/i);
  });

  it('never reaches loopback, even by an allowed name or address', async () => {
    policy = parseNetworkPolicy('allow=loop.test,127.0.0.1,localhost,[::1],[::ffff:127.0.0.1]');
    try {
      for (const target of ['loop.test:80', '127.0.0.1:80', '[::1]:80', '[::ffff:127.0.0.1]:80']) {
        expect(await raw(`CONNECT ${target} HTTP/1.1\r\n\r\n`), target).toMatch(/^HTTP\/1\.1 403[^]*loopback/);
      }
    } finally {
      policy = parseNetworkPolicy(`allow=${lanAddress},app.test`);
    }
  });

  it('internet refuses this computer; none refuses all; a change applies to the next connection', async () => {
    policy = parseNetworkPolicy('internet');
    try {
      expect(await raw(`CONNECT ${lanAddress}:${originPort} HTTP/1.1\r\n\r\n`)).toMatch(/^HTTP\/1\.1 403[^]*is this computer/);
      policy = parseNetworkPolicy('none');
      expect(await raw(`CONNECT ${lanAddress}:${originPort} HTTP/1.1\r\n\r\n`)).toMatch(/^HTTP\/1\.1 403[^]*network none[^]*spritely net set dev internet/);
      expect(await raw('CONNECT app.test:1 HTTP/1.1\r\n\r\n')).toMatch(/^HTTP\/1\.1 403[^]*network none/);
    } finally {
      policy = parseNetworkPolicy(`allow=${lanAddress},app.test`);
    }
    expect(await raw(`CONNECT ${lanAddress}:${originPort} HTTP/1.1\r\n\r\n`, /established/)).toMatch(/^HTTP\/1\.1 200/);
  });

  it('answers nonsense with clear 4xx/5xx and keeps serving', async () => {
    expect(await raw('GET / HTTP/1.1\r\nHost: x\r\n\r\n')).toMatch(/^HTTP\/1\.1 400[^]*egress proxy/);
    expect(await raw('CONNECT nohost HTTP/1.1\r\n\r\n')).toMatch(/^HTTP\/1\.1 400[^]*host:port/);
    expect(await raw('CONNECT app.test:99999 HTTP/1.1\r\n\r\n')).toMatch(/^HTTP\/1\.1 400/);
    expect(await raw('\x16\x03\x01\x02\x00garbage\r\n\r\n')).toMatch(/^HTTP\/1\.1 400/);
    expect(await raw('CONNECT unknown.test:443 HTTP/1.1\r\n\r\n')).toMatch(/^HTTP\/1\.1 403/);
    policy = parseNetworkPolicy('allow=unknown.test');
    try {
      expect(await raw('CONNECT unknown.test:443 HTTP/1.1\r\n\r\n')).toMatch(/^HTTP\/1\.1 502[^]*could not resolve unknown\.test \(ENOTFOUND\)/);
    } finally {
      policy = parseNetworkPolicy(`allow=${lanAddress},app.test`);
    }
    // a closed port: 502, not a hang
    const closed = net.createServer();
    await new Promise<void>((r) => closed.listen(0, lanAddress, r));
    const port = (closed.address() as net.AddressInfo).port;
    closed.close();
    expect(await raw(`CONNECT ${lanAddress}:${port} HTTP/1.1\r\n\r\n`)).toMatch(/^HTTP\/1\.1 502[^]*ECONNREFUSED/);
    expect(await raw(`CONNECT ${lanAddress}:${originPort} HTTP/1.1\r\n\r\n`, /established/)).toMatch(/^HTTP\/1\.1 200/);
  });

  it('is a 0600 socket', () => {
    expect(fs.statSync(path.join(dir, 'egress.sock')).mode & 0o777).toBe(0o600);
  });
});
