/**
 * Share links end to end through a real relay and tunnel client (TLS, loopback): a link and the
 * cookie it sets die when the sprite is unpublished, published again or its links are revoked, and
 * survive a daemon restart that re-publishes the same publication; the redirect after a link never
 * leaves the sprite's host, whatever request target a client writes.
 */
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Agent } from 'undici';
import type { Relay } from '../../relay/relay-server.ts';
import { generateAccessToken, generateShareKey, hashAccessToken, type TunnelClient } from '../../relay/tunnel-client.ts';
import { addAccount, get, makeCerts, publicAgent, publicUrl, rawTls, removeDir, startClient, startOrigin, startTestRelay, waitForStatus, writeEmptyTokens, type Certs, type Origin } from './harness.ts';
import { HOSTILE_TARGETS } from '../../relay/hostile-targets.fixture.ts';

let certs: Certs;
let relay: Relay;
let origin: Origin;
let agent: Agent;
let token: string;
const shareKey = generateShareKey();
const accessToken = generateAccessToken();
const clients: TunnelClient[] = [];

async function connect(): Promise<TunnelClient> {
  const client = startClient(relay, certs, token, async () => ({ host: '127.0.0.1', port: origin.port }), { shareKey });
  clients.push(client);
  await waitForStatus(client, 'connected');
  return client;
}

const privately = (publicationId?: string) => ({ auth: 'sprite' as const, accessTokenHashes: [hashAccessToken(accessToken)], publicationId });

/** Opens a share link like a browser: 302 + cookie; returns the cookie pair to send back. */
async function redeem(link: string): Promise<string> {
  const first = await get(agent, link);
  expect(first.status).toBe(302);
  return String(first.headers['set-cookie']).split(';')[0];
}

beforeAll(async () => {
  certs = makeCerts();
  const tokensFile = path.join(certs.dir, 'tokens.json');
  writeEmptyTokens(tokensFile);
  token = addAccount(tokensFile, 'laptop').token;
  relay = await startTestRelay(certs, tokensFile);
  origin = await startOrigin('private');
  agent = publicAgent(certs.cert);
});

afterEach(async () => {
  for (const client of clients.splice(0)) await client.close();
});

afterAll(async () => {
  await agent?.close();
  await relay?.close();
  await origin?.close();
  removeDir(certs.dir);
});

describe('share links are bound to one publication', () => {
  it('a link and its cookie die when the sprite is unpublished, and stay dead when it is published again', async () => {
    const client = await connect();
    await client.publish('web', privately());
    const link = client.shareLink('web', 60_000);
    const cookie = await redeem(link);
    expect(cookie).toMatch(/^__Host-spritely_share=/);
    expect((await get(agent, publicUrl(client, 'web'), { headers: { cookie } })).status).toBe(200);

    await client.unpublish('web');
    expect((await get(agent, link)).status).toBe(404);
    await client.publish('web', privately());
    for (const response of [await get(agent, link), await get(agent, publicUrl(client, 'web'), { headers: { cookie } })]) {
      expect(response.status).toBe(401);
      expect(response.body).toContain('revoked');
    }
    const fresh = await redeem(client.shareLink('web', 60_000));
    expect((await get(agent, publicUrl(client, 'web'), { headers: { cookie: fresh } })).status).toBe(200);
  });

  it('publishing again (without unpublishing first) ends every earlier link and cookie', async () => {
    const client = await connect();
    await client.publish('web', privately());
    const link = client.shareLink('web', 60_000);
    const cookie = await redeem(link);
    await client.publish('web', privately());
    expect((await get(agent, link)).status).toBe(401);
    expect((await get(agent, publicUrl(client, 'web'), { headers: { cookie } })).status).toBe(401);
    // The access token is not a share link: it still opens the sprite.
    expect((await get(agent, publicUrl(client, 'web'), { headers: { authorization: `Bearer ${accessToken}` } })).status).toBe(200);
  });

  it('revokeShareLinks ends every earlier link and cookie at once; new links work', async () => {
    const client = await connect();
    await client.publish('web', privately());
    const links = [client.shareLink('web', 60_000), client.shareLink('web', 3_600_000, '/headers')];
    const cookies = await Promise.all(links.map(redeem));
    const revoked = await client.revokeShareLinks('web');
    expect(revoked.live).toBe(true);
    for (const link of links) expect((await get(agent, link)).status).toBe(401);
    for (const cookie of cookies) {
      const response = await get(agent, publicUrl(client, 'web'), { headers: { cookie } });
      expect(response.status).toBe(401);
      expect(response.headers['spritely-relay-error']).toBe('unauthorized');
    }
    const fresh = await redeem(client.shareLink('web', 60_000));
    expect((await get(agent, publicUrl(client, 'web'), { headers: { cookie: fresh } })).status).toBe(200);
    await expect(client.revokeShareLinks('nothing')).rejects.toThrow(/not published/);
    expect(() => client.shareLink('nothing', 60_000)).toThrow(/not published/);
  });

  it('a daemon restart that re-publishes the saved publication id keeps links working', async () => {
    const first = await connect();
    await first.publish('web', privately());
    const publicationId = first.published().find((p) => p.name === 'web')?.publicationId;
    expect(publicationId).toBeTruthy();
    const link = first.shareLink('web', 60_000);
    const cookie = await redeem(link);
    await first.close();
    const second = await connect();
    await second.publish('web', privately(publicationId));
    expect((await get(agent, publicUrl(second, 'web'), { headers: { cookie } })).status).toBe(200);
    expect((await get(agent, link)).status).toBe(302);
  });
});

describe('the redirect after a share link', () => {
  /** The status and Location the relay answers to `GET <target>` on the sprite's host, over raw TLS. */
  async function redirectOf(client: TunnelClient, target: string): Promise<{ status: number; location: string | undefined }> {
    const host = new URL(publicUrl(client, 'web')).host;
    const raw = await rawTls(relay.port, host.split(':')[0], certs.cert, `GET ${target} HTTP/1.1\r\nhost: ${host}\r\nconnection: close\r\n\r\n`);
    const head = raw.text.slice(0, raw.text.indexOf('\r\n\r\n'));
    const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]);
    const location = /\r\nlocation: ([^\r]*)/i.exec(head)?.[1];
    return { status, location };
  }

  it('keeps a same-host path', async () => {
    const client = await connect();
    await client.publish('web', privately());
    const link = new URL(client.shareLink('web', 60_000, '/docs/a?x=1'));
    expect(await redirectOf(client, `${link.pathname}${link.search}`)).toEqual({ status: 302, location: '/docs/a?x=1' });
  });

  it('sends every hostile target to / (or refuses the request line outright)', async () => {
    const client = await connect();
    await client.publish('web', privately());
    const share = new URL(client.shareLink('web', 60_000)).searchParams.get('spritely_share');
    const answers: Record<string, { status: number; location: string | undefined }> = {};
    for (const target of HOSTILE_TARGETS) {
      answers[target] = await redirectOf(client, `${target}${target.includes('?') ? '&' : '?'}spritely_share=${share}`);
    }
    for (const [target, answer] of Object.entries(answers)) {
      // Node's HTTP parser refuses, with 400, request lines that are neither origin-form nor http(s)
      // absolute-form, or that hold spaces, control or non-ASCII characters; the rest reach the relay.
      const parsable = /^(\/|https?:\/\/)/i.test(target) && /^[\x21-\x7e]+$/.test(target);
      if (!parsable && answer.status === 400) continue;
      expect({ target, ...answer }).toEqual({ target, status: 302, location: '/' });
    }
  });
});
