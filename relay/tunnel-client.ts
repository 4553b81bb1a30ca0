/**
 * The library the daemon uses to give sprites public URLs: it dials OUT to a relay (one connection
 * per installation, so no inbound port is needed), authenticates with the installation's tunnel
 * token, and serves every public request for every published sprite as an HTTP/2 stream on that one
 * connection, forwarding each to the sprite's app. It reconnects with backoff and re-publishes.
 *
 *   const tunnel = createTunnelClient({ relayUrl, token, resolveTarget });
 *   tunnel.on('state', (s) => ui.show(s));
 *   await tunnel.publish('dev', { auth: 'sprite', accessTokenHashes: [hashAccessToken(t)] });
 *   tunnel.urlFor('dev'); tunnel.shareLink('dev', 3_600_000);
 *   await tunnel.revokeShareLinks('dev');   // every earlier link and cookie stops working
 */
import { EventEmitter } from 'node:events';
import http from 'node:http';
import http2, { type IncomingHttpHeaders, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2';
import https from 'node:https';
import type { Socket } from 'node:net';
import { backoffDelay, DEFAULT_BACKOFF, type BackoffOptions } from './backoff.ts';
import { spriteLabel, spriteNameProblem, spriteUrl } from './host-routing.ts';
import { readJsonLines, writeJsonLine } from './json-lines.ts';
import { silentLog, type Log } from './log.ts';
import { OriginPools, proxyRequest, proxyUpgrade, respondTunnelError, type OriginTarget } from './origin-proxy.ts';
import { MAX_FRAME, SESSION_WINDOW, STREAM_WINDOW } from './relay-tunnel.ts';
import { relayUrlProblem } from './relay-url.ts';
import { generatePublicationId, generateShareKey, PUBLICATION_ID_PATTERN, sharePublicKey, signShareToken } from './share-link.ts';
import { parseTunnelToken } from './tunnel-token.ts';
import {
  CONTROL_PATH,
  SHARE_PARAM,
  SPRITE_HEADER,
  TUNNEL_PATH,
  TUNNEL_UPGRADE,
  publicationSchema,
  relayMessageSchema,
  type AuthMode,
  type ClientMessage,
  type Publication,
  type RelayMessage,
} from './tunnel-protocol.ts';

export { hashAccessToken, generateAccessToken } from './access-token.ts';
export { generatePublicationId, generateShareKey } from './share-link.ts';
export type { OriginTarget } from './origin-proxy.ts';

export interface TunnelClientOptions {
  /** e.g. `https://relay.example.com` (the relay's apex; a port is kept in public URLs). Plain `http://` only to loopback. */
  relayUrl: string;
  /** The tunnel token `spritely-relay token add` printed. */
  token: string;
  /** Extra CA certificate(s) to trust, for a relay with a private CA. */
  ca?: string | Buffer | Array<string | Buffer>;
  /** Where a sprite's app listens on this machine; may take seconds (it wakes a sleeping sprite). null: cannot serve. */
  resolveTarget: (spriteName: string) => Promise<OriginTarget | null>;
  log?: Log;
  /** PKCS#8 PEM Ed25519 key that signs share links; persist it so links outlive the daemon. Default: a fresh key. */
  shareKey?: string;
  backoff?: Partial<BackoffOptions>;
}

export type TunnelStatus = 'connecting' | 'connected' | 'backoff' | 'unauthorized' | 'closed';

export interface TunnelState {
  status: TunnelStatus;
  /** Why we are not connected (the relay's words when it gave any). */
  reason?: string;
  /** In `backoff`: when the next attempt starts (epoch ms). */
  retryAt?: number;
  /** Once connected: the relay account and the public host suffix. */
  account?: string;
  since: number;
}

export interface PublishOptions {
  auth: AuthMode;
  /** sha256 (hex) of each access token allowed in `sprite` mode (see `hashAccessToken`). */
  accessTokenHashes?: string[];
  /**
   * The publication's id, which its share links name (`generatePublicationId`). Default: a fresh one,
   * which revokes every link of an earlier publication of the name. Pass a saved id to re-publish the
   * same publication after a restart with its links intact.
   */
  publicationId?: string;
}

export interface PublishResult {
  url: string;
  /** false: recorded, and will be published as soon as the tunnel is up. */
  live: boolean;
}

export interface TunnelClient {
  readonly state: TunnelState;
  /** Subscribes to state changes; returns the unsubscribe function. */
  on(event: 'state', listener: (state: TunnelState) => void): () => void;
  publish(name: string, options: PublishOptions): Promise<PublishResult>;
  unpublish(name: string): Promise<void>;
  /** A link granting access to a `sprite`-mode URL for `ttlMs`, signed locally; dies with this publication. */
  shareLink(name: string, ttlMs: number, path?: string): string;
  /** Re-publishes `name` under a new publication id: every link and cookie issued so far stops working. */
  revokeShareLinks(name: string): Promise<PublishResult>;
  urlFor(name: string): string;
  /** What is published (or will be, once connected). */
  published(): Publication[];
  close(): Promise<void>;
}

const PING_EVERY_MS = 20_000;
const PING_TIMEOUT_MS = 15_000;
/** A connection that lasted this long resets the backoff. */
const STABLE_AFTER_MS = 5_000;

export function createTunnelClient(options: TunnelClientOptions): TunnelClient {
  return new Tunnel(options);
}

type Hello = Extract<RelayMessage, { type: 'hello' }>;
type Pending = (message: Extract<RelayMessage, { type: 'result' }> | null) => void;

class Tunnel implements TunnelClient {
  private readonly events = new EventEmitter();
  private readonly url: URL;
  private readonly log: Log;
  private readonly backoff: BackoffOptions;
  private readonly shareKey: string;
  private readonly sharePublic: string;
  private readonly tokenSuffix: string | null;
  private readonly pools = new OriginPools();
  private readonly desired = new Map<string, Publication>();
  private readonly pending = new Map<number, Pending>();
  private current: TunnelState = { status: 'connecting', since: Date.now() };
  private hello: Hello | undefined;
  private request: http.ClientRequest | undefined;
  private session: ServerHttp2Session | undefined;
  private socket: Socket | undefined;
  private control: ServerHttp2Stream | undefined;
  private synced = false;
  private nextId = 1;
  private attempt = 0;
  private connectedAt = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private pingTimer: NodeJS.Timeout | undefined;
  private closing: { reason: string; retry: boolean } | undefined;
  private closed = false;

  constructor(private readonly options: TunnelClientOptions) {
    const problem = relayUrlProblem(options.relayUrl);
    if (problem) throw new Error(problem);
    this.url = new URL(options.relayUrl);
    this.log = options.log ?? silentLog;
    this.backoff = { ...DEFAULT_BACKOFF, ...options.backoff };
    this.shareKey = options.shareKey ?? generateShareKey();
    this.sharePublic = sharePublicKey(this.shareKey);
    this.tokenSuffix = parseTunnelToken(options.token)?.suffix ?? null;
    this.connect();
  }

  get state(): TunnelState {
    return this.current;
  }

  on(event: 'state', listener: (state: TunnelState) => void): () => void {
    this.events.on(event, listener);
    return () => this.events.off(event, listener);
  }

  urlFor(name: string): string {
    const suffix = this.hello?.suffix ?? this.tokenSuffix ?? 'unknown';
    const domain = this.hello?.domain ?? this.url.hostname;
    return spriteUrl(name, suffix, domain, this.url.protocol, this.url.port);
  }

  shareLink(name: string, ttlMs: number, path = '/'): string {
    const suffix = this.hello?.suffix ?? this.tokenSuffix;
    if (!suffix) throw new Error('the tunnel token does not name a suffix; connect first');
    const publicationId = this.desired.get(name)?.publicationId;
    if (!publicationId) throw new Error(`${name} is not published: a share link belongs to a publication`);
    const token = signShareToken(this.shareKey, { label: spriteLabel(name, suffix), publicationId }, Date.now() + ttlMs);
    const target = path.startsWith('/') ? path : `/${path}`;
    return `${this.urlFor(name)}${target}${target.includes('?') ? '&' : '?'}${SHARE_PARAM}=${token}`;
  }

  published(): Publication[] {
    return [...this.desired.values()];
  }

  async publish(name: string, options: PublishOptions): Promise<PublishResult> {
    const suffix = this.hello?.suffix ?? this.tokenSuffix ?? '';
    const problem = spriteNameProblem(name, suffix);
    if (problem) throw new Error(problem);
    if (options.publicationId !== undefined && !PUBLICATION_ID_PATTERN.test(options.publicationId)) throw new Error('a publication id is 22 to 64 base64url characters');
    const publication = publicationSchema.parse({
      name,
      auth: options.auth,
      accessTokenHashes: (options.accessTokenHashes ?? []).map((hash) => hash.toLowerCase()),
      shareKey: this.sharePublic,
      publicationId: options.publicationId ?? generatePublicationId(),
    });
    this.desired.set(name, publication);
    const answer = await this.call({ type: 'publish', id: 0, sprite: publication });
    if (answer && !answer.ok) {
      if (this.desired.get(name) === publication) this.desired.delete(name);
      throw new Error(`relay refused ${name}: ${answer.error ?? 'no reason given'}`);
    }
    return { url: this.urlFor(name), live: answer !== null };
  }

  async revokeShareLinks(name: string): Promise<PublishResult> {
    const current = this.desired.get(name);
    if (!current) throw new Error(`${name} is not published`);
    return this.publish(name, { auth: current.auth, accessTokenHashes: current.accessTokenHashes });
  }

  async unpublish(name: string): Promise<void> {
    this.desired.delete(name);
    await this.call({ type: 'unpublish', id: 0, name });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.retryTimer);
    this.request?.destroy();
    const session = this.session;
    const socket = this.socket;
    this.teardown();
    if (session && !session.destroyed) {
      // Over a plain (loopback) socket a destroyed session may neither emit 'close' nor close the
      // socket: do not wait for it, and end the socket ourselves.
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          session.destroy();
          socket?.destroy();
          resolve();
        }, 200);
        session.once('close', () => {
          clearTimeout(timer);
          resolve();
        });
        session.close();
      });
    }
    await this.pools.close();
    this.setState({ status: 'closed' });
  }

  // ── connection lifecycle ───────────────────────────────────────────────────────────────────────

  private setState(next: Omit<TunnelState, 'since'>): void {
    this.current = { ...next, since: Date.now() };
    this.log('info', `tunnel ${next.status}`, { reason: next.reason });
    this.events.emit('state', this.current);
  }

  private connect(): void {
    if (this.closed) return;
    this.setState({ status: 'connecting' });
    const transport = this.url.protocol === 'https:' ? https : http;
    const requestOptions: https.RequestOptions = {
      hostname: this.url.hostname.replace(/^\[|\]$/g, ''),
      port: this.url.port || undefined,
      path: TUNNEL_PATH,
      method: 'GET',
      headers: { connection: 'Upgrade', upgrade: TUNNEL_UPGRADE, authorization: `Bearer ${this.options.token}` },
      ca: this.options.ca,
      agent: false,
      timeout: 15_000,
    };
    const request = transport.request(requestOptions);
    this.request = request;
    request.on('upgrade', (_response, socket, head) => {
      this.request = undefined;
      this.attach(socket as Socket, head);
    });
    request.on('response', (response) => {
      this.request = undefined;
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        if (body.length < 4096) body += chunk;
      });
      response.on('end', () => {
        let reason = `relay answered ${response.statusCode}`;
        try {
          reason = (JSON.parse(body) as { error?: string }).error ?? reason;
        } catch {
          // not our relay, or a proxy's page: keep the status
        }
        if (response.statusCode === 401 || response.statusCode === 403) this.stop(reason);
        else this.retry(reason);
      });
    });
    request.on('timeout', () => request.destroy(new Error('relay did not answer in time')));
    request.on('error', (error) => {
      this.request = undefined;
      this.retry(error.message);
    });
    request.end();
  }

  private attach(socket: Socket, head: Buffer): void {
    if (this.closed) {
      socket.destroy();
      return;
    }
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 30_000);
    if (head.length > 0) socket.unshift(head);
    const session = http2.performServerHandshake(socket, {
      settings: { enableConnectProtocol: true, initialWindowSize: STREAM_WINDOW, maxConcurrentStreams: 10_000, maxFrameSize: MAX_FRAME },
      maxSessionMemory: 64,
    });
    this.session = session;
    this.socket = socket;
    this.closing = undefined;
    this.connectedAt = Date.now();
    try {
      session.setLocalWindowSize(SESSION_WINDOW);
    } catch {
      // not fatal: the default window only slows big downloads
    }
    session.on('stream', (stream, headers) => this.onStream(stream, headers));
    session.on('error', (error) => this.log('debug', 'tunnel session error', { error: error.message }));
    session.on('close', () => {
      if (this.session !== session) return;
      this.teardown();
      if (this.closed) return;
      const closing = this.closing;
      if (closing && !closing.retry) this.stop(closing.reason);
      else this.retry(closing?.reason ?? 'connection to the relay closed');
    });
    this.pingTimer = setInterval(() => this.ping(session), PING_EVERY_MS);
    this.pingTimer.unref();
  }

  private teardown(): void {
    clearInterval(this.pingTimer);
    this.pingTimer = undefined;
    this.session = undefined;
    this.socket = undefined;
    this.control = undefined;
    this.synced = false;
    for (const settle of this.pending.values()) settle(null);
    this.pending.clear();
  }

  private retry(reason: string): void {
    if (this.closed) return;
    if (this.connectedAt && Date.now() - this.connectedAt >= STABLE_AFTER_MS) this.attempt = 0;
    this.connectedAt = 0;
    const delay = backoffDelay(this.attempt, this.backoff);
    this.attempt += 1;
    this.setState({ status: 'backoff', reason, retryAt: Date.now() + delay });
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  /** The relay refused our token: retrying cannot help until the user gives a new one. */
  private stop(reason: string): void {
    this.setState({ status: 'unauthorized', reason });
  }

  private ping(session: ServerHttp2Session): void {
    if (session.destroyed) return;
    const deadline = setTimeout(() => session.destroy(new Error('relay did not answer a ping')), PING_TIMEOUT_MS);
    deadline.unref();
    try {
      session.ping(() => clearTimeout(deadline));
    } catch {
      clearTimeout(deadline);
    }
  }

  // ── control stream ─────────────────────────────────────────────────────────────────────────────

  private onControl(stream: ServerHttp2Stream): void {
    stream.respond({ ':status': 200 });
    stream.on('error', () => undefined);
    this.control = stream;
    readJsonLines(stream, relayMessageSchema, (message) => this.onRelayMessage(message));
  }

  private onRelayMessage(message: RelayMessage): void {
    switch (message.type) {
      case 'hello': {
        this.hello = message;
        void this.sync();
        return;
      }
      case 'result':
        this.pending.get(message.id)?.(message);
        this.pending.delete(message.id);
        return;
      case 'closing':
        this.closing = { reason: message.reason, retry: message.retry };
        return;
    }
  }

  private async sync(): Promise<void> {
    const sprites = [...this.desired.values()];
    const id = this.nextId++;
    const answer = this.send({ type: 'sync', id, sprites });
    this.synced = true;
    const result = await answer;
    if (!result) return;
    for (const { name, error } of result.rejected ?? []) {
      this.log('warn', 'relay refused a sprite', { name, error });
      this.desired.delete(name);
    }
    this.setState({ status: 'connected', account: this.hello?.account });
  }

  /** Sends a request once the tunnel is synced; resolves null when not connected (sync will carry it). */
  private call(message: ClientMessage): Promise<Extract<RelayMessage, { type: 'result' }> | null> {
    if (!this.control || !this.synced) return Promise.resolve(null);
    return this.send({ ...message, id: this.nextId++ });
  }

  private send(message: ClientMessage): Promise<Extract<RelayMessage, { type: 'result' }> | null> {
    const control = this.control;
    if (!control) return Promise.resolve(null);
    return new Promise((resolve) => {
      this.pending.set(message.id, resolve);
      writeJsonLine(control, message);
    });
  }

  // ── public requests ────────────────────────────────────────────────────────────────────────────

  private onStream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
    stream.on('error', () => undefined);
    if (headers[':path'] === CONTROL_PATH && headers[':method'] === 'POST' && !this.control) return this.onControl(stream);
    const name = headers[SPRITE_HEADER];
    if (typeof name !== 'string' || !this.desired.has(name)) return respondTunnelError(stream, 'not-published', 404);
    void this.serve(stream, headers, name);
  }

  private async serve(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, name: string): Promise<void> {
    let target: OriginTarget | null;
    try {
      target = await this.options.resolveTarget(name);
    } catch (error) {
      this.log('warn', 'resolveTarget failed', { name, error: (error as Error).message });
      return respondTunnelError(stream, 'resolve-failed');
    }
    if (stream.destroyed || stream.closed) return;
    if (!target) return respondTunnelError(stream, 'no-target');
    if (headers[':method'] === 'CONNECT') proxyUpgrade(stream, headers, target);
    else proxyRequest(stream, headers, target, this.pools);
  }
}
