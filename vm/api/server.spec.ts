import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient } from './client.ts';
import { answerClientError, ApiServer } from './server.ts';

// The engine is never reached by these requests: they are refused at the door.
const fakeEngine = { on() {}, off() {}, list: () => [], touch() {}, images: { defaultImageId: () => 'x' } } as never;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'apisrv-'));
const sock = path.join(dir, 'api.sock');
let api: ApiServer;
let client: ApiClient;

beforeAll(async () => {
  api = new ApiServer({ engine: fakeEngine, version: 'test' });
  await api.listenUnix(sock);
  client = new ApiClient(sock);
});

afterAll(async () => {
  await api.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('API server input handling', () => {
  it('makes the socket owner-only', () => {
    expect(fs.statSync(sock).mode & 0o777).toBe(0o600);
  });

  it('answers a too-large body with 413, every time, and keeps serving', async () => {
    for (let i = 0; i < 3; i++) {
      const big = await client.request('POST', '/v1/sprites', 'x'.repeat(17 * 1024 * 1024));
      expect(big.status).toBe(413);
      expect(JSON.parse(big.text).error.code).toBe('payload_too_large');
    }
    expect((await client.request('POST', '/v1/sprites', '{"name": 1}')).status).toBe(400);
  });

  it.each([
    ['POST', '/v1/sprites', '{oops', 400, /not valid JSON/],
    ['POST', '/v1/sprites', '"str"', 400, /JSON object/],
    ['POST', '/v1/sprites', '{"name":"ok","extra":1}', 400, /extra|Unrecognized/i],
    ['GET', '/v1/sprites/Bad_Name', undefined, 400, /Invalid sprite name/],
    ['PUT', '/v1/sprites', undefined, 405, /not allowed/],
    ['GET', '/v1/nothing', undefined, 404, /No such API endpoint/],
  ] as const)('%s %s %s → %i', async (method, p, body, status, re) => {
    const r = await client.request(method, p, body);
    expect(r.status).toBe(status);
    expect(JSON.parse(r.text).error.message).toMatch(re);
  });

  it('refuses requests carrying a foreign Origin', async () => {
    const r = await client.request('GET', '/v1/sprites', undefined, undefined, { Origin: 'https://evil.example' });
    expect(r.status).toBe(403);
  });

  it('closes a timed-out connection without writing into it, and answers malformed requests with 400', () => {
    const socket = () => ({ writable: true, written: [] as string[], destroyed: false, end(this: { written: string[] }, d: string) { this.written.push(d); return this; }, destroy(this: { destroyed: boolean }) { this.destroyed = true; return this; } });
    // A browser's idle preconnect that Node timed out: a 400 there would be read as the next navigation's answer.
    const idle = socket();
    answerClientError(Object.assign(new Error('timeout'), { code: 'ERR_HTTP_REQUEST_TIMEOUT' }), idle as never);
    expect([idle.written, idle.destroyed]).toEqual([[], true]);
    const bad = socket();
    answerClientError(Object.assign(new Error('parse'), { code: 'HPE_INVALID_METHOD' }), bad as never);
    expect(bad.written).toEqual(['HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n']);
  });
});
