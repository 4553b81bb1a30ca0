/**
 * The daemon's HTTP + WebSocket server. It listens on a unix socket that only the owner can open
 * (0600 in a 0700 dir) and, optionally, on a 127.0.0.1 port that requires the token from a 0600
 * file or a browser login's token (vm/api/access.ts, vm/api/ui-auth.ts). Requests a web page could
 * send are refused unless their Origin and Host are ours (no cross-site requests, no DNS
 * rebinding). Every input is validated with the contract's schemas; every failure is
 * `{error: {code, message}}` with a status that matches.
 */
import crypto from 'node:crypto';
import http from 'node:http';
import type net from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { SpritelyError, toSpritelyError } from '../errors.ts';
import type { Engine } from '../engine/engine.ts';
import { listenPrivate } from '../net/private-socket.ts';
import type { RelayLink } from '../net/relay-link.ts';
import { spriteNameProblem } from '../names.ts';
import { TerminalManager } from '../terminals/terminal-manager.ts';
import { bearerToken, decideAccess, type AccessDecision } from './access.ts';
import { matchRoute, methods, type MethodName } from './contract.ts';
import { handleEventsSocket } from './events-socket.ts';
import { parseInput } from './parse-input.ts';
import type { RemoteHosts } from './remote-hosts.ts';
import { handleExecSocket } from './exec-socket.ts';
import { createHandlers, type Handlers } from './handlers.ts';
import { handleTerminalSocket } from './terminal-socket.ts';
import { UiAuth } from './ui-auth.ts';
import { CLOSE_UNAUTHENTICATED, tokenFromSubprotocols, UI_SUBPROTOCOL } from './ui-protocol.ts';
import { handleUiRoute } from './ui-routes.ts';

export const MAX_BODY_BYTES = 16 * 1024 * 1024;

export interface ApiServerOptions {
  engine: Engine;
  version: string;
  /** Token required on the TCP listener (Authorization: Bearer) unless a browser login's token is shown. */
  token?: string;
  /** Where browser sessions are remembered (public keys and times; the UI's key and login pages go beside it). */
  uiSessionsFile?: string;
  /** The built renderer, served on the TCP listener to logged-in browsers. */
  uiRoot?: string;
  /** Extra origins allowed to call (e.g. the UI's own origin). */
  allowedOrigins?: string[];
  onShutdown?: (leaveRunning: boolean) => void;
  /** The local URL of a sprite, when the daemon runs the URL proxy. */
  localUrl?: (name: string) => string;
  relay?: RelayLink;
  /** Remote hosts (vm/hosts/): `/v1/hosts/HOST/…` is passed to HOST's daemon. */
  hosts?: RemoteHosts;
}

type Transport = 'unix' | 'tcp';

export class ApiServer {
  readonly terminals = new TerminalManager();
  private handlers: Handlers;
  // A browser offers the UI subprotocol (and its token as another); we answer with the former only.
  private wss = new WebSocketServer({ noServer: true, maxPayload: 16 * 1024 * 1024, handleProtocols: (offered) => (offered.has(UI_SUBPROTOCOL) ? UI_SUBPROTOCOL : false) });
  private servers: http.Server[] = [];
  private tcpPort: number | null = null;
  readonly uiAuth: UiAuth | null;

  constructor(private readonly opts: ApiServerOptions) {
    this.uiAuth = opts.uiSessionsFile ? new UiAuth({ sessionsFile: opts.uiSessionsFile, log: (m) => process.stderr.write(`${new Date().toISOString()} ${m}\n`) }) : null;
    this.handlers = createHandlers(opts.engine, {
      version: opts.version,
      onShutdown: opts.onShutdown,
      loginUrl: () => this.loginUrl(),
      loginFile: () => this.ui().loginFile((code) => this.loginUrlFor(code)),
      logoutAll: () => this.ui().logoutAll(),
      localUrl: opts.localUrl,
      relay: opts.relay,
      hosts: opts.hosts,
    });
  }

  private ui(): UiAuth {
    if (!this.tcpPort || !this.uiAuth) throw new SpritelyError('unavailable', 'The daemon has no loopback port for the UI (it was started without one).');
    return this.uiAuth;
  }

  /** The login code travels in the fragment: it never reaches a server log, a Referer or a proxy. */
  private loginUrlFor(code: string): string {
    return `http://127.0.0.1:${this.tcpPort}/#login=${code}`;
  }

  /** A one-time login URL (for Electron main and tests; `spritely ui` opens a login file instead). */
  loginUrl(): string {
    return this.loginUrlFor(this.ui().mintCode().code);
  }

  listenUnix(socketPath: string): Promise<void> {
    return listenPrivate(this.makeServer('unix'), socketPath);
  }

  async listenTcp(port: number): Promise<number> {
    if (!this.opts.token) throw new Error('a TCP listener needs a token');
    const server = this.makeServer('tcp');
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    this.tcpPort = (server.address() as net.AddressInfo).port;
    return this.tcpPort;
  }

  private makeServer(transport: Transport): http.Server {
    const server = http.createServer({ maxHeaderSize: 32 * 1024, requestTimeout: 0, headersTimeout: 20_000 }, (req, res) => {
      this.onRequest(transport, req, res).catch((err) => sendError(res, toSpritelyError(err)));
    });
    server.on('upgrade', (req, socket, head) => this.onUpgrade(transport, req, socket as net.Socket, head));
    server.on('clientError', answerClientError);
    this.servers.push(server);
    return server;
  }

  /** Refuses what a browser page or another local user could send without being us (vm/api/access.ts). */
  private checkAccess(transport: Transport, req: http.IncomingMessage, opts: { anonymous?: boolean; credential?: string | null } = {}): AccessDecision & { ok: true } {
    const d = this.access(transport, req, opts);
    if (!d.ok) throw new SpritelyError(d.code, d.message);
    return d;
  }

  private access(transport: Transport, req: http.IncomingMessage, opts: { anonymous?: boolean; credential?: string | null } = {}): AccessDecision {
    return decideAccess(
      { transport, host: req.headers.host, origin: req.headers.origin, port: this.tcpPort, credential: opts.credential ?? bearerToken(req.headers.authorization), anonymous: opts.anonymous },
      {
        apiToken: (t) => this.tokenMatches(t),
        ui: (t, host) => this.uiAuth?.authenticate(t, host) ?? { ok: false, reason: 'unknown' },
        allowedOrigins: this.opts.allowedOrigins,
      },
    );
  }

  private tokenMatches(given: string): boolean {
    const token = this.opts.token;
    if (!token) return false;
    const a = Buffer.from(given);
    const b = Buffer.from(token);
    return a.length === b.length && crypto.timingSafeEqual(a, b);
  }

  private async onRequest(transport: Transport, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://daemon');
    if (transport === 'tcp' && !url.pathname.startsWith('/v1/')) return this.onUiRequest(req, res, url);
    this.checkAccess(transport, req);
    if (this.opts.hosts && (await this.opts.hosts.request(url, req, res))) return;
    let allowed: string[] = [];
    for (const [name, def] of Object.entries(methods) as [MethodName, (typeof methods)[MethodName]][]) {
      const params = matchRoute(def, url.pathname);
      if (!params) continue;
      allowed.push(def.http);
      if (def.http !== req.method) continue;
      if (params.name !== undefined) {
        const problem = spriteNameProblem(params.name);
        if (problem) throw new SpritelyError('invalid_argument', `Invalid sprite name: ${problem}.`);
      }
      const body = def.http === 'POST' ? await readJsonBody(req) : {};
      if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new SpritelyError('invalid_argument', 'The request body must be a JSON object.');
      const input = parseInput(def.input, { ...(body as object), ...params });
      if (typeof (input as { name?: unknown }).name === 'string' && def.http !== 'GET') this.opts.engine.touch((input as { name: string }).name);
      const output = await (this.handlers[name] as (i: unknown) => Promise<unknown>)(input);
      sendJson(res, 200, output);
      return;
    }
    allowed = [...new Set(allowed)];
    if (allowed.length) {
      res.setHeader('Allow', allowed.join(', '));
      throw new SpritelyError('method_not_allowed', `${req.method} is not allowed on ${url.pathname} (use ${allowed.join(' or ')}).`);
    }
    throw new SpritelyError('not_found', `No such API endpoint: ${req.method} ${url.pathname}. See docs/api.md.`);
  }

  /** The browser UI: the login steps and the app shell (vm/api/ui-routes.ts); Host and Origin checked first. */
  private async onUiRequest(req: http.IncomingMessage, res: http.ServerResponse, url: URL): Promise<void> {
    const d = this.access('tcp', req, { anonymous: true });
    if (!d.ok) {
      if (url.pathname.startsWith('/ui/') && req.method === 'POST') throw new SpritelyError(d.code, d.message);
      return sendPage(res, 403, d.message);
    }
    await handleUiRoute({ auth: this.uiAuth, port: this.tcpPort!, uiRoot: this.opts.uiRoot, sendJson, sendPage }, req, res, url);
  }

  private onUpgrade(transport: Transport, req: http.IncomingMessage, socket: net.Socket, head: Buffer): void {
    socket.on('error', () => {});
    const protocols = req.headers['sec-websocket-protocol'];
    const d = this.access(transport, req, { credential: bearerToken(req.headers.authorization) ?? tokenFromSubprotocols(protocols) });
    if (!d.ok) {
      // A browser cannot read an HTTP status from a refused upgrade: a page (our Origin, our
      // subprotocol) gets the handshake and then a close code that says "log in again".
      if (d.code === 'unauthenticated' && transport === 'tcp' && protocols?.split(',').some((p) => p.trim() === UI_SUBPROTOCOL)) {
        this.wss.handleUpgrade(req, socket, head, (ws) => ws.close(CLOSE_UNAUTHENTICATED, d.ended && d.ended !== 'unknown' ? `session ended (${d.ended})` : 'unauthenticated'));
        return;
      }
      const e = new SpritelyError(d.code, d.message);
      socket.end(`HTTP/1.1 ${e.httpStatus} ${http.STATUS_CODES[e.httpStatus]}\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n${JSON.stringify({ error: e.toJSON() })}`);
      return;
    }
    const url = new URL(req.url ?? '/', 'http://daemon');
    const attachUi = (ws: WebSocket) => {
      if (d.via === 'ui') ws.once('close', this.uiAuth!.attach(d.session, (code, reason) => ws.close(code, reason)));
    };
    if (this.opts.hosts?.upgrade(url, req, socket, head, this.wss, attachUi)) return;
    const route = routeStream(url.pathname);
    if (!route) {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n');
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws: WebSocket) => {
      attachUi(ws);
      const engine = this.opts.engine;
      if (route.kind === 'events') handleEventsSocket(ws, engine, this.opts.relay, this.opts.hosts);
      else if (route.kind === 'exec') handleExecSocket(ws, engine, route.name);
      else handleTerminalSocket(ws, engine, this.terminals, route.name, url.searchParams);
    });
  }

  async close(): Promise<void> {
    this.uiAuth?.close();
    this.terminals.closeAll();
    for (const c of this.wss.clients) c.terminate();
    await Promise.all(
      this.servers.map(
        (s) =>
          new Promise<void>((r) => {
            s.close(() => r());
            s.closeAllConnections?.();
          }),
      ),
    );
  }
}

type StreamRoute = { kind: 'events' } | { kind: 'exec' | 'terminal'; name: string };

function routeStream(pathname: string): StreamRoute | null {
  if (pathname === '/v1/events') return { kind: 'events' };
  const m = /^\/v1\/sprites\/([^/]+)\/(exec|terminal)$/.exec(pathname);
  if (!m) return null;
  let name: string;
  try {
    name = decodeURIComponent(m[1]);
  } catch {
    return null;
  }
  return { kind: m[2] as 'exec' | 'terminal', name };
}

/**
 * Reads a JSON body of at most MAX_BODY_BYTES. A larger one is read to its end and discarded (up
 * to a bound) before the 413 is sent: answering and closing while the client is still sending
 * makes the client see a broken pipe instead of the answer.
 */
function readJsonBody(req: http.IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    let tooLarge = Number(req.headers['content-length'] ?? 0) > MAX_BODY_BYTES;
    const chunks: Buffer[] = [];
    let size = 0;
    let ended = false;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > 8 * MAX_BODY_BYTES) return void req.destroy();
      if (size > MAX_BODY_BYTES) tooLarge = true;
      if (!tooLarge) chunks.push(c);
    });
    req.on('end', () => {
      ended = true;
      if (tooLarge) return reject(new SpritelyError('payload_too_large', `The request body is larger than ${MAX_BODY_BYTES} bytes.`));
      if (!size) return resolve({});
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      } catch (err) {
        reject(new SpritelyError('invalid_argument', `The request body is not valid JSON (${(err as Error).message}).`));
      }
    });
    req.on('error', reject);
    req.on('close', () => {
      if (!ended) reject(new SpritelyError('invalid_argument', 'The request was cut off before its body ended.'));
    });
  });
}

function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text), 'Cache-Control': 'no-store' });
  res.end(text);
}

function sendPage(res: http.ServerResponse, status: number, message: string): void {
  const esc = message.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
  const html = `<!doctype html><meta charset="utf-8"><title>Spritely</title><body style="font:16px system-ui;margin:4em auto;max-width:40em"><h1>Spritely</h1><p>${esc}</p>`;
  res.writeHead(status, { 'Content-Type': 'text/html; charset=utf-8', 'Content-Security-Policy': "default-src 'none'; style-src 'unsafe-inline'", 'X-Frame-Options': 'DENY' });
  res.end(html);
}

/**
 * A malformed request gets a 400. A *timeout* is closed silently instead: Node also times out
 * connections that never sent a byte (a browser's preconnect), and a 400 written into one of those
 * is read by the browser as the answer to the navigation it later sends there (a reload showed
 * "HTTP ERROR 400"). A closed idle socket is simply retried on a new one.
 */
export function answerClientError(err: NodeJS.ErrnoException, socket: Pick<net.Socket, 'writable' | 'end' | 'destroy'>): void {
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') return void socket.destroy();
  if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
  else socket.destroy();
}

function sendError(res: http.ServerResponse, err: SpritelyError): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  sendJson(res, err.httpStatus, { error: err.toJSON() });
}
