/**
 * What an unauthenticated client can learn about accounts: nothing. Through a real relay on loopback,
 * a host under an unknown suffix, under a revoked account, under an account whose daemon is offline
 * (never connected, or gone past the grace period), and a name a connected account does not publish
 * all get the same answer byte for byte (bar the Date header), at once; so do plain requests and
 * WebSocket upgrades. On the tunnel endpoint, a missing, malformed, unknown or revoked token gets one
 * answer too.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Relay } from '../../relay/relay-server.ts';
import type { TunnelClient } from '../../relay/tunnel-client.ts';
import { addAccount, DOMAIN, makeCerts, rawTls, removeDir, revoke, startClient, startOrigin, startTestRelay, waitForStatus, writeEmptyTokens, type Certs, type Origin } from './harness.ts';

let certs: Certs;
let relay: Relay;
let origin: Origin;
const accounts: Record<'live' | 'offline' | 'revoked' | 'dropped', { token: string; suffix: string }> = {} as never;
const clients: TunnelClient[] = [];

beforeAll(async () => {
  certs = makeCerts();
  const tokensFile = path.join(certs.dir, 'tokens.json');
  writeEmptyTokens(tokensFile);
  for (const name of ['live', 'offline', 'revoked', 'dropped'] as const) accounts[name] = addAccount(tokensFile, name);
  revoke(tokensFile, 'revoked');
  relay = await startTestRelay(certs, tokensFile, { holdTimeoutMs: 3_000, tunnelGraceMs: 200 });
  origin = await startOrigin('dev');
  const target = async () => ({ host: '127.0.0.1', port: origin.port });
  const live = startClient(relay, certs, accounts.live.token, target);
  const dropped = startClient(relay, certs, accounts.dropped.token, target);
  clients.push(live);
  await Promise.all([waitForStatus(live, 'connected'), waitForStatus(dropped, 'connected')]);
  await live.publish('dev', { auth: 'public' });
  await live.publish('gone', { auth: 'sprite' });
  await live.unpublish('gone');
  await dropped.publish('dev', { auth: 'public' });
  await dropped.close();
  // Past the grace period the relay forgets the dropped account's publications.
  await new Promise((resolve) => setTimeout(resolve, 400));
});

afterAll(async () => {
  for (const client of clients) await client.close();
  await relay?.close();
  await origin?.close();
  removeDir(certs.dir);
});

/** The whole raw answer to one request on a fresh TLS connection, the Date header taken out. */
async function rawAnswer(host: string, head: string): Promise<{ text: string; ms: number }> {
  const started = performance.now();
  const raw = await rawTls(relay.port, host, certs.cert, head);
  return { text: raw.text.replace(/\r\ndate: [^\r]*/i, ''), ms: performance.now() - started };
}

const hosts = () => ({
  'unknown suffix': `dev-zzzzzz.${DOMAIN}`,
  'revoked account': `dev-${accounts.revoked.suffix}.${DOMAIN}`,
  'offline account (never connected)': `dev-${accounts.offline.suffix}.${DOMAIN}`,
  'offline account (past the grace period)': `dev-${accounts.dropped.suffix}.${DOMAIN}`,
  'connected account, never published': `nothing-${accounts.live.suffix}.${DOMAIN}`,
  'connected account, unpublished': `gone-${accounts.live.suffix}.${DOMAIN}`,
});

describe('public hosts nobody can reach', () => {
  it('get one answer, byte for byte, at once', async () => {
    const answers: Record<string, { text: string; ms: number }> = {};
    for (const [what, host] of Object.entries(hosts())) {
      answers[what] = await rawAnswer(host, `GET /x?y=1 HTTP/1.1\r\nhost: ${host}:${relay.port}\r\nconnection: close\r\n\r\n`);
    }
    const reference = answers['unknown suffix'].text;
    expect(reference).toMatch(/^HTTP\/1\.1 404 /);
    expect(reference).toContain('spritely-relay-error: unknown-host');
    for (const [what, answer] of Object.entries(answers)) {
      expect({ what, text: answer.text }).toEqual({ what, text: reference });
      // Nothing is held waiting for a tunnel (the hold timeout is 3 s).
      expect(answer.ms).toBeLessThan(1_500);
    }
  });

  it('get one answer to a WebSocket upgrade too', async () => {
    const answers = new Set<string>();
    for (const host of Object.values(hosts())) {
      const answer = await rawAnswer(host, `GET /ws HTTP/1.1\r\nhost: ${host}:${relay.port}\r\nconnection: Upgrade\r\nupgrade: websocket\r\nsec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`);
      answers.add(answer.text);
    }
    expect(answers.size).toBe(1);
    expect([...answers][0]).toMatch(/^HTTP\/1\.1 404 /);
  });

  it('while a published sprite of the same account answers', async () => {
    const host = `dev-${accounts.live.suffix}.${DOMAIN}`;
    const answer = (await rawAnswer(host, `GET / HTTP/1.1\r\nhost: ${host}\r\nconnection: close\r\n\r\n`)).text;
    expect(answer).toMatch(/^HTTP\/1\.1 200 /);
    expect(answer).toContain('hello from dev');
  });
});

describe('the tunnel endpoint', () => {
  const tunnelRequest = (authorization?: string) =>
    `GET /.spritely/tunnel HTTP/1.1\r\nhost: ${DOMAIN}\r\nconnection: Upgrade\r\nupgrade: spritely-tunnel/1\r\n${authorization ? `authorization: ${authorization}\r\n` : ''}\r\n`;

  it('answers a missing, malformed, unknown or revoked token alike', async () => {
    const answers: Record<string, string> = {};
    const tokens: Record<string, string | undefined> = {
      missing: undefined,
      malformed: 'Bearer',
      'not ours': 'Bearer hello',
      unknown: `Bearer srt_${accounts.revoked.suffix}_${'A'.repeat(43)}`,
      revoked: `Bearer ${accounts.revoked.token}`,
    };
    for (const [what, authorization] of Object.entries(tokens)) answers[what] = (await rawAnswer(DOMAIN, tunnelRequest(authorization))).text;
    expect(answers.revoked).toMatch(/^HTTP\/1\.1 401 /);
    for (const [what, text] of Object.entries(answers)) expect({ what, text }).toEqual({ what, text: answers.revoked });
  });

  it('so a client with a revoked token hears the same as one with an unknown token, and stops', async () => {
    const revoked = startClient(relay, certs, accounts.revoked.token, async () => null);
    const unknown = startClient(relay, certs, `srt_abcdef_${'B'.repeat(43)}`, async () => null);
    clients.push(revoked, unknown);
    await Promise.all([waitForStatus(revoked, 'unauthorized'), waitForStatus(unknown, 'unauthorized')]);
    expect(revoked.state.reason).toBe(unknown.state.reason);
    expect(revoked.state.reason).toMatch(/unknown or was revoked/);
  });
});
