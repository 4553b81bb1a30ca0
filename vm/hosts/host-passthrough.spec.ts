/**
 * The pass-through against a fake remote daemon on a unix socket (no SSH: the link is a fake with
 * the same face), through a real local HTTP server: what crosses, what is rewritten, what a cut
 * stream and an unready host look like to a client.
 */
import fs from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { SpritelyError } from '../errors.ts';
import { handleHostedRequest, handleHostedUpgrade, inertError, type PassthroughOptions } from './host-passthrough.ts';

let dir: string;
let remote: http.Server;
let local: http.Server;
let localPort: number;
const seen: http.IncomingHttpHeaders[] = [];
let ready: () => Promise<void> = async () => {};
let suspected = 0;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'passthrough-'));
  const sock = path.join(dir, 'api.sock');
  remote = http.createServer((req, res) => {
    seen.push(req.headers);
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const send = (status: number, v: unknown) => {
        res.writeHead(status, { 'Content-Type': 'application/json', 'Set-Cookie': 'remote=1', Connection: 'keep-alive' });
        res.end(JSON.stringify(v));
      };
      if (req.url === '/v1/sprites' && req.method === 'GET') return send(200, [{ name: 'web' }]);
      if (req.url === '/v1/sprites/web/url' && req.method === 'POST') return send(200, { local: 'http://web.localhost:41234/', port: JSON.parse(body).port ?? 8080 });
      if (req.url === '/v1/evil') return send(500, { error: { code: 'internal', message: 'boom \x1b]0;owned\x07' } });
      if (req.url === '/v1/sprites?x=1') return send(200, { query: true });
      send(404, { error: { code: 'not_found', message: `no ${req.url}` } });
    });
  });
  const wss = new WebSocketServer({ server: remote });
  wss.on('connection', (ws, req) => {
    if (req.url === '/v1/sprites/web/exec') {
      ws.on('message', (raw, isBinary) => {
        if (isBinary) return ws.send(Buffer.concat([Buffer.from([1]), raw as Buffer]));
        const m = JSON.parse(raw.toString());
        if (m.type === 'start') ws.send(JSON.stringify({ type: 'started' }));
        if (m.type === 'eof') {
          ws.send(JSON.stringify({ type: 'exit', code: 0, signal: null }));
          ws.close(1000);
        }
        if (m.type === 'signal') ws.send(JSON.stringify({ type: 'error', code: 'internal', message: 'evil \x1b[2J' }));
        if (m.type === 'resize') (ws as unknown as { _socket: net.Socket })._socket.destroy(); // the connection is cut
      });
    }
  });
  await new Promise<void>((r) => remote.listen(sock, r));
  const link = {
    name: 'box',
    paths: { api: sock },
    agent: new http.Agent({ keepAlive: true }),
    ready: () => ready(),
    suspect: () => void suspected++,
  };
  const opts: PassthroughOptions = {
    hosts: {
      link: (name: string) => {
        if (name !== 'box') throw new SpritelyError('not_found', `There is no host named "${name}".`);
        return link;
      },
    } as unknown as PassthroughOptions['hosts'],
    localUrl: (host, sprite) => `http://${sprite}.${host}.localhost:7001/`,
  };
  const localWss = new WebSocketServer({ noServer: true });
  local = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://d');
    handleHostedRequest(opts, url, req, res)
      .then((took) => {
        if (!took) res.writeHead(404).end('not hosted');
      })
      .catch((err: SpritelyError) => {
        res.writeHead(err.httpStatus ?? 500, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ error: { code: err.code, message: err.message } }));
      });
  });
  local.on('upgrade', (req, socket, head) => {
    if (!handleHostedUpgrade(opts, localWss, new URL(req.url ?? '/', 'http://d'), req, socket as net.Socket, head)) socket.destroy();
  });
  await new Promise<void>((r) => local.listen(0, '127.0.0.1', r));
  localPort = (local.address() as net.AddressInfo).port;
});

afterAll(async () => {
  local.closeAllConnections();
  remote.closeAllConnections();
  await new Promise((r) => local.close(r));
  await new Promise((r) => remote.close(r));
  fs.rmSync(dir, { recursive: true, force: true });
});

function request(method: string, p: string, body?: string, headers: Record<string, string> = {}): Promise<{ status: number; json: any; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: localPort, method, path: p, headers: { ...(body ? { 'Content-Type': 'application/json' } : {}), ...headers } }, (res) => {
      let t = '';
      res.on('data', (c) => (t += c));
      res.on('end', () => resolve({ status: res.statusCode!, json: JSON.parse(t), headers: res.headers }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('HTTP pass-through', () => {
  it('sends /v1/hosts/box/X to the remote /v1/X, without this computer\'s credentials or origin, query kept', async () => {
    const r = await request('GET', '/v1/hosts/box/sprites', undefined, { Authorization: 'Bearer local-token', Cookie: 'spritely_session=s', Origin: 'http://127.0.0.1:7000' });
    expect(r).toMatchObject({ status: 200, json: [{ name: 'web' }] });
    expect(r.headers['set-cookie']).toBeUndefined();
    const h = seen.at(-1)!;
    expect(h.authorization).toBeUndefined();
    expect(h.cookie).toBeUndefined();
    expect(h.origin).toBeUndefined();
    expect(h.host).toBe('spritely');
    expect((await request('GET', '/v1/hosts/box/sprites?x=1')).json).toEqual({ query: true });
  });

  it('rewrites the local URL to this computer\'s, and passes the body', async () => {
    expect((await request('POST', '/v1/hosts/box/sprites/web/url', JSON.stringify({ port: 3000 }))).json).toEqual({ local: 'http://web.box.localhost:7001/', port: 3000 });
  });

  it('makes a remote error sentence inert and keeps its status and code', async () => {
    const r = await request('GET', '/v1/hosts/box/evil');
    expect(r.status).toBe(500);
    expect(r.json).toEqual({ error: { code: 'internal', message: 'boom \\x1b]0;owned\\x07' } });
    expect((await request('GET', '/v1/hosts/box/nope')).json.error.code).toBe('not_found');
  });

  it('refuses an unknown host, "local", a remote\'s own hosts; leaves other paths alone', async () => {
    expect((await request('GET', '/v1/hosts/zz/sprites')).json.error.message).toContain('no host named "zz"');
    expect((await request('GET', '/v1/hosts/local/sprites')).status).toBe(400);
    expect((await request('GET', '/v1/hosts/box/hosts')).status).toBe(403);
  });

  it('answers 503 with the reason when the host does not become ready', async () => {
    ready = async () => {
      throw new SpritelyError('unavailable', 'Host "box" is unreachable: no route.');
    };
    try {
      const r = await request('GET', '/v1/hosts/box/sprites');
      expect(r).toMatchObject({ status: 503, json: { error: { code: 'unavailable', message: 'Host "box" is unreachable: no route.' } } });
    } finally {
      ready = async () => {};
    }
  });

  it('inertError keeps what it can of a malformed answer', () => {
    expect(JSON.parse(inertError('<html>\x1b', 502))).toEqual({ error: { code: 'internal', message: 'The remote daemon answered HTTP 502: <html>\\x1b' } });
    expect(JSON.parse(inertError('{"error":{"code":"NOT A CODE","message":"x"}}', 400)).error.code).toBe('internal');
  });
});

function openExec(): Promise<{ ws: WebSocket; msgs: (string | Buffer)[]; closed: Promise<number> }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${localPort}/v1/hosts/box/sprites/web/exec`);
    const msgs: (string | Buffer)[] = [];
    const closed = new Promise<number>((r) => ws.on('close', (code) => r(code)));
    ws.on('message', (raw, isBinary) => msgs.push(isBinary ? (raw as Buffer) : raw.toString()));
    ws.on('open', () => resolve({ ws, msgs, closed }));
    ws.on('error', reject);
  });
}

describe('WebSocket pass-through', () => {
  it('bridges an exec both ways, binary and text, to its normal close', async () => {
    const { ws, msgs, closed } = await openExec();
    ws.send(JSON.stringify({ type: 'start', argv: ['cat'] }));
    ws.send(Buffer.from('hi'));
    ws.send(JSON.stringify({ type: 'eof' }));
    expect(await closed).toBe(1000);
    expect(msgs[0]).toBe('{"type":"started"}');
    expect(msgs[1]).toEqual(Buffer.from([1, ...Buffer.from('hi')]));
    expect(msgs[2]).toBe('{"type":"exit","code":0,"signal":null}');
  });

  it('a remote error message arrives inert', async () => {
    const { ws, msgs } = await openExec();
    ws.send(JSON.stringify({ type: 'signal', signal: 'TERM' }));
    await new Promise((r) => setTimeout(r, 100));
    expect(JSON.parse(msgs.at(-1) as string)).toEqual({ type: 'error', code: 'internal', message: 'evil \\x1b[2J' });
    ws.close();
  });

  it('a stream cut mid-way ends with an `unavailable` error saying the command may still run there', async () => {
    const before = suspected;
    const { ws, msgs, closed } = await openExec();
    ws.send(JSON.stringify({ type: 'resize', cols: 80, rows: 24 }));
    expect(await closed).toBe(1011);
    const last = JSON.parse(msgs.at(-1) as string);
    expect(last).toMatchObject({ type: 'error', code: 'unavailable' });
    expect(last.message).toContain('Lost the connection to host "box"');
    expect(last.message).toContain('may still be running there');
    expect(suspected).toBe(before + 1);
  });

  it('an exec for a host that is not ready gets the reason as an error message', async () => {
    ready = async () => {
      throw new SpritelyError('unavailable', 'Host "box" is unreachable: timed out.');
    };
    try {
      const { msgs, closed } = await openExec();
      expect(await closed).toBe(1011);
      expect(JSON.parse(msgs[0] as string)).toEqual({ type: 'error', code: 'unavailable', message: 'Host "box" is unreachable: timed out.' });
    } finally {
      ready = async () => {};
    }
  });
});
