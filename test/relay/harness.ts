/**
 * Shared fixtures for the relay tests: a self-signed wildcard certificate made with openssl, a tokens
 * file, a stand-in sprite app (HTTP, SSE, uploads, WebSocket echo), a relay and tunnel clients — all on
 * 127.0.0.1 — plus an undici dispatcher that sends `*.relay.test` to loopback with the right SNI.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Agent, request as undiciRequest } from 'undici';
import { WebSocketServer } from 'ws';
import { startRelay, type Relay, type RelayOptions } from '../../relay/relay-server.ts';
import type { RelayLimits } from '../../relay/relay-config.ts';
import { addAccountToken, emptyTokenFile, readTokenFile, revokeAccount, writeTokenFile } from '../../relay/token-store.ts';
import { createTunnelClient, type TunnelClient, type TunnelClientOptions, type TunnelStatus } from '../../relay/tunnel-client.ts';

export const DOMAIN = 'relay.test';

export interface Certs {
  dir: string;
  cert: string;
  key: string;
}

export function makeCerts(): Certs {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'spritely-relay-test-'));
  const certFile = path.join(dir, 'cert.pem');
  const keyFile = path.join(dir, 'key.pem');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2',
    '-keyout', keyFile, '-out', certFile, '-subj', `/CN=${DOMAIN}`,
    '-addext', `subjectAltName=DNS:${DOMAIN},DNS:*.${DOMAIN},IP:127.0.0.1`,
  ], { stdio: 'ignore' });
  return { dir, cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8') };
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** Adds an account to the tokens file; returns its token and suffix. */
export function addAccount(tokensFile: string, name: string): { token: string; suffix: string } {
  const { file, token, account } = addAccountToken(readTokenFile(tokensFile), name, new Date());
  writeTokenFile(tokensFile, file);
  return { token, suffix: account.suffix };
}

export function revoke(tokensFile: string, name: string): void {
  writeTokenFile(tokensFile, revokeAccount(readTokenFile(tokensFile), name, new Date()));
}

export function writeEmptyTokens(tokensFile: string): void {
  writeTokenFile(tokensFile, emptyTokenFile());
}

/** Node 20 asks with `all: true` (happy eyeballs); both forms answer loopback only. */
export function loopbackLookup(_host: string, options: { all?: boolean } | number, callback: (...args: unknown[]) => void): void {
  if (typeof options === 'object' && options.all) callback(null, [{ address: '127.0.0.1', family: 4 }]);
  else callback(null, '127.0.0.1', 4);
}

export function publicAgent(ca: string, connections = 128): Agent {
  return new Agent({ connect: { ca, lookup: loopbackLookup as never }, connections, keepAliveTimeout: 1_000 });
}

export interface FetchResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

export async function get(agent: Agent, url: string, init: { method?: string; headers?: Record<string, string>; body?: string | Buffer } = {}): Promise<FetchResult> {
  const response = await undiciRequest(url, { dispatcher: agent, method: (init.method ?? 'GET') as 'GET', headers: init.headers, body: init.body });
  return { status: response.statusCode, headers: response.headers, body: await response.body.text() };
}

export interface Origin {
  port: number;
  server: http.Server;
  /** Requests the origin saw, newest last (headers only). */
  seen: http.IncomingHttpHeaders[];
  /** Each `/upload` body once its request closed: bytes read, and whether it arrived whole. */
  uploads: { bytes: number; complete: boolean }[];
  close(): Promise<void>;
}

/** The stand-in for a sprite's app on port "8080". */
export async function startOrigin(label = 'sprite'): Promise<Origin> {
  const seen: http.IncomingHttpHeaders[] = [];
  const uploads: Origin['uploads'] = [];
  const server = http.createServer((req, res) => {
    seen.push(req.headers);
    const url = new URL(req.url ?? '/', 'http://origin');
    if (url.pathname === '/headers') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(req.headers));
    } else if (url.pathname === '/sse') {
      const count = Number(url.searchParams.get('count') ?? 5);
      const every = Number(url.searchParams.get('every') ?? 150);
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      let sent = 0;
      const timer = setInterval(() => {
        res.write(`data: ${sent} ${Date.now()}\n\n`);
        sent += 1;
        if (sent === count) {
          clearInterval(timer);
          res.end();
        }
      }, every);
      req.on('close', () => clearInterval(timer));
    } else if (url.pathname === '/upload') {
      let bytes = 0;
      req.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
      });
      req.on('end', () => res.end(`received ${bytes}`));
      req.on('close', () => uploads.push({ bytes, complete: req.complete }));
    } else if (url.pathname === '/cookies') {
      res.setHeader('set-cookie', ['a=1; Path=/', 'b=2; Path=/']);
      res.end('cookies');
    } else if (url.pathname === '/nothing') {
      res.writeHead(204);
      res.end();
    } else if (url.pathname === '/closing') {
      res.writeHead(200, { connection: 'close', 'content-type': 'text/plain' });
      res.end('closing');
    } else if (url.pathname === '/hop') {
      res.writeHead(200, { 'content-type': 'text/plain', connection: 'x-private', 'x-private': 'secret', 'keep-alive': 'timeout=5' });
      res.end('hop');
    } else if (url.pathname === '/slow') {
      setTimeout(() => res.end('slow'), Number(url.searchParams.get('ms') ?? 100));
    } else {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(`hello from ${label}`);
    }
  });
  const wss = new WebSocketServer({ server });
  wss.on('connection', (socket) => socket.on('message', (data, isBinary) => socket.send(isBinary ? data : `echo: ${data.toString()}`)));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    server,
    seen,
    uploads,
    close: async () => {
      for (const client of wss.clients) client.terminate();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export async function startTestRelay(certs: Certs, tokensFile: string, limits: Partial<RelayLimits> = {}, extra: Partial<RelayOptions> = {}): Promise<Relay> {
  return startRelay({
    domain: DOMAIN,
    host: '127.0.0.1',
    port: 0,
    tls: { cert: certs.cert, key: certs.key },
    tokensFile,
    limits: { ratePerSecond: 0, ...limits },
    tokenPollMs: 200,
    ...extra,
  });
}

export function startClient(relay: { port: number }, certs: Certs, token: string, resolveTarget: TunnelClientOptions['resolveTarget'], extra: Partial<TunnelClientOptions> = {}): TunnelClient {
  return createTunnelClient({
    relayUrl: `https://127.0.0.1:${relay.port}`,
    token,
    ca: certs.cert,
    resolveTarget,
    backoff: { initialMs: 50, maxMs: 400 },
    ...extra,
  });
}

/** Resolves once the client reaches `status` (or rejects after `timeoutMs`). */
export function waitForStatus(client: TunnelClient, status: TunnelStatus, timeoutMs = 5_000): Promise<void> {
  if (client.state.status === status) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`tunnel did not reach ${status} (now ${client.state.status}: ${client.state.reason ?? ''})`));
    }, timeoutMs);
    const off = client.on('state', (state) => {
      if (state.status === status) {
        clearTimeout(timer);
        off();
        resolve();
      }
    });
  });
}

/** The public URL as the relay (on its test port) serves it. */
export function publicUrl(client: TunnelClient, name: string, pathAndQuery = '/'): string {
  return `${client.urlFor(name)}${pathAndQuery}`;
}

/** Sends raw bytes over TLS to the relay (for requests undici would rewrite); resolves with all it got back. */
export function rawTls(port: number, servername: string, ca: string, payload: string, options: { keepOpenMs?: number } = {}): Promise<{ text: string; closedAfterMs: number }> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const socket = tls.connect({ host: '127.0.0.1', port, servername, ca }, () => socket.write(payload));
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      text += chunk;
    });
    socket.on('error', reject);
    socket.on('close', () => resolve({ text, closedAfterMs: Date.now() - started }));
    if (options.keepOpenMs !== undefined) setTimeout(() => socket.end(), options.keepOpenMs);
  });
}
