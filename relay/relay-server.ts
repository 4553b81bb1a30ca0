/**
 * The relay: one public HTTP(S) listener that (a) accepts tunnels from daemons at
 * `https://<domain>/.spritely/tunnel` and (b) routes requests for `<sprite>-<suffix>.<domain>` into the
 * right tunnel as HTTP/2 streams, after checking the sprite's access policy and the limits. It keeps no
 * state on disk besides reading the tokens file, which it watches so revocations apply at once.
 */
import http, { type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import http2, { type ClientHttp2Stream, type IncomingHttpHeaders as H2Headers } from 'node:http2';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { bearerToken } from './access-token.ts';
import { relayPage, type RelayErrorCode, type RelayPage } from './error-pages.ts';
import { clientIp, endToEndHeaders, forwardedHeaders, originForm, publicScheme } from './forward-headers.ts';
import type { Log } from './log.ts';
import { pipeH2 } from './h2-pipe.ts';
import { parsePublicHost, type HostRoute } from './host-routing.ts';
import { DEFAULT_LIMITS, type RelayLimits } from './relay-config.ts';
import { RelayTunnel } from './relay-tunnel.ts';
import { decideAccess, type AccessDecision } from './request-auth.ts';
import { RateLimiter } from './rate-limiter.ts';
import { rateKey } from './rate-key.ts';
import { readTokenFile, TokenIndex, watchTokenFile } from './token-store.ts';
import { TunnelRegistry, type Lookup } from './tunnel-registry.ts';
import { hashTunnelToken } from './tunnel-token.ts';
import { ERROR_HEADER, SPRITE_HEADER, TUNNEL_PATH, TUNNEL_UPGRADE, UPGRADE_STATUS_HEADER, type ClientMessage } from './tunnel-protocol.ts';

export type RelayLog = Log;

export interface RelayOptions {
  /** The apex: sprites live at `<sprite>-<suffix>.<domain>`, tunnels connect to `<domain>`. */
  domain: string;
  host?: string;
  port?: number;
  /** Serve TLS ourselves; without it the relay speaks plain HTTP (behind a TLS proxy). */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /** Trust X-Forwarded-For/-Proto from the peer (only when a proxy is the sole way in). */
  trustProxy?: boolean;
  tokensFile: string;
  limits?: Partial<RelayLimits>;
  log?: RelayLog;
  /** Fallback poll interval of the tokens file watcher. */
  tokenPollMs?: number;
}

export interface Relay {
  readonly port: number;
  readonly limits: RelayLimits;
  /** Connected tunnels right now. */
  tunnelCount(): number;
  /** Re-reads the tokens file and cuts tunnels whose token is gone (also runs on file change). */
  reloadTokens(): void;
  /** Swaps the certificate for new connections (after a renewal); no-op without TLS. */
  reloadTls(tls: { cert: string | Buffer; key: string | Buffer }): void;
  close(): Promise<void>;
}

const CANCEL = http2.constants.NGHTTP2_CANCEL;
const DROP_AUTHORIZATION = new Set(['authorization', 'cookie']);
const DROP_COOKIE = new Set(['cookie']);

type Target = Extract<Lookup, { kind: 'ready' }>;

export async function startRelay(options: RelayOptions): Promise<Relay> {
  const relay = new RelayServer(options);
  await relay.listen(options.host ?? '0.0.0.0', options.port ?? 0);
  return relay;
}

class RelayServer implements Relay {
  readonly limits: RelayLimits;
  private readonly server: http.Server;
  private readonly ownScheme: 'http' | 'https';
  private readonly domain: string;
  private readonly trustProxy: boolean;
  private readonly limiter: RateLimiter;
  private readonly registry: TunnelRegistry;
  private readonly log: RelayLog;
  private readonly upgraded = new Set<Duplex>();
  private readonly timers: NodeJS.Timeout[] = [];
  private tokens: TokenIndex;
  private unwatch: () => void = () => undefined;

  constructor(private readonly options: RelayOptions) {
    this.limits = { ...DEFAULT_LIMITS, ...options.limits };
    this.domain = options.domain.toLowerCase();
    this.trustProxy = options.trustProxy ?? false;
    this.log = options.log ?? (() => undefined);
    this.limiter = new RateLimiter({ ratePerSecond: this.limits.ratePerSecond, burst: this.limits.rateBurst });
    this.registry = new TunnelRegistry(this.limits.tunnelGraceMs);
    this.tokens = new TokenIndex(readTokenFile(options.tokensFile));
    const serverOptions: http.ServerOptions = {
      maxHeaderSize: this.limits.maxHeaderBytes,
      headersTimeout: this.limits.headersTimeoutMs,
      requestTimeout: 0,
      keepAliveTimeout: 5_000,
      connectionsCheckingInterval: Math.max(50, Math.min(1_000, Math.floor(this.limits.headersTimeoutMs / 4))),
      noDelay: true,
    };
    this.ownScheme = options.tls ? 'https' : 'http';
    this.server = options.tls
      ? https.createServer({ ...serverOptions, cert: options.tls.cert, key: options.tls.key, ALPNProtocols: ['http/1.1'], handshakeTimeout: 10_000 })
      : http.createServer(serverOptions);
    this.server.timeout = this.limits.idleTimeoutMs;
    this.server.on('request', (req, res) => this.onRequest(req, res));
    this.server.on('upgrade', (req, socket, head) => this.onUpgrade(req, socket as Socket, head));
    this.server.on('clientError', (error, socket) => this.onClientError(error as NodeJS.ErrnoException, socket));
  }

  async listen(host: string, port: number): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    this.unwatch = watchTokenFile(this.options.tokensFile, () => this.reloadTokens(), this.options.tokenPollMs);
    const prune = setInterval(() => this.limiter.prune(), 10_000);
    prune.unref();
    this.timers.push(prune);
    this.log('info', 'relay listening', { host, port: this.port, domain: this.domain, tls: this.ownScheme === 'https' });
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  tunnelCount(): number {
    return this.registry.tunnels().length;
  }

  reloadTokens(): void {
    try {
      this.tokens = new TokenIndex(readTokenFile(this.options.tokensFile));
    } catch (error) {
      this.log('warn', 'tokens file unreadable; keeping the previous one', { error: (error as Error).message });
      return;
    }
    this.registry.forgetWhere((hash) => this.tokens.isLive(hash), 'token revoked');
  }

  reloadTls(tls: { cert: string | Buffer; key: string | Buffer }): void {
    if (this.server instanceof https.Server) this.server.setSecureContext({ cert: tls.cert, key: tls.key });
  }

  async close(): Promise<void> {
    this.unwatch();
    for (const timer of this.timers) clearInterval(timer);
    this.registry.closeAll('relay shutting down');
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    await new Promise((resolve) => setTimeout(resolve, 60));
    for (const socket of this.upgraded) socket.destroy();
    await closed;
  }

  // ── public requests ────────────────────────────────────────────────────────────────────────────

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    const deadline = Date.now() + this.limits.holdTimeoutMs;
    const peer = req.socket.remoteAddress ?? '';
    const rate = this.limiter.take(rateKey(clientIp(peer, req.headers, this.trustProxy)));
    if (!rate.ok) return sendPage(res, relayPage('rate-limited'), { 'retry-after': String(rate.retryAfterSeconds) });
    const route = parsePublicHost(req.headers.host, this.domain);
    if (route.kind === 'apex') return this.onApex(req, res);
    if (route.kind === 'unknown') return sendPage(res, relayPage('unknown-host'));
    const found = this.registry.lookup(route.suffix, route.sprite);
    if (found.kind === 'ready') return this.forward(req, res, route, found, deadline);
    void this.hold(route, found, deadline).then((result) => {
      if (res.destroyed) return;
      if (result.kind === 'page') sendPage(res, relayPage(result.code));
      else this.forward(req, res, route, result, deadline);
    });
  }

  private onApex(req: IncomingMessage, res: ServerResponse): void {
    if (req.url === '/.spritely/health') {
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end('{"ok":true}\n');
      return;
    }
    sendPage(res, relayPage('unknown-host', 'This is a Spritely relay. Sprites live at their own addresses.'));
  }

  /**
   * Waits out a tunnel reconnect (within the grace period) or turns the lookup into a page. A host
   * nobody publishes, one under an unknown or revoked account, and one whose daemon is not connected
   * all get the same `unknown-host` page, at once: an unauthenticated client learns nothing about which
   * accounts exist. (A publication whose tunnel dropped less than the grace period ago is held — it
   * was public a moment ago.)
   */
  private async hold(route: Extract<HostRoute, { kind: 'sprite' }>, found: Lookup, deadline: number): Promise<Target | { kind: 'page'; code: RelayErrorCode }> {
    let result = found;
    if (result.kind === 'offline') {
      result = await this.registry.waitFor(route.suffix, route.sprite, Math.max(0, deadline - Date.now())).promise;
      if (result.kind === 'offline') return { kind: 'page', code: 'timeout' };
    }
    if (result.kind === 'ready') return result;
    return { kind: 'page', code: 'unknown-host' };
  }

  private access(req: IncomingMessage, target: Target, canRedirect: boolean): AccessDecision {
    const scheme = publicScheme(this.ownScheme, req.headers, this.trustProxy);
    return decideAccess(target.publication.policy, {
      url: req.url ?? '/',
      authorization: req.headers.authorization,
      cookie: req.headers.cookie,
      secure: scheme === 'https',
      canRedirect,
      now: Date.now(),
    });
  }

  /** The HTTP/2 request headers for the daemon. */
  private streamHeaders(req: IncomingMessage, sprite: string, decision: Extract<AccessDecision, { kind: 'allow' }>): OutgoingHttpHeaders {
    const headers = endToEndHeaders(req.headers, decision.forwardAuthorization ? DROP_COOKIE : DROP_AUTHORIZATION);
    if (decision.cookie) headers.cookie = decision.cookie;
    const host = req.headers.host ?? '';
    headers[':method'] = req.method ?? 'GET';
    headers[':path'] = originForm(decision.url);
    headers[':authority'] = host;
    headers[':scheme'] = publicScheme(this.ownScheme, req.headers, this.trustProxy);
    headers[SPRITE_HEADER] = sprite;
    Object.assign(headers, forwardedHeaders({ peerIp: req.socket.remoteAddress ?? '', scheme: this.ownScheme, host, trustProxy: this.trustProxy, incoming: req.headers }));
    return headers;
  }

  private forward(req: IncomingMessage, res: ServerResponse, route: Extract<HostRoute, { kind: 'sprite' }>, target: Target, deadline: number): void {
    const decision = this.access(req, target, true);
    if (decision.kind === 'deny') return sendPage(res, relayPage('unauthorized', decision.reason), { 'www-authenticate': 'Bearer realm="spritely"' });
    if (decision.kind === 'redirect') {
      res.writeHead(302, { location: decision.location, 'set-cookie': decision.setCookie, 'cache-control': 'no-store', 'content-length': '0' });
      res.end();
      return;
    }
    const declared = Number(req.headers['content-length'] ?? 0);
    if (!(declared <= this.limits.maxBodyBytes)) return sendPage(res, relayPage('body-too-large'), { connection: 'close' });
    if (target.tunnel.active >= this.limits.maxStreamsPerTunnel) return sendPage(res, relayPage('too-many-streams'), { 'retry-after': '1' });
    const hasBody = declared > 0 || req.headers['transfer-encoding'] !== undefined;
    let stream: ClientHttp2Stream;
    try {
      stream = target.tunnel.request(this.streamHeaders(req, route.sprite, decision), !hasBody);
    } catch (error) {
      this.log('warn', 'could not open a tunnel stream', { error: (error as Error).message });
      return sendPage(res, relayPage('tunnel-error'));
    }
    let answered = false;
    const fail = (code: RelayErrorCode, extra?: Record<string, string>) => {
      if (answered) return;
      answered = true;
      clearTimeout(timer);
      if (!stream.destroyed) stream.close(CANCEL);
      sendPage(res, relayPage(code), extra);
    };
    const timer = setTimeout(() => fail('timeout'), Math.max(0, deadline - Date.now()));
    stream.on('response', (headers) => {
      if (answered) return;
      const error = tunnelErrorCode(headers[ERROR_HEADER]);
      if (error) return fail(error);
      answered = true;
      clearTimeout(timer);
      const out = endToEndHeaders(headers);
      res.writeHead(Number(headers[':status']), out);
      // Streamed answers (SSE, chunked) go out at once; sized ones ride with their first body bytes.
      if (out['content-length'] === undefined) res.flushHeaders();
      pipeH2(stream, res);
    });
    stream.on('error', () => undefined);
    stream.on('close', () => {
      if (!answered) fail('tunnel-error');
    });
    res.on('close', () => {
      if (!res.writableFinished && !stream.destroyed) stream.close(CANCEL);
    });
    if (!hasBody) return;
    let received = 0;
    req.on('data', (chunk: Buffer) => {
      if (answered && stream.destroyed) return;
      received += chunk.length;
      if (received > this.limits.maxBodyBytes) return fail('body-too-large', { connection: 'close' });
      if (!stream.write(chunk)) req.pause();
    });
    stream.on('drain', () => req.resume());
    req.on('end', () => {
      if (!stream.destroyed) stream.end();
    });
  }

  // ── upgrades: tunnels and WebSockets ───────────────────────────────────────────────────────────

  private onUpgrade(req: IncomingMessage, socket: Socket, head: Buffer): void {
    socket.on('error', () => undefined);
    this.upgraded.add(socket);
    socket.once('close', () => this.upgraded.delete(socket));
    const rate = this.limiter.take(rateKey(clientIp(socket.remoteAddress ?? '', req.headers, this.trustProxy)));
    if (!rate.ok) return writeRawPage(socket, relayPage('rate-limited'), { 'retry-after': String(rate.retryAfterSeconds) });
    const route = parsePublicHost(req.headers.host, this.domain);
    const token = (req.headers.upgrade ?? '').toLowerCase();
    if (route.kind !== 'sprite') {
      if (req.url === TUNNEL_PATH && token === TUNNEL_UPGRADE) return this.acceptTunnel(req, socket, head);
      return writeRawPage(socket, relayPage('unknown-host'));
    }
    socket.setTimeout(this.limits.idleTimeoutMs, () => socket.destroy());
    const deadline = Date.now() + this.limits.holdTimeoutMs;
    const found = this.registry.lookup(route.suffix, route.sprite);
    const go = (target: Target) => this.forwardUpgrade(req, socket, head, route, target, deadline, token);
    if (found.kind === 'ready') return go(found);
    void this.hold(route, found, deadline).then((result) => {
      if (socket.destroyed) return;
      if (result.kind === 'page') writeRawPage(socket, relayPage(result.code));
      else go(result);
    });
  }

  private acceptTunnel(req: IncomingMessage, socket: Socket, head: Buffer): void {
    const token = bearerToken(req.headers.authorization);
    const hash = token === null ? null : hashTunnelToken(token);
    const found = hash === null ? null : this.tokens.lookup(hash);
    if (hash === null || found?.kind !== 'ok') {
      // One answer for a missing, unknown or revoked token; only the operator's log tells them apart.
      this.log('info', 'tunnel refused', { why: found?.kind ?? 'no token', account: found?.kind === 'revoked' ? found.account.name : undefined, peer: socket.remoteAddress });
      socket.end(TUNNEL_REFUSAL);
      return;
    }
    const account = found.account;
    // http.Server sockets allow half-open connections; a tunnel whose daemon sent FIN is over (and
    // over plain TCP, behind --plain, HTTP/2 would otherwise sit in CLOSE_WAIT until a ping fails).
    socket.allowHalfOpen = false;
    socket.setTimeout(0);
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 30_000);
    // HTTP/2 must take the socket over only once the 101 is written: Node's HTTP/2 session asserts
    // when it inherits a TLS write still in flight.
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: ${TUNNEL_UPGRADE}\r\n\r\n`, (error) => {
      if (error || socket.destroyed) return void socket.destroy();
      if (head.length > 0) socket.unshift(head);
      const hello = {
        type: 'hello' as const,
        account: account.name,
        suffix: account.suffix,
        domain: this.domain,
        limits: { maxConcurrentStreams: this.limits.maxStreamsPerTunnel, maxBodyBytes: this.limits.maxBodyBytes, holdTimeoutMs: this.limits.holdTimeoutMs },
      };
      const tunnel = new RelayTunnel(socket, account, hash, hello, this.log);
      this.registry.attach(tunnel);
      tunnel.on('message', (message) => this.onControl(tunnel, message));
      this.log('info', 'tunnel connected', { account: account.name, suffix: account.suffix, peer: socket.remoteAddress });
      tunnel.once('close', () => this.log('info', 'tunnel closed', { account: account.name }));
    });
  }

  private onControl(tunnel: RelayTunnel, message: ClientMessage): void {
    switch (message.type) {
      case 'sync': {
        const rejected = this.registry.sync(tunnel, message.sprites);
        tunnel.send({ type: 'result', id: message.id, ok: true, rejected });
        return;
      }
      case 'publish': {
        const error = this.registry.publish(tunnel, message.sprite);
        tunnel.send(error ? { type: 'result', id: message.id, ok: false, error } : { type: 'result', id: message.id, ok: true });
        return;
      }
      case 'unpublish':
        this.registry.unpublish(tunnel, message.name);
        tunnel.send({ type: 'result', id: message.id, ok: true });
        return;
    }
  }

  private forwardUpgrade(req: IncomingMessage, socket: Socket, head: Buffer, route: Extract<HostRoute, { kind: 'sprite' }>, target: Target, deadline: number, protocol: string): void {
    const decision = this.access(req, target, false);
    if (decision.kind !== 'allow') return writeRawPage(socket, relayPage('unauthorized', decision.kind === 'deny' ? decision.reason : undefined), { 'www-authenticate': 'Bearer realm="spritely"' });
    if (target.tunnel.active >= this.limits.maxStreamsPerTunnel) return writeRawPage(socket, relayPage('too-many-streams'), { 'retry-after': '1' });
    const headers = this.streamHeaders(req, route.sprite, decision);
    headers[':method'] = 'CONNECT';
    headers[':protocol'] = protocol;
    let stream: ClientHttp2Stream;
    try {
      stream = target.tunnel.request(headers, false);
    } catch {
      return writeRawPage(socket, relayPage('tunnel-error'));
    }
    let answered = false;
    const fail = (code: RelayErrorCode) => {
      if (answered) return;
      answered = true;
      clearTimeout(timer);
      if (!stream.destroyed) stream.close(CANCEL);
      writeRawPage(socket, relayPage(code));
    };
    const timer = setTimeout(() => fail('timeout'), Math.max(0, deadline - Date.now()));
    stream.on('error', () => undefined);
    stream.on('response', (answer: H2Headers) => {
      if (answered) return;
      const error = tunnelErrorCode(answer[ERROR_HEADER]);
      if (error) return fail(error);
      answered = true;
      clearTimeout(timer);
      const upgraded = Number(answer[':status']) === 200 && answer[UPGRADE_STATUS_HEADER] === '101';
      const status = upgraded ? 101 : Number(answer[':status']);
      const out = endToEndHeaders(answer);
      if (upgraded) Object.assign(out, { connection: 'Upgrade', upgrade: protocol });
      else out.connection = 'close';
      socket.write(rawHead(status, out));
      if (upgraded) {
        if (head.length > 0) stream.write(head);
        socket.pipe(stream);
      }
      pipeH2(stream, socket);
    });
    stream.on('close', () => {
      if (!answered) fail('tunnel-error');
      else socket.destroySoon();
    });
    socket.once('close', () => {
      clearTimeout(timer);
      if (!stream.destroyed) stream.close(CANCEL);
    });
  }

  private onClientError(error: NodeJS.ErrnoException, socket: Duplex): void {
    if (!socket.writable || error.code === 'ECONNRESET') {
      socket.destroy();
      return;
    }
    if (error.code === 'HPE_HEADER_OVERFLOW') return writeRawPage(socket, relayPage('headers-too-large'));
    const status = error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
    socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
  }
}

/** The page for an error the daemon reported in `spritely-error` (hot path: no schema parsing). */
function tunnelErrorCode(value: string | string[] | undefined): RelayErrorCode | null {
  if (value === undefined) return null;
  return value === 'app-down' ? 'app-down' : 'no-target';
}

const TUNNEL_REFUSAL_BODY = `${JSON.stringify({ error: 'tunnel token not accepted: it is unknown or was revoked (ask the relay operator for a new one)' })}\n`;
/** The relay's whole answer to a tunnel request whose token it does not accept, byte for byte. */
const TUNNEL_REFUSAL =
  `HTTP/1.1 401 ${http.STATUS_CODES[401]}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(TUNNEL_REFUSAL_BODY)}\r\n` +
  `cache-control: no-store\r\nconnection: close\r\n\r\n${TUNNEL_REFUSAL_BODY}`;

function sendPage(res: ServerResponse, page: RelayPage, extra: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(page.status, { ...page.headers, ...extra });
  res.end(page.body);
}

function writeRawPage(socket: Duplex, page: RelayPage, extra: Record<string, string> = {}): void {
  if (!socket.writable) return void socket.destroy();
  socket.end(rawHead(page.status, { ...page.headers, ...extra, connection: 'close' }) + page.body);
}

function rawHead(status: number, headers: OutgoingHttpHeaders): string {
  let head = `HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? ''}\r\n`;
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    for (const item of Array.isArray(value) ? value : [value]) head += `${name}: ${item}\r\n`;
  }
  return `${head}\r\n`;
}
