/**
 * The browser login through the real server (HTTP and WebSockets on a loopback port), with a
 * fake engine: nothing here needs a VM. The page's side is done with Node's crypto.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient } from './client.ts';
import { ApiServer } from './server.ts';
import { parseP256Key, verifyP256 } from './ui-identity.ts';
import { identityMessage, resumeMessage, UI_SUBPROTOCOL } from './ui-protocol.ts';

const fakeEngine = { on() {}, off() {}, list: () => [], touch() {}, images: { defaultImageId: () => 'x' } } as never;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'apisrv-ui-'));
const uiRoot = path.join(dir, 'renderer');
const API_TOKEN = crypto.randomBytes(32).toString('base64url');
let api: ApiServer;
let client: ApiClient;
let port: number;
let origin: string;

beforeAll(async () => {
  fs.mkdirSync(uiRoot);
  fs.writeFileSync(path.join(uiRoot, 'index.html'), '<!doctype html><title>app</title>');
  api = new ApiServer({ engine: fakeEngine, version: 'test', token: API_TOKEN, uiSessionsFile: path.join(dir, 'ui-sessions.json'), uiRoot });
  await api.listenUnix(path.join(dir, 'api.sock'));
  port = await api.listenTcp(0);
  origin = `http://127.0.0.1:${port}`;
  client = new ApiClient(path.join(dir, 'api.sock'));
});

afterAll(async () => {
  await api.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

function request(method: string, p: string, opts: { headers?: Record<string, string>; body?: string } = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: p, headers: { host: `127.0.0.1:${port}`, ...opts.headers }, agent: false }, (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, text }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

const post = (p: string, body: unknown, headers: Record<string, string> = {}) => request('POST', p, { body: JSON.stringify(body), headers: { 'content-type': 'application/json', origin, ...headers } });

function pageKey() {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return {
    spki: publicKey.export({ type: 'spki', format: 'der' }).toString('base64url'),
    sign: (m: string) => crypto.sign('sha256', Buffer.from(m), { key: privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url'),
  };
}
const nonce = () => crypto.randomBytes(24).toString('base64url');

async function login() {
  const { url } = await client.call('ui.loginUrl');
  const u = new URL(url);
  expect(u.search).toBe('');
  const code = new URLSearchParams(u.hash.slice(1)).get('login')!;
  const key = pageKey();
  const n = nonce();
  const res = await post('/ui/login', { code, key: key.spki, nonce: n });
  expect(res.status, res.text).toBe(200);
  expect(res.headers['set-cookie']).toBeUndefined();
  return { key, nonce: n, answer: JSON.parse(res.text) };
}

function openWs(p: string, protocols: string[] | undefined, headers: Record<string, string> = { origin }): Promise<{ ws: WebSocket; status: number; first?: string; close?: [number, string] }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}${p}`, protocols, { headers });
    let status = 0;
    ws.on('upgrade', () => (status = 101));
    ws.on('unexpected-response', (_req, res) => resolve({ ws, status: res.statusCode! }));
    ws.on('message', (m) => resolve({ ws, status, first: m.toString() }));
    ws.on('close', (code, reason) => resolve({ ws, status, close: [code, reason.toString()] }));
    ws.on('error', () => {});
  });
}

describe('browser mode on the loopback port', () => {
  it('serves the app shell without a login, with the CSP, clearing the cookie earlier versions set', async () => {
    const res = await request('GET', '/');
    expect(res.status).toBe(200);
    expect(res.text).toContain('<title>app</title>');
    expect(res.headers['content-security-policy']).toContain(`connect-src 'self' ws://127.0.0.1:${port}`);
    expect(res.headers['set-cookie']).toEqual(['spritely_session=; Max-Age=0; Path=/; HttpOnly; SameSite=Strict']);
    expect((await request('GET', '/ui/login?code=x')).status).toBe(410);
    expect((await request('GET', '/', { headers: { host: `evil.example:${port}` } })).status).toBe(403);
  });

  it('logs in with the code from the fragment and a page key; the token works for HTTP and WebSockets, on 127.0.0.1 only', async () => {
    const { answer, nonce: n } = await login();
    expect(verifyP256(parseP256Key(answer.daemonKey)!, identityMessage({ host: `127.0.0.1:${port}`, instance: answer.instance, nonce: n, challenge: answer.challenge }), answer.signature)).toBe(true);
    const bearer = { authorization: `Bearer ${answer.token}`, origin };
    expect((await request('GET', '/v1/sprites', { headers: bearer })).status).toBe(200);
    expect((await request('GET', '/v1/sprites', { headers: { ...bearer, host: `localhost:${port}` } })).status).toBe(401);
    expect((await request('GET', '/v1/sprites', { headers: { ...bearer, origin: 'http://evil.example' } })).status).toBe(403);
    expect((await request('GET', '/v1/sprites', { headers: { origin } })).status).toBe(401);
    const ok = await openWs('/v1/events', [UI_SUBPROTOCOL, `spritely.token.${answer.token}`]);
    expect(ok.ws.protocol).toBe(UI_SUBPROTOCOL);
    expect(JSON.parse(ok.first!)).toEqual({ type: 'hello', sprites: [] });
    ok.ws.close();
    const foreign = await openWs('/v1/events', [UI_SUBPROTOCOL, `spritely.token.${answer.token}`], { origin: 'http://evil.example' });
    expect(foreign.status).toBe(403);
    // A page with a dead token gets the handshake and a close code it can read.
    const dead = await openWs('/v1/events', [UI_SUBPROTOCOL, 'spritely.token.made-up']);
    expect(dead.close).toEqual([4401, 'unauthenticated']);
    // Anything else gets a plain 401.
    expect((await openWs('/v1/events', undefined)).status).toBe(401);
    // The api-token still works for other clients.
    expect((await request('GET', '/v1/sprites', { headers: { authorization: `Bearer ${API_TOKEN}`, host: `localhost:${port}` } })).status).toBe(200);
  });

  it('answers the identity check and a resume on 127.0.0.1 only, from our origin only, with small bodies only', async () => {
    const { key, answer } = await login();
    const n = nonce();
    const id = await post('/ui/identity', { nonce: n });
    expect(id.status).toBe(200);
    const body = JSON.parse(id.text);
    expect(verifyP256(parseP256Key(answer.daemonKey)!, identityMessage({ host: `127.0.0.1:${port}`, instance: body.instance, nonce: n, challenge: body.challenge }), body.signature)).toBe(true);
    const resumed = await post('/ui/resume', { session: answer.session, challenge: body.challenge, signature: key.sign(resumeMessage({ host: `127.0.0.1:${port}`, session: answer.session, challenge: body.challenge })) });
    expect(resumed.status, resumed.text).toBe(200);
    expect((await request('GET', '/v1/sprites', { headers: { authorization: `Bearer ${JSON.parse(resumed.text).token}` } })).status).toBe(200);
    expect((await post('/ui/identity', { nonce: n }, { host: `localhost:${port}` })).status).toBe(403);
    expect((await post('/ui/identity', { nonce: n }, { origin: 'http://127.0.0.1:1' })).status).toBe(403);
    expect((await post('/ui/identity', { nonce: 'x'.repeat(9000) })).status).toBe(413);
    expect((await request('POST', '/ui/identity', { body: '{oops', headers: { origin } })).status).toBe(400);
    expect((await request('GET', '/ui/identity')).status).toBe(405);
    expect((await post('/ui/login', { code: 'made-up', key: pageKey().spki, nonce: nonce() })).status).toBe(401);
    // A spent challenge is "try again" (409), not "logged out" (401).
    expect((await post('/ui/resume', { session: answer.session, challenge: body.challenge, signature: key.sign('x') })).status).toBe(409);
  });

  it('ui.loginFile writes a 0600 page that logs in once, then is gone', async () => {
    const { path: file } = await client.call('ui.loginFile');
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    const code = /#login=([A-Za-z0-9_-]+)"/.exec(fs.readFileSync(file, 'utf8'))![1];
    expect((await post('/ui/login', { code, key: pageKey().spki, nonce: nonce() })).status).toBe(200);
    expect(fs.existsSync(file)).toBe(false);
    expect((await post('/ui/login', { code, key: pageKey().spki, nonce: nonce() })).status).toBe(401);
  });

  it('ui.logoutAll closes every open window with 4401 "logged out" and voids every token', async () => {
    const { answer } = await login();
    const open = await openWs('/v1/events', [UI_SUBPROTOCOL, `spritely.token.${answer.token}`]);
    expect(open.first).toBeTruthy();
    const closed = new Promise<[number, string]>((r) => open.ws.on('close', (code, reason) => r([code, reason.toString()])));
    const { sessions } = await client.call('ui.logoutAll');
    expect(sessions).toBeGreaterThanOrEqual(1);
    expect(await closed).toEqual([4401, 'logged out']);
    const after = await request('GET', '/v1/sprites', { headers: { authorization: `Bearer ${answer.token}` } });
    expect(after.status).toBe(401);
  });
});
