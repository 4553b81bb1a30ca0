/**
 * Requests through a real relay (TLS, wildcard cert) and a real tunnel client to a local origin that
 * stands in for a sprite's app: routing, auth modes, error pages, limits and header hygiene.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Agent } from 'undici';
import type { Relay } from '../../relay/relay-server.ts';
import { generateAccessToken, hashAccessToken, type TunnelClient } from '../../relay/tunnel-client.ts';
import { addAccount, get, makeCerts, publicAgent, publicUrl, removeDir, startClient, startOrigin, startTestRelay, waitForStatus, writeEmptyTokens, type Certs, type Origin } from './harness.ts';

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
  relay = await startTestRelay(certs, tokensFile, { holdTimeoutMs: 1_500, maxBodyBytes: 64 * 1024, maxHeaderBytes: 8 * 1024 });
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
