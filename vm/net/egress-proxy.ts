/**
 * The egress proxy: a sprite's way out for programs pointed at it by hand (`http_proxy`; the
 * guest's own DNS and TCP go through the guest agent: agent-relay.ts). QEMU runs the
 * guest's network restricted and forwards the guest's connections to 10.0.2.100:3128 onto this
 * server's unix socket (one per sprite, so the socket says which sprite is asking). It speaks
 * plain HTTP proxying: CONNECT host:port for TLS and anything else, absolute-form requests for
 * http://. Every destination goes through the sprite's egress connector (egress-connector.ts):
 * resolved on the host and decided (egress-decision.ts) before one byte leaves, connected to
 * exactly the address decided; a refusal is a 403 whose text says why and how to change it, so
 * the person or agent in the guest can act on it. Guest-supplied text reaches logs and messages
 * only through safeText().
 */
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import type { Range } from './address.ts';
import { EgressConnector, readTreatAsPublic, type EgressRefusal } from './egress-connector.ts';
import type { NetworkPolicy } from './egress-policy.ts';
import type { HostNetwork } from './host-networks.ts';
import { listenPrivate } from './private-socket.ts';
import { safeText } from '../safe-text.ts';

export { readTreatAsPublic } from './egress-connector.ts';

export interface EgressProxyOptions {
  sprite: string;
  socketPath: string;
  /** Read on every connection, so a policy change applies at once. */
  policy: () => NetworkPolicy;
  /** Called when bytes move (the idle loop counts egress as activity). */
  onActivity?: () => void;
  log?: (line: string) => void;
  /** Resolves a normalised host name to addresses (default: the system resolver, as an absolute name). Tests fake it. */
  lookup?: (name: string) => Promise<string[]>;
  /** This computer's interfaces, read on every connection (default: os.networkInterfaces()). Tests fake them. */
  hostNetworks?: () => HostNetwork[];
  /**
   * Special-purpose ranges this computer's network uses for public destinations, as ADDRESS/BITS
   * (default: the comma-separated SPRITELY_EGRESS_TREAT_AS_PUBLIC, set by the user who runs the
   * daemon; see docs/network.md). Never lifts this computer, its networks, link-local or metadata.
   */
  treatAsPublic?: string[];
  /** Connections into the proxy at once (default EGRESS_MAX_CONNECTIONS); more are refused at once with a 503. */
  maxConnections?: number;
  /**
   * The sprite's connector, shared with its other ways out (its refusal log and connection cap
   * then count them all). Default: one of its own, built from the options above.
   */
  connector?: EgressConnector;
}

/**
 * Connections a sprite may have open into its proxy at once (SPRITELY_EGRESS_MAX_CONNECTIONS
 * overrides it). Under QEMU each one is also a host `socat` process (the guestfwd), and one that
 * never sends a byte never reaches the connector's own cap (which counts connections going out):
 * this bounds how many socats a guest keeps alive; a refused one ends at once, and its socat with it.
 */
export const EGRESS_MAX_CONNECTIONS = Number(process.env.SPRITELY_EGRESS_MAX_CONNECTIONS) > 0 ? Number(process.env.SPRITELY_EGRESS_MAX_CONNECTIONS) : 128;
/** At most one log line per this long about refusals over the cap (with how many there were). */
const OVER_CAP_LOG_MS = 60_000;

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'proxy-authenticate', 'te', 'trailer', 'transfer-encoding', 'upgrade']);
const STATUS: Record<EgressRefusal['kind'], number> = { invalid: 400, refused: 403, unreachable: 502, busy: 503 };

class Refusal extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

export class EgressProxy {
  readonly connector: EgressConnector;
  private readonly ownConnector: boolean;
  /** Accepts connections and applies the cap; the ones it lets in go to the HTTP server. */
  private readonly listener: net.Server;
  private readonly server: http.Server;
  private readonly sockets = new Set<net.Socket>();
  private readonly maxConnections: number;
  private refusedSinceLog = 0;
  private lastCapLog = 0;

  constructor(private readonly opts: EgressProxyOptions) {
    this.ownConnector = !opts.connector;
    this.connector =
      opts.connector ??
      new EgressConnector({
        sprite: opts.sprite,
        policy: opts.policy,
        lookup: opts.lookup,
        hostNetworks: opts.hostNetworks,
        treatAsPublic: readTreatAsPublic(opts.treatAsPublic ?? (process.env.SPRITELY_EGRESS_TREAT_AS_PUBLIC ?? '').split(','), opts.log),
        onActivity: opts.onActivity,
        log: opts.log,
      });
    this.server = http.createServer({ headersTimeout: 30_000, requestTimeout: 0, maxHeaderSize: 32 * 1024 }, (req, res) => void this.forwardRequest(req, res));
    this.server.on('connect', (req, socket, head) => void this.tunnel(req, socket as net.Socket, head));
    this.server.on('clientError', (_err, socket) => {
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    });
    this.maxConnections = opts.maxConnections ?? EGRESS_MAX_CONNECTIONS;
    this.listener = net.createServer((s) => this.accept(s));
  }

  /** Connections open now. */
  get connections(): number {
    return this.sockets.size;
  }

  private accept(s: net.Socket): void {
    s.on('error', () => {});
    if (this.sockets.size >= this.maxConnections) return this.refuseOverCap(s);
    this.sockets.add(s);
    s.once('close', () => this.sockets.delete(s));
    this.server.emit('connection', s);
  }

  /**
   * Over the cap: a 503 saying why, then the connection ends (so its socat does too). What the
   * guest sent is read and dropped, so the close is a clean end, not a reset.
   */
  private refuseOverCap(s: net.Socket): void {
    const body = `spritely: this sprite already has ${this.sockets.size} connections open through its proxy, the most it may have at once; close some and try again.\n`;
    s.resume();
    s.end(
      `HTTP/1.1 503 Too many connections\r\nContent-Type: text/plain; charset=utf-8\r\nX-Spritely-Error: ${headerSafe(body.trim())}\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
    s.setTimeout(2000, () => s.destroy());
    this.refusedSinceLog++;
    const now = Date.now();
    if (now - this.lastCapLog >= OVER_CAP_LOG_MS) {
      const since = this.lastCapLog ? ` (${this.refusedSinceLog} refused since the last note)` : '';
      this.opts.log?.(`egress: ${this.sockets.size} connections open at once, the most a sprite may have; new ones are refused with a 503${since}`);
      this.lastCapLog = now;
      this.refusedSinceLog = 0;
    }
  }

  /** Bytes received from destinations (this sprite's connector: every way out it serves). */
  get bytesIn(): number {
    return this.connector.bytesIn;
  }

  /** Bytes sent to destinations. */
  get bytesOut(): number {
    return this.connector.bytesOut;
  }

  listen(): Promise<void> {
    return listenPrivate(this.listener, this.opts.socketPath);
  }

  close(): void {
    this.listener.close();
    this.server.close();
    for (const s of this.sockets) s.destroy();
    if (this.ownConnector) this.connector.close();
    fs.rmSync(this.opts.socketPath, { force: true });
  }

  /**
   * A connection to host:port through the connector, or a thrown Refusal. `client` going away
   * while the name resolves or the connection opens abandons it.
   */
  private async open(host: string, port: number, client: net.Socket): Promise<net.Socket> {
    const abort = new AbortController();
    const onClose = () => abort.abort();
    client.once('close', onClose);
    try {
      const r = await this.connector.connect({ host, port, signal: abort.signal });
      if (!r.ok) throw new Refusal(STATUS[r.kind], r.message);
      if (client.destroyed) {
        r.socket.destroy();
        throw new Refusal(502, 'spritely: the client went away');
      }
      return r.socket;
    } finally {
      client.off('close', onClose);
    }
  }

  private async tunnel(req: http.IncomingMessage, client: net.Socket, head: Buffer): Promise<void> {
    client.on('error', () => {});
    const m = /^(\[[^\]\s]*\]|[^:\s[\]]+):(\d{1,5})$/.exec(req.url ?? '');
    let upstream: net.Socket;
    try {
      if (!m) throw new Refusal(400, `spritely: CONNECT needs host:port, got "${safeText(req.url ?? '', { maxChars: 200 })}"`);
      upstream = await this.open(m[1], Number(m[2]), client);
    } catch (err) {
      return void refuseRaw(client, err);
    }
    client.write('HTTP/1.1 200 Connection established\r\n\r\n');
    if (head.length) upstream.write(head);
    client.pipe(upstream);
    upstream.pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  }

  private async forwardRequest(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    let url: URL;
    let upstreamSocket: net.Socket;
    try {
      if (!/^http:\/\//i.test(req.url ?? '')) {
        throw new Refusal(400, `spritely: this is the sprite's egress proxy; send http://… requests or CONNECT host:port (got "${safeText(req.url ?? '', { maxChars: 200 })}")`);
      }
      if (!URL.canParse(req.url!)) throw new Refusal(400, `spritely: "${safeText(req.url!, { maxChars: 200 })}" is not a URL`);
      url = new URL(req.url!);
      // WHATWG URL parsing reinterprets some spellings (http://010.231.077.001/ is octal, a
      // different address): decide on what the guest wrote as well, as CONNECT does.
      const written = writtenHost(req.url!);
      if (written !== url.hostname) {
        for (const host of [url.hostname, written]) {
          const refusal = await this.connector.check({ host, port: Number(url.port || 80) });
          if (refusal) throw new Refusal(STATUS[refusal.kind], refusal.message);
        }
      }
      upstreamSocket = await this.open(url.hostname, Number(url.port || 80), req.socket);
    } catch (err) {
      return void refuseResponse(res, err);
    }
    const headers: http.OutgoingHttpHeaders = {};
    for (const [k, v] of Object.entries(req.headers)) if (!HOP_BY_HOP.has(k) && v !== undefined) headers[k] = v;
    headers.host = url.host;
    // the connector's socket, already connected to the address decided: nothing resolves again
    const upstream = http.request({ method: req.method, path: url.pathname + url.search, headers, createConnection: () => upstreamSocket });
    upstream.on('response', (up) => {
      const out: http.OutgoingHttpHeaders = {};
      for (const [k, v] of Object.entries(up.headers)) if (!HOP_BY_HOP.has(k) && v !== undefined) out[k] = v;
      res.writeHead(up.statusCode ?? 502, up.statusMessage, out);
      up.pipe(res);
    });
    upstream.on('error', (err) => {
      if (!res.headersSent) refuseResponse(res, new Refusal(502, `spritely: could not reach ${safeText(url.host, { maxChars: 300 })}: ${err.message}`));
      else res.destroy();
    });
    req.pipe(upstream);
    res.on('close', () => {
      upstream.destroy();
      upstreamSocket.destroy();
    });
  }
}

function refusalOf(err: unknown): Refusal {
  return err instanceof Refusal ? err : new Refusal(502, `spritely: ${(err as Error).message}`);
}

function refuseRaw(client: net.Socket, err: unknown): void {
  const r = refusalOf(err);
  const body = r.message + '\n';
  const reason = r.status === 403 ? 'Forbidden by Spritely network policy' : r.status === 400 ? 'Bad Request' : 'Bad Gateway';
  client.end(
    `HTTP/1.1 ${r.status} ${reason}\r\nContent-Type: text/plain; charset=utf-8\r\nX-Spritely-Error: ${headerSafe(r.message)}\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

function refuseResponse(res: http.ServerResponse, err: unknown): void {
  const r = refusalOf(err);
  const reason = r.status === 403 ? 'Forbidden by Spritely network policy' : undefined;
  res.writeHead(r.status, reason, { 'content-type': 'text/plain; charset=utf-8', 'x-spritely-error': headerSafe(r.message), connection: 'close' });
  res.end(r.message + '\n');
}

function headerSafe(s: string): string {
  return s.replace(/[^\x20-\x7e]/g, '?').slice(0, 500);
}

/** The host of an absolute-form request target as the guest wrote it (lower-case, brackets kept). */
export function writtenHost(target: string): string {
  const m = /^http:\/\/(?:[^@/?#]*@)?(\[[^\]/?#]*\]|[^:/?#]*)/i.exec(target);
  return (m?.[1] ?? '').toLowerCase();
}
