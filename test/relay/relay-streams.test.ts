/**
 * Long-lived traffic through the relay: a WebSocket echo (an HTTP/1.1 upgrade carried as an RFC 8441
 * extended CONNECT on the tunnel) and an SSE stream whose events must arrive one by one, unbuffered.
 */
import path from 'node:path';
import https from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { Relay } from '../../relay/relay-server.ts';
import { generateAccessToken, hashAccessToken, type TunnelClient } from '../../relay/tunnel-client.ts';
import { addAccount, loopbackLookup, makeCerts, publicUrl, removeDir, startClient, startOrigin, startTestRelay, waitForStatus, writeEmptyTokens, type Certs, type Origin } from './harness.ts';

let certs: Certs;
let relay: Relay;
let origin: Origin;
let client: TunnelClient;
const accessToken = generateAccessToken();

beforeAll(async () => {
  certs = makeCerts();
  const tokensFile = path.join(certs.dir, 'tokens.json');
  writeEmptyTokens(tokensFile);
  const { token } = addAccount(tokensFile, 'laptop');
  relay = await startTestRelay(certs, tokensFile);
  origin = await startOrigin('dev');
  client = startClient(relay, certs, token, async () => ({ host: '127.0.0.1', port: origin.port }));
  await waitForStatus(client, 'connected');
  await client.publish('dev', { auth: 'public' });
  await client.publish('private', { auth: 'sprite', accessTokenHashes: [hashAccessToken(accessToken)] });
});

afterAll(async () => {
  await client?.close();
  await relay?.close();
  await origin?.close();
  removeDir(certs.dir);
});

function openSocket(url: string, headers: Record<string, string> = {}): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url.replace(/^https/, 'wss'), { ca: certs.cert, lookup: loopbackLookup as never, headers });
    socket.once('open', () => resolve(socket));
    socket.once('unexpected-response', (_req, res) => reject(new Error(`status ${res.statusCode}`)));
    socket.once('error', reject);
  });
}

function nextMessage(socket: WebSocket): Promise<{ data: Buffer; isBinary: boolean }> {
  return new Promise((resolve) => socket.once('message', (data, isBinary) => resolve({ data: data as Buffer, isBinary })));
}

describe('WebSocket', () => {
  it('echoes text and binary messages through the tunnel', async () => {
    const socket = await openSocket(publicUrl(client, 'dev', '/ws'));
    try {
      socket.send('hello');
      expect((await nextMessage(socket)).data.toString()).toBe('echo: hello');
      const payload = Buffer.alloc(200_000, 3);
      socket.send(payload);
      const reply = await nextMessage(socket);
      expect(reply.isBinary).toBe(true);
      expect(Buffer.compare(reply.data, payload)).toBe(0);
    } finally {
      socket.close();
    }
  });

  it('needs a credential on a private sprite', async () => {
    await expect(openSocket(publicUrl(client, 'private', '/ws'))).rejects.toThrow('status 401');
    const socket = await openSocket(publicUrl(client, 'private', '/ws'), { authorization: `Bearer ${accessToken}` });
    socket.send('hi');
    expect((await nextMessage(socket)).data.toString()).toBe('echo: hi');
    socket.close();
  });
});

describe('server-sent events', () => {
  it('delivers each event as it is sent, not at the end', async () => {
    const url = new URL(publicUrl(client, 'dev', '/sse?count=5&every=200'));
    const arrivals: { at: number; text: string }[] = [];
    let ended = 0;
    await new Promise<void>((resolve, reject) => {
      const request = https.get({ host: '127.0.0.1', port: url.port, path: url.pathname + url.search, servername: url.hostname, headers: { host: url.host }, ca: certs.cert }, (response) => {
        expect(response.headers['content-type']).toBe('text/event-stream');
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => {
          for (const event of chunk.split('\n\n').filter(Boolean)) arrivals.push({ at: Date.now(), text: event });
        });
        response.on('end', () => {
          ended = Date.now();
          resolve();
        });
      });
      request.on('error', reject);
    });
    const events = arrivals.map((a) => /^data: (\d+) (\d+)$/.exec(a.text));
    expect(events.map((match) => match?.[1])).toEqual(['0', '1', '2', '3', '4']);
    // Unbuffered: the first event is seen ~800 ms before the stream ends, the events arrive at (nearly)
    // as many distinct moments as they were sent, and typically moments after they left the origin.
    // (A buffering hop would deliver all five at the end, at one instant.)
    expect(ended - arrivals[0].at).toBeGreaterThan(500);
    expect(new Set(arrivals.map((a) => a.at)).size).toBeGreaterThanOrEqual(4);
    const lags = arrivals.map((arrival, i) => arrival.at - Number(events[i]?.[2])).sort((a, b) => a - b);
    expect(lags[2]).toBeLessThan(50);
  });
});
