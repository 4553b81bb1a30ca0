/**
 * Accounts and tunnel lifecycle: name ownership between accounts, revocation cutting a live tunnel,
 * a relay restart (the client reconnects and re-publishes), a daemon reconnect during which requests
 * are held, bad tokens, and the per-client and per-tunnel limits. (What strangers can learn about
 * accounts: relay-uniform.test.ts.)
 */
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Agent } from 'undici';
import type { Relay } from '../../relay/relay-server.ts';
import type { TunnelClient } from '../../relay/tunnel-client.ts';
import { addAccount, get, makeCerts, publicAgent, publicUrl, removeDir, revoke, startClient, startOrigin, startTestRelay, waitForStatus, writeEmptyTokens, type Certs, type Origin } from './harness.ts';

let certs: Certs;
let originA: Origin;
let originB: Origin;
let agent: Agent;
const cleanups: (() => Promise<unknown>)[] = [];

function tokensFile(name: string): string {
  const file = path.join(certs.dir, `${name}.json`);
  writeEmptyTokens(file);
  return file;
}

async function relayFor(file: string, limits = {}): Promise<Relay> {
  const relay = await startTestRelay(certs, file, limits);
  cleanups.push(() => relay.close());
  return relay;
}

function clientFor(relay: { port: number }, token: string, origin: Origin): TunnelClient {
  const client = startClient(relay, certs, token, async () => ({ host: '127.0.0.1', port: origin.port }));
  cleanups.push(() => client.close());
  return client;
}

beforeAll(async () => {
  certs = makeCerts();
  originA = await startOrigin('A');
  originB = await startOrigin('B');
  agent = publicAgent(certs.cert);
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

afterAll(async () => {
  await agent?.close();
  await originA?.close();
  await originB?.close();
  removeDir(certs.dir);
});

describe('accounts', () => {
  it("does not let a second account take over the first's name", async () => {
    const file = tokensFile('names');
    const a = addAccount(file, 'alice');
    const b = addAccount(file, 'bob');
    const relay = await relayFor(file);
    const alice = clientFor(relay, a.token, originA);
    const bob = clientFor(relay, b.token, originB);
    await Promise.all([waitForStatus(alice, 'connected'), waitForStatus(bob, 'connected')]);
    const aliceUrl = (await alice.publish('dev', { auth: 'public' })).url;
    const bobUrl = (await bob.publish('dev', { auth: 'public' })).url;
    expect(bobUrl).not.toBe(aliceUrl);
    expect(bobUrl).toContain(`dev-${b.suffix}.`);
    // Bob publishing a name that spells Alice's host still lands under Bob's suffix.
    const sneaky = (await bob.publish(`dev-${a.suffix}`, { auth: 'public' })).url;
    expect(sneaky).toContain(`dev-${a.suffix}-${b.suffix}.`);
    expect((await get(agent, `${aliceUrl}/`)).body).toBe('hello from A');
    expect((await get(agent, `${bobUrl}/`)).body).toBe('hello from B');
    expect((await get(agent, `${sneaky}/`)).body).toBe('hello from B');
    await expect(bob.publish('Not_Valid', { auth: 'public' })).rejects.toThrow(/invalid sprite name/);
  });

  it('cuts a revoked tunnel at once, in-flight requests included, and refuses the token after', async () => {
    const file = tokensFile('revoke');
    const a = addAccount(file, 'alice');
    const relay = await relayFor(file);
    const client = clientFor(relay, a.token, originA);
    await waitForStatus(client, 'connected');
    await client.publish('dev', { auth: 'public' });
    expect((await get(agent, publicUrl(client, 'dev'))).status).toBe(200);
    const inFlight = get(agent, publicUrl(client, 'dev', '/sse?count=50&every=100')).then(
      (r) => r.status,
      () => 'cut',
    );
    await new Promise((resolve) => setTimeout(resolve, 200));
    const revokedAt = Date.now();
    revoke(file, 'alice');
    await waitForStatus(client, 'unauthorized', 3_000);
    expect(Date.now() - revokedAt).toBeLessThan(1_500);
    expect(client.state.reason).toMatch(/revoked/);
    expect(await inFlight).toBe('cut');
    const after = await get(agent, publicUrl(client, 'dev'));
    expect(after.status).toBe(404);
    const again = clientFor(relay, a.token, originA);
    await waitForStatus(again, 'unauthorized');
    // The same answer as for a token the relay never issued (test/relay/relay-uniform.test.ts).
    expect(again.state.reason).toMatch(/unknown or was revoked/);
  });

  it('reports an unknown token as unauthorized without retrying', async () => {
    const file = tokensFile('unknown');
    const relay = await relayFor(file);
    const client = clientFor(relay, 'srt_abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', originA);
    await waitForStatus(client, 'unauthorized');
    expect(client.state.reason).toMatch(/not accepted: it is unknown or was revoked/);
  });
});

describe('reconnecting', () => {
  it('reconnects after a relay restart and the URL works again', async () => {
    const file = tokensFile('restart');
    const a = addAccount(file, 'alice');
    const first = await startTestRelay(certs, file);
    const port = first.port;
    const client = clientFor({ port }, a.token, originA);
    await waitForStatus(client, 'connected');
    await client.publish('dev', { auth: 'public' });
    expect((await get(agent, publicUrl(client, 'dev'))).status).toBe(200);
    const states: string[] = [];
    const off = client.on('state', (state) => states.push(state.status));
    await first.close();
    await waitForStatus(client, 'backoff');
    const second = await startTestRelay(certs, file, {}, { port });
    cleanups.push(() => second.close());
    await waitForStatus(client, 'connected');
    off();
    expect(states).toContain('connecting');
    const response = await get(agent, publicUrl(client, 'dev'));
    expect(response.status).toBe(200);
    expect(response.body).toBe('hello from A');
  });

  it('behind --plain (plain TCP from a proxy), notices at once that a daemon disconnected', async () => {
    const file = tokensFile('plain-close');
    const a = addAccount(file, 'alice');
    const plain = await startTestRelay(certs, file, {}, { tls: undefined, trustProxy: true });
    cleanups.push(() => plain.close());
    const client = startClient(plain, certs, a.token, async () => ({ host: '127.0.0.1', port: originA.port }), { relayUrl: `http://127.0.0.1:${plain.port}` });
    await waitForStatus(client, 'connected');
    expect(plain.tunnelCount()).toBe(1);
    const closedAt = Date.now();
    await client.close();
    while (plain.tunnelCount() > 0 && Date.now() - closedAt < 5_000) await new Promise((resolve) => setTimeout(resolve, 20));
    // Not the 20 s + 15 s a failed ping would take.
    expect(plain.tunnelCount()).toBe(0);
    expect(Date.now() - closedAt).toBeLessThan(2_000);
  });

  it('holds requests while the daemon reconnects, then serves them from the new tunnel', async () => {
    const file = tokensFile('grace');
    const a = addAccount(file, 'alice');
    const relay = await relayFor(file, { holdTimeoutMs: 5_000 });
    const old = startClient(relay, certs, a.token, async () => ({ host: '127.0.0.1', port: originA.port }));
    await waitForStatus(old, 'connected');
    await old.publish('dev', { auth: 'public' });
    const url = publicUrl(old, 'dev');
    await old.close();
    const held = get(agent, url);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const fresh = clientFor(relay, a.token, originB);
    await fresh.publish('dev', { auth: 'public' });
    const response = await held;
    expect(response.status).toBe(200);
    expect(response.body).toBe('hello from B');
  });
});

describe('limits', () => {
  it('rate-limits one client IP with 429 and Retry-After', async () => {
    const file = tokensFile('rate');
    const a = addAccount(file, 'alice');
    const relay = await relayFor(file, { ratePerSecond: 1, rateBurst: 3 });
    const client = clientFor(relay, a.token, originA);
    await waitForStatus(client, 'connected');
    await client.publish('dev', { auth: 'public' });
    const statuses: number[] = [];
    const last = await (async () => {
      let response;
      for (let i = 0; i < 4; i += 1) {
        response = await get(agent, publicUrl(client, 'dev'));
        statuses.push(response.status);
      }
      return response!;
    })();
    // The tunnel's own handshake took one token from the same (loopback) IP.
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThanOrEqual(1);
    expect(statuses[0]).toBe(200);
    expect(last.status).toBe(429);
    expect(Number(last.headers['retry-after'])).toBeGreaterThanOrEqual(1);
  });

  it('counts an IPv6 client by its /64, and an IPv4-mapped address as its IPv4 address', async () => {
    // Behind a trusted proxy (plain HTTP, X-Forwarded-For): the only way to show many source
    // addresses on loopback. The relay keys its buckets on what the proxy saw.
    const file = tokensFile('rate64');
    const a = addAccount(file, 'alice');
    const plain = await startTestRelay(certs, file, { ratePerSecond: 1, rateBurst: 2 }, { tls: undefined, trustProxy: true });
    cleanups.push(() => plain.close());
    const client = startClient(plain, certs, a.token, async () => ({ host: '127.0.0.1', port: originA.port }), { relayUrl: `http://127.0.0.1:${plain.port}` });
    cleanups.push(() => client.close());
    await waitForStatus(client, 'connected');
    await client.publish('dev', { auth: 'public' });
    const from = async (address: string) => (await get(agent, publicUrl(client, 'dev'), { headers: { 'x-forwarded-for': address } })).status;
    expect([await from('2001:db8:1:2::1'), await from('2001:db8:1:2::2')]).toEqual([200, 200]);
    expect(await from('2001:db8:1:2:ffff:ffff:ffff:ffff')).toBe(429);
    expect(await from('2001:db8:1:3::1')).toBe(200);
    expect([await from('192.0.2.1'), await from('192.0.2.1')]).toEqual([200, 200]);
    expect(await from('::ffff:192.0.2.1')).toBe(429);
    expect(await from('192.0.2.2')).toBe(200);
  });

  it('answers 503 beyond the per-tunnel concurrent stream limit', async () => {
    const file = tokensFile('streams');
    const a = addAccount(file, 'alice');
    const relay = await relayFor(file, { maxStreamsPerTunnel: 2 });
    const client = clientFor(relay, a.token, originA);
    await waitForStatus(client, 'connected');
    await client.publish('dev', { auth: 'public' });
    const slow = [get(agent, publicUrl(client, 'dev', '/slow?ms=600')), get(agent, publicUrl(client, 'dev', '/slow?ms=600'))];
    await new Promise((resolve) => setTimeout(resolve, 150));
    const third = await get(agent, publicUrl(client, 'dev'));
    expect(third.status).toBe(503);
    expect(third.headers['spritely-relay-error']).toBe('too-many-streams');
    expect((await Promise.all(slow)).map((r) => r.status)).toEqual([200, 200]);
  });
});
