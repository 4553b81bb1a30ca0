/**
 * The local daemon's door to its remote hosts: `/v1/hosts/HOST/…` requests and WebSockets are
 * passed to HOST's daemon through that host's SSH link (host-link.ts), so every client of this
 * daemon — the CLI with `--host`, the renderer, MCP — reaches a remote sprite exactly as a local
 * one, with this daemon's access checks in front. The decisions (what crosses, what is refused,
 * what is rewritten) are in host-route.ts; this file moves bytes.
 *
 * HTTP: bodies are small JSON (read here, at most 16 MiB, so a request whose kept-alive channel
 * turns out dead can be sent once more on a new one). WebSockets are bridged message by message
 * (not spliced), so when the SSH connection drops mid-exec the client gets a clear `error`
 * message instead of a bare disconnect. Flow control stays end to end (the clients' acks reach the
 * remote daemon); the bridge only stops reading a side whose peer is more than 4 MiB behind.
 */
import http from 'node:http';
import type net from 'node:net';
import WebSocket, { type WebSocketServer } from 'ws';
import { SpritelyError, toSpritelyError } from '../errors.ts';
import { safeText } from '../safe-text.ts';
import type { HostLink } from './host-link.ts';
import { downstreamResponseHeaders, hostRoute, rewriteBody, rewriteFor, streamKind, upstreamRequestHeaders, type RewriteContext } from './host-route.ts';

/** How long a request waits for its host to (re)connect before it is answered 503. */
export const READY_WAIT_MS = 20_000;
const MAX_BODY = 16 * 1024 * 1024;
const BRIDGE_HIGH_WATER = 4 * 1024 * 1024;

export interface PassthroughOptions {
  hosts: { link(name: string): HostLink };
  localUrl: RewriteContext['localUrl'];
  /** Sees each accepted client WebSocket (the server ties a browser's streams to its login). */
  onClient?: (ws: WebSocket) => void;
}

function readBody(req: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        req.destroy();
        reject(new SpritelyError('payload_too_large', `The request body is larger than ${MAX_BODY} bytes.`));
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function lostMessage(host: string, err: Error, stream = false): string {
  const said = `Lost the connection to host "${host}" (${err.message}).`;
  return stream ? said : `${said} It reconnects on its own: run the command again (\`spritely host list\` shows its state).`;
}

/** Sends one request to the remote daemon; retried once when a reused keep-alive channel was dead. */
function upstream(link: HostLink, method: string, pathWithQuery: string, headers: http.OutgoingHttpHeaders, body: Buffer, retried = false): Promise<http.IncomingMessage> {
  return new Promise((resolve, reject) => {
    const up = http.request({ socketPath: link.paths.api, agent: link.agent, method, path: pathWithQuery, headers: { ...headers, 'content-length': body.length } });
    up.on('response', resolve);
    up.on('error', (err: NodeJS.ErrnoException) => {
      if (!retried && up.reusedSocket && (err.code === 'ECONNRESET' || err.code === 'EPIPE')) {
        upstream(link, method, pathWithQuery, headers, body, true).then(resolve, reject);
        return;
      }
      link.suspect();
      reject(new SpritelyError('unavailable', lostMessage(link.name, err)));
    });
    up.end(body);
  });
}

export async function passHttp(opts: PassthroughOptions, host: string, remotePath: string, search: string, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const link = opts.hosts.link(host);
  const body = await readBody(req);
  await link.ready(READY_WAIT_MS);
  const method = req.method ?? 'GET';
  const upRes = await upstream(link, method, remotePath + search, upstreamRequestHeaders(req.headers), body);
  const status = upRes.statusCode ?? 502;
  if (status >= 400) {
    const out = inertError((await readBody(upRes)).toString('utf8'), status);
    res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(out), 'Cache-Control': 'no-store' });
    return void res.end(out);
  }
  const rewrite = status === 200 ? rewriteFor(method, remotePath) : null;
  if (!rewrite) {
    res.writeHead(upRes.statusCode ?? 502, downstreamResponseHeaders(upRes.headers));
    upRes.pipe(res);
    upRes.on('error', () => res.destroy());
    return;
  }
  const text = (await readBody(upRes)).toString('utf8');
  const out = JSON.stringify(rewriteBody(rewrite.method, rewrite.params, JSON.parse(text), { host, localUrl: opts.localUrl }));
  res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(out), 'Cache-Control': 'no-store' });
  res.end(out);
}

/**
 * A server's error answer, its sentence made inert: it is shown in terminals here, and a
 * compromised server must not be able to type escape sequences into them.
 */
export function inertError(text: string, status: number): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = null;
  }
  const e = (parsed as { error?: { code?: unknown; message?: unknown } } | null)?.error;
  const code = typeof e?.code === 'string' && /^[a-z_]{1,40}$/.test(e.code) ? e.code : 'internal';
  const message = typeof e?.message === 'string' ? safeText(e.message, { maxChars: 4000 }) : `The remote daemon answered HTTP ${status}: ${safeText(text, { maxChars: 200 })}`;
  return JSON.stringify({ error: { code, message } });
}

/** The same for an exec or terminal stream's `error` message; every other frame passes untouched. */
function inertFrame(data: WebSocket.RawData, isBinary: boolean): WebSocket.RawData | string {
  if (isBinary) return data;
  const text = data.toString();
  if (!text.includes('"error"')) return data;
  try {
    const m = JSON.parse(text);
    if (m?.type === 'error') return JSON.stringify({ type: 'error', code: typeof m.code === 'string' ? safeText(m.code, { maxChars: 40 }) : 'internal', message: safeText(String(m.message ?? ''), { maxChars: 4000 }) });
  } catch {
    /* not JSON: pass it on */
  }
  return data;
}

function refuseUpgrade(socket: net.Socket, err: unknown): void {
  const e = toSpritelyError(err);
  const body = JSON.stringify({ error: e.toJSON() });
  if (socket.writable) socket.end(`HTTP/1.1 ${e.httpStatus} ${http.STATUS_CODES[e.httpStatus]}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
}

/** A close code a peer may send (1005, 1006 and 1015 only describe what happened). */
function sendableCode(code: number): number {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999) ? code : 1000;
}

/** Opens the remote stream first; only once it is open is the client's upgrade accepted. */
export async function passUpgrade(opts: PassthroughOptions, wss: WebSocketServer, host: string, remotePath: string, search: string, req: http.IncomingMessage, socket: net.Socket, head: Buffer): Promise<void> {
  let link: HostLink;
  try {
    link = opts.hosts.link(host);
    await link.ready(READY_WAIT_MS);
  } catch (err) {
    // exec and terminal clients read failures as an `error` message, as from a local sprite
    const kind = streamKind(remotePath);
    if (kind !== 'exec' && kind !== 'terminal') return refuseUpgrade(socket, err);
    const e = toSpritelyError(err);
    return void wss.handleUpgrade(req, socket, head, (client) => {
      opts.onClient?.(client);
      client.send(JSON.stringify({ type: 'error', code: e.code, message: e.message }));
      client.close(1011, e.code);
    });
  }
  const up = new WebSocket(`ws+unix://${link.paths.api}:${remotePath}${search}`, { perMessageDeflate: false, maxPayload: 64 * 1024 * 1024 });
  let settled = false;
  const onClientGone = () => {
    if (!settled) up.terminate();
  };
  socket.once('close', onClientGone);
  up.once('unexpected-response', (_r, res) => {
    settled = true;
    res.resume();
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('end', () => {
      const body = Buffer.concat(chunks);
      if (socket.writable) socket.end(`HTTP/1.1 ${res.statusCode} ${http.STATUS_CODES[res.statusCode ?? 502]}\r\nContent-Type: ${res.headers['content-type'] ?? 'text/plain'}\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
    });
    up.terminate();
  });
  up.once('error', (err) => {
    if (settled) return;
    settled = true;
    link.suspect();
    refuseUpgrade(socket, new SpritelyError('unavailable', lostMessage(host, err)));
  });
  up.once('open', () => {
    settled = true;
    socket.off('close', onClientGone);
    if (socket.destroyed) return void up.terminate();
    wss.handleUpgrade(req, socket, head, (client) => {
      opts.onClient?.(client);
      bridge(client, up, streamKind(remotePath), host, link);
    });
  });
}

function relay(from: WebSocket, to: WebSocket, filter?: (data: WebSocket.RawData, isBinary: boolean) => WebSocket.RawData | string): void {
  let paused = false;
  from.on('message', (data, isBinary) => {
    if (to.readyState !== WebSocket.OPEN) return;
    to.send(filter ? filter(data, isBinary) : data, { binary: isBinary }, () => {
      if (paused && to.bufferedAmount < BRIDGE_HIGH_WATER / 4) {
        paused = false;
        from.resume();
      }
    });
    if (!paused && to.bufferedAmount > BRIDGE_HIGH_WATER) {
      paused = true;
      from.pause();
    }
  });
}

function bridge(client: WebSocket, up: WebSocket, kind: ReturnType<typeof streamKind>, host: string, link: HostLink): void {
  client.on('error', () => {});
  up.on('error', () => {});
  relay(client, up);
  relay(up, client, kind === 'exec' || kind === 'terminal' ? inertFrame : undefined);
  client.on('close', (code, reason) => {
    if (up.readyState === WebSocket.OPEN) up.close(sendableCode(code), reason);
    else up.terminate();
  });
  up.on('close', (code, reason) => {
    if (client.readyState !== WebSocket.OPEN) return;
    if (code === 1006 || code === 1005) {
      // Cut, not closed: the SSH connection (or the remote daemon) went away mid-stream.
      link.suspect();
      const message = kind === 'exec' ? lostMessage(host, new Error('the connection ended while the command ran; it may still be running there')) : lostMessage(host, new Error('the connection ended'), true);
      if (kind === 'exec' || kind === 'terminal') client.send(JSON.stringify({ type: 'error', code: 'unavailable', message }));
      client.close(1011, 'host connection lost');
      return;
    }
    client.close(sendableCode(code), reason);
  });
}

const PROBLEM_CODES = { 400: 'invalid_argument', 403: 'permission_denied', 404: 'not_found' } as const;

function routed(opts: PassthroughOptions | undefined, pathname: string): { host: string; remotePath: string } | null {
  const r = hostRoute(pathname);
  if (!r) return null;
  if ('problem' in r) throw new SpritelyError(PROBLEM_CODES[r.status], r.problem);
  if (!opts) throw new SpritelyError('unavailable', 'This daemon drives no remote hosts.');
  return r;
}

/** The server's hook for requests: handles `/v1/hosts/HOST/…` and returns true, else false. */
export async function handleHostedRequest(opts: PassthroughOptions | undefined, url: URL, req: http.IncomingMessage, res: http.ServerResponse): Promise<boolean> {
  const r = routed(opts, url.pathname);
  if (!r) return false;
  await passHttp(opts!, r.host, r.remotePath, url.search, req, res);
  return true;
}

/** The server's hook for upgrades (after its access checks): true when it took the socket. */
export function handleHostedUpgrade(opts: PassthroughOptions | undefined, wss: WebSocketServer, url: URL, req: http.IncomingMessage, socket: net.Socket, head: Buffer): boolean {
  let r: { host: string; remotePath: string } | null;
  try {
    r = routed(opts, url.pathname);
  } catch (err) {
    refuseUpgrade(socket, err);
    return true;
  }
  if (!r) return false;
  void passUpgrade(opts!, wss, r.host, r.remotePath, url.search, req, socket, head);
  return true;
}
