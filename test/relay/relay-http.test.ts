/**
 * Requests through a real relay (TLS, wildcard cert) and a real tunnel client to a local origin that
 * stands in for a sprite's app: routing, auth modes, error pages, limits and header hygiene.
 */
import path from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Agent } from 'undici';
import type { Relay } from '../../relay/relay-server.ts';
import { generateAccessToken, hashAccessToken, type TunnelClient } from '../../relay/tunnel-client.ts';
import { addAccount, get, rawTls, makeCerts, publicAgent, publicUrl, removeDir, startClient, startOrigin, startTestRelay, waitForStatus, writeEmptyTokens, type Certs, type Origin } from './harness.ts';

let certs: Certs;
let relay: Relay;
let origin: Origin;
let client: TunnelClient;
let agent: Agent;
const accessToken = generateAccessToken();
const resolveCalls: string[] = [];
const closedPort = { host: '127.0.0.1', port: 9 };

beforeAll(async () => {
  certs = makeCerts();
  const tokensFile = path.join(certs.dir, 'tokens.json');
  writeEmptyTokens(tokensFile);
  const { token } = addAccount(tokensFile, 'laptop');
  relay = await startTestRelay(certs, tokensFile, { holdTimeoutMs: 3_000, maxBodyBytes: 64 * 1024, maxHeaderBytes: 8 * 1024, headersTimeoutMs: 800 });
  origin = await startOrigin('dev');
  client = startClient(relay, certs, token, async (name) => {
    resolveCalls.push(name);
    if (name === 'down') return closedPort;
    if (name === 'gone') return null;
    if (name === 'sleepy') {
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      return { host: '127.0.0.1', port: origin.port };
    }
    if (name === 'stuck') return new Promise(() => undefined);
    return { host: '127.0.0.1', port: origin.port };
  });
  await waitForStatus(client, 'connected');
  await client.publish('dev', { auth: 'public' });
  await client.publish('private', { auth: 'sprite', accessTokenHashes: [hashAccessToken(accessToken)] });
  for (const name of ['down', 'gone', 'stuck', 'sleepy']) await client.publish(name, { auth: 'public' });
  agent = publicAgent(certs.cert);
});

afterAll(async () => {
  await agent?.close();
  await client?.close();
  await relay?.close();
  await origin?.close();
  removeDir(certs.dir);
});

describe('routing', () => {
  it('serves the sprite page at its public URL', async () => {
    const url = publicUrl(client, 'dev');
    expect(url).toMatch(new RegExp(`^https://dev-[a-z0-9]{6}\\.relay\\.test:${relay.port}/$`));
    const response = await get(agent, url);
    expect(response.status).toBe(200);
    expect(response.body).toBe('hello from dev');
  });

  it('answers 404 for an unknown host', async () => {
    const response = await get(agent, `https://nothing-zzzzzz.relay.test:${relay.port}/`);
    expect(response.status).toBe(404);
    expect(response.headers['spritely-relay-error']).toBe('unknown-host');
  });

  it('answers 502 when nothing listens in the sprite', async () => {
    const response = await get(agent, publicUrl(client, 'down'));
    expect(response.status).toBe(502);
    expect(response.headers['spritely-relay-error']).toBe('app-down');
    expect(response.body).toContain('not answering');
  });

  it('answers 502 when the sprite cannot be started', async () => {
    const response = await get(agent, publicUrl(client, 'gone'));
    expect(response.status).toBe(502);
    expect(response.headers['spritely-relay-error']).toBe('no-target');
  });
});

describe('auth mode sprite', () => {
  it('refuses a request without a credential with 401', async () => {
    const response = await get(agent, publicUrl(client, 'private'));
    expect(response.status).toBe(401);
    expect(response.headers['www-authenticate']).toContain('Bearer');
    expect(response.headers['spritely-relay-error']).toBe('unauthorized');
  });

  it('accepts the bearer token and does not pass it on to the sprite', async () => {
    const response = await get(agent, publicUrl(client, 'private', '/headers'), { headers: { authorization: `Bearer ${accessToken}` } });
    expect(response.status).toBe(200);
    const seen = JSON.parse(response.body) as Record<string, string>;
    expect(seen.authorization).toBeUndefined();
  });

  it('refuses a wrong bearer token', async () => {
    const response = await get(agent, publicUrl(client, 'private'), { headers: { authorization: `Bearer ${generateAccessToken()}` } });
    expect(response.status).toBe(401);
  });

  it('swaps a valid share link for a __Host- HttpOnly cookie that opens the sprite', async () => {
    const link = client.shareLink('private', 60_000, '/headers?x=1');
    const first = await get(agent, link);
    expect(first.status).toBe(302);
    expect(first.headers.location).toBe('/headers?x=1');
    const setCookie = String(first.headers['set-cookie']);
    expect(setCookie).toMatch(/^__Host-spritely_share=[^;]+; Path=\/; Expires=[^;]+; Max-Age=(59|60); Secure; HttpOnly; SameSite=Lax$/);
    expect(setCookie).not.toMatch(/Domain=/i);
    const cookie = setCookie.split(';')[0];
    const second = await get(agent, publicUrl(client, 'private', '/headers?x=1'), { headers: { cookie: `${cookie}; theme=dark` } });
    expect(second.status).toBe(200);
    const seen = JSON.parse(second.body) as Record<string, string>;
    expect(seen.cookie).toBe('theme=dark');
  });

  it('refuses an expired share link with 401', async () => {
    const response = await get(agent, client.shareLink('private', -1_000));
    expect(response.status).toBe(401);
    expect(response.body).toContain('expired');
  });

  it("refuses a share link signed for another sprite's host", async () => {
    const link = client.shareLink('dev', 60_000);
    const token = new URL(link).searchParams.get('spritely_share');
    const response = await get(agent, publicUrl(client, 'private', `/?spritely_share=${token}`));
    expect(response.status).toBe(401);
  });

  it('refuses a cookie whose signed expiry has passed', async () => {
    const link = client.shareLink('private', 300);
    const cookie = String((await get(agent, link)).headers['set-cookie']).split(';')[0];
    await new Promise((resolve) => setTimeout(resolve, 400));
    const response = await get(agent, publicUrl(client, 'private'), { headers: { cookie } });
    expect(response.status).toBe(401);
  });
});

describe('waking and timeouts', () => {
  it('holds a request while resolveTarget wakes the sprite, then answers', async () => {
    const started = Date.now();
    const response = await get(agent, publicUrl(client, 'sleepy'));
    expect(response.status).toBe(200);
    expect(response.body).toBe('hello from dev');
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_900);
  });

  it('answers 504 when the sprite never comes up within the hold timeout', async () => {
    const started = Date.now();
    const response = await get(agent, publicUrl(client, 'stuck'));
    expect(response.status).toBe(504);
    expect(response.headers['spritely-relay-error']).toBe('timeout');
    expect(Date.now() - started).toBeGreaterThanOrEqual(2_900);
  });
});

describe('limits and headers', () => {
  it('answers 413 to a declared body over the limit without forwarding it', async () => {
    const before = origin.seen.length;
    const response = await get(agent, publicUrl(client, 'dev', '/upload'), { method: 'POST', body: Buffer.alloc(64 * 1024 + 1) });
    expect(response.status).toBe(413);
    expect(origin.seen.length).toBe(before);
  });

  it('passes a body under the limit', async () => {
    const response = await get(agent, publicUrl(client, 'dev', '/upload'), { method: 'POST', body: Buffer.alloc(64 * 1024) });
    expect(response.status).toBe(200);
    expect(response.body).toBe(`received ${64 * 1024}`);
  });

  it('answers 431 to oversized request headers', async () => {
    const response = await get(agent, publicUrl(client, 'dev'), { headers: { 'x-big': 'a'.repeat(10 * 1024) } });
    expect(response.status).toBe(431);
  });

  it('strips hop-by-hop headers both ways and sets X-Forwarded-*', async () => {
    const url = publicUrl(client, 'dev', '/headers');
    const host = new URL(url).host;
    const raw = await rawTls(relay.port, host.split(':')[0], certs.cert,
      `GET /headers HTTP/1.1\r\nhost: ${host}\r\nx-forwarded-for: 6.6.6.6\r\nx-gone: drop me\r\nconnection: x-gone, close\r\nkeep-alive: timeout=9\r\nspritely-sprite: other\r\n\r\n`);
    expect(raw.text).toMatch(/^HTTP\/1.1 200 /);
    const seen = JSON.parse(raw.text.slice(raw.text.indexOf('{'), raw.text.lastIndexOf('}') + 1)) as Record<string, string>;
    expect(seen['x-forwarded-for']).toBe('127.0.0.1');
    expect(seen['x-forwarded-proto']).toBe('https');
    expect(seen['x-forwarded-host']).toBe(new URL(url).host);
    expect(seen.host).toBe(new URL(url).host);
    expect(seen['x-gone']).toBeUndefined();
    expect(seen['spritely-sprite']).toBeUndefined();
    expect(seen['keep-alive']).toBeUndefined();
    const hop = await get(agent, publicUrl(client, 'dev', '/hop'));
    expect(hop.body).toBe('hop');
    expect(hop.headers['x-private']).toBeUndefined();
  });

  it('answers 408 and closes a connection that dribbles its headers (slowloris)', async () => {
    const host = new URL(publicUrl(client, 'dev')).host;
    const raw = await rawTls(relay.port, host.split(':')[0], certs.cert, `GET / HTTP/1.1\r\nhost: ${host}\r\nx-slow: 1\r\n`, { keepOpenMs: 10_000 });
    expect(raw.text).toMatch(/^HTTP\/1.1 408 /);
    expect(raw.closedAfterMs).toBeLessThan(2_500);
  });

  it('answers 200 concurrent requests', async () => {
    const many = publicAgent(certs.cert, 200);
    try {
      const responses = await Promise.all(Array.from({ length: 200 }, (_, i) => get(many, publicUrl(client, 'dev', `/slow?ms=50&i=${i}`))));
      expect(responses.map((r) => r.status)).toEqual(Array(200).fill(200));
      expect(responses.every((r) => r.body === 'slow')).toBe(true);
    } finally {
      await many.close();
    }
  });
});

describe('the daemon side of a request (tunnel client → app)', () => {
  it('keeps repeated Set-Cookie headers apart', async () => {
    const response = await get(agent, publicUrl(client, 'dev', '/cookies'));
    expect(response.status).toBe(200);
    expect(response.headers['set-cookie']).toEqual(['a=1; Path=/', 'b=2; Path=/']);
  });

  it('answers HEAD and 204 without a body', async () => {
    const head = await get(agent, publicUrl(client, 'dev'), { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.body).toBe('');
    const nothing = await get(agent, publicUrl(client, 'dev', '/nothing'));
    expect(nothing.status).toBe(204);
    expect(nothing.body).toBe('');
  });

  it('serves an app that closes its connection after every answer, many times over', async () => {
    for (let i = 0; i < 20; i += 1) {
      const response = await get(agent, publicUrl(client, 'dev', '/closing'));
      expect(response.status).toBe(200);
      expect(response.body).toBe('closing');
    }
  });

  it('streams a chunked upload of unknown length to the app whole', async () => {
    const url = publicUrl(client, 'dev', '/upload');
    const host = new URL(url).host;
    const chunks = ['a'.repeat(1000), 'b'.repeat(20_000), 'c'.repeat(7)];
    const body = chunks.map((chunk) => `${chunk.length.toString(16)}\r\n${chunk}\r\n`).join('');
    const raw = await rawTls(relay.port, host.split(':')[0], certs.cert,
      `POST /upload HTTP/1.1\r\nhost: ${host}\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n${body}0\r\n\r\n`);
    expect(raw.text).toMatch(/^HTTP\/1.1 200 /);
    expect(raw.text).toContain('received 21007');
  });

  it('passes a request that expects 100-continue', async () => {
    const url = publicUrl(client, 'dev', '/upload');
    const host = new URL(url).host;
    const raw = await rawTls(relay.port, host.split(':')[0], certs.cert,
      `POST /upload HTTP/1.1\r\nhost: ${host}\r\nexpect: 100-continue\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello`);
    expect(raw.text).toContain('received 5');
  });

  it('an upload cut off mid-way reaches the app as an aborted request, never as a complete one', async () => {
    const url = publicUrl(client, 'dev', '/upload');
    const host = new URL(url).host;
    const before = origin.uploads.length;
    // Declares 60 000 bytes (under this relay's 64 KiB limit), sends 30 000, then the client goes away.
    const socket = tls.connect({ host: '127.0.0.1', port: relay.port, servername: host.split(':')[0], ca: certs.cert });
    socket.on('error', () => undefined);
    await new Promise((resolve) => socket.once('secureConnect', resolve));
    socket.write(`POST /upload HTTP/1.1\r\nhost: ${host}\r\ncontent-length: 60000\r\n\r\n${'x'.repeat(30_000)}`);
    await waitUntil(() => origin.seen.length > 0 && origin.seen.at(-1)?.['content-length'] === '60000');
    socket.destroy();
    await waitUntil(() => origin.uploads.length > before);
    const upload = origin.uploads.at(-1)!;
    expect(upload.complete).toBe(false);
    expect(upload.bytes).toBeLessThan(60_000);
  });
});

async function waitUntil(check: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
