/**
 * The egress proxy: a sprite's only way out. QEMU runs the guest's network restricted and forwards
 * the guest's connections to 10.0.2.100:3128 onto this server's unix socket (one per sprite, so the
 * socket says which sprite is asking). It speaks plain HTTP proxying: CONNECT host:port for TLS and
 * anything else, absolute-form requests for http://. Every destination is resolved on the host and
 * checked against the sprite's policy (egress-policy.ts) before one byte leaves; a refusal is a
 * 403 whose text says why and how to change it, so the person or agent in the guest can act on it.
 */
import dns from 'node:dns';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import { allowListMatches, decideEgress, formatNetworkPolicy, type NetworkPolicy } from './egress-policy.ts';

export interface EgressProxyOptions {
  sprite: string;
  socketPath: string;
  /** Read on every connection, so a policy change applies at once. */
  policy: () => NetworkPolicy;
  /** Called when bytes move (the idle loop counts egress as activity). */
  onActivity?: () => void;
  log?: (line: string) => void;
  /** Tests resolve names themselves. */
  lookup?: (host: string) => Promise<string[]>;
  /** Tests pretend other interface addresses. */
  hostAddresses?: () => string[];
  maxConnections?: number;
}

const CONNECT_TIMEOUT_MS = 15_000;
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'proxy-authenticate', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

export function hostInterfaceAddresses(): string[] {
  return Object.values(os.networkInterfaces()).flatMap((list) => (list ?? []).map((i) => i.address));
}

async function systemLookup(host: string): Promise<string[]> {
  const found = await dns.promises.lookup(host, { all: true, verbatim: true });
  return found.map((f) => f.address);
}

class Refusal extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

export class EgressProxy {
  private readonly server: http.Server;
  private readonly sockets = new Set<net.Socket>();
  bytesOut = 0;
  bytesIn = 0;

  constructor(private readonly opts: EgressProxyOptions) {
    this.server = http.createServer({ headersTimeout: 30_000, requestTimeout: 0, maxHeaderSize: 32 * 1024 }, (req, res) => void this.forwardRequest(req, res));
    this.server.on('connect', (req, socket, head) => void this.tunnel(req, socket as net.Socket, head));
    this.server.on('connection', (s: net.Socket) => {
      this.sockets.add(s);
      s.once('close', () => this.sockets.delete(s));
      if (this.sockets.size > (opts.maxConnections ?? 512)) {
        s.end('HTTP/1.1 503 Too many connections\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      }
    });
    this.server.on('clientError', (_err, socket) => {
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    });
  }

  async listen(): Promise<void> {
    fs.rmSync(this.opts.socketPath, { force: true });
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.opts.socketPath, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    fs.chmodSync(this.opts.socketPath, 0o600);
  }

  close(): void {
    this.server.close();
    for (const s of this.sockets) s.destroy();
    fs.rmSync(this.opts.socketPath, { force: true });
  }

  /** Resolves, checks and returns the address to connect to, or throws a Refusal. */
  private async destination(host: string, port: number): Promise<string> {
    const policy = this.opts.policy();
    if (!host || !Number.isInteger(port) || port < 1 || port > 65535) throw new Refusal(400, `"${host}:${port}" is not a host and port`);
    const bare = host.replace(/^\[|\]$/g, '');
    let addresses: string[];
    if (net.isIP(bare)) addresses = [bare];
    // refused by name alone: no DNS query leaves for a name the policy never lets out
    else if (policy.mode === 'none' || (policy.mode === 'allow' && !allowListMatches(policy.allow, bare))) addresses = ['0.0.0.0'];
    else {
      try {
        addresses = await (this.opts.lookup ?? systemLookup)(bare);
      } catch (err) {
        throw new Refusal(502, `spritely: could not resolve ${bare} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
      }
    }
    // only `internet` compares against this computer's own addresses
    const own = policy.mode === 'internet' ? (this.opts.hostAddresses ?? hostInterfaceAddresses)() : [];
    let firstReason = '';
    for (const address of addresses) {
      const d = decideEgress(policy, bare, address, own);
      if (d.ok) return address;
      firstReason ||= d.reason ?? 'refused';
    }
    this.opts.log?.(`egress refused: ${bare}:${port}: ${firstReason}`);
    const change =
      policy.mode === 'allow' ? ` To let it out, on the host: spritely net set ${this.opts.sprite} ${formatNetworkPolicy(policy)},${bare}`
      : policy.mode === 'none' ? ` To give it a network, on the host: spritely net set ${this.opts.sprite} internet`
      : '';
    const where = net.isIPv6(bare) ? `[${bare}]:${port}` : `${bare}:${port}`;
    throw new Refusal(403, `spritely: ${where} refused: ${firstReason}.${change}`);
  }

  private async tunnel(req: http.IncomingMessage, client: net.Socket, head: Buffer): Promise<void> {
    client.on('error', () => {});
    const m = /^(\[[0-9a-fA-F:.]+\]|[^:\s]+):(\d{1,5})$/.exec(req.url ?? '');
    let address: string;
    try {
      if (!m) throw new Refusal(400, `CONNECT needs host:port, got "${(req.url ?? '').slice(0, 200)}"`);
      address = await this.destination(m[1], Number(m[2]));
    } catch (err) {
      return void refuseRaw(client, err);
    }
    const upstream = net.connect({ host: address, port: Number(m[2]), timeout: CONNECT_TIMEOUT_MS });
    upstream.once('timeout', () => upstream.destroy(new Error(`no answer from ${m[1]}:${m[2]} in ${CONNECT_TIMEOUT_MS / 1000} s`)));
    let connected = false;
    upstream.once('connect', () => {
      connected = true;
      upstream.setTimeout(0);
      client.write('HTTP/1.1 200 Connection established\r\n\r\n');
      if (head.length) upstream.write(head);
      this.count(client, upstream);
      client.pipe(upstream);
      upstream.pipe(client);
    });
    upstream.on('error', (err) => {
      if (!connected && !client.destroyed) refuseRaw(client, new Refusal(502, `spritely: could not connect to ${m[1]}:${m[2]}: ${err.message}`));
      else client.destroy();
    });
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  }

  private async forwardRequest(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    let url: URL;
    let address: string;
    try {
      if (!/^http:\/\//i.test(req.url ?? '')) {
        throw new Refusal(400, `spritely: this is the sprite's egress proxy; send http://… requests or CONNECT host:port (got "${(req.url ?? '').slice(0, 200)}")`);
      }
      url = new URL(req.url!);
      address = await this.destination(url.hostname, Number(url.port || 80));
    } catch (err) {
      return void refuseResponse(res, err);
    }
    const headers: http.OutgoingHttpHeaders = {};
    for (const [k, v] of Object.entries(req.headers)) if (!HOP_BY_HOP.has(k) && v !== undefined) headers[k] = v;
    headers.host = url.host;
    const upstream = http.request({ host: address, port: Number(url.port || 80), method: req.method, path: url.pathname + url.search, headers, agent: false, timeout: CONNECT_TIMEOUT_MS });
    upstream.once('socket', (s) => s.once('connect', () => upstream.setTimeout(0)));
    upstream.once('timeout', () => upstream.destroy(new Error(`no answer from ${url.host}`)));
    upstream.on('response', (up) => {
      const out: http.OutgoingHttpHeaders = {};
      for (const [k, v] of Object.entries(up.headers)) if (!HOP_BY_HOP.has(k) && v !== undefined) out[k] = v;
      res.writeHead(up.statusCode ?? 502, up.statusMessage, out);
      up.on('data', (c: Buffer) => {
        this.bytesIn += c.length;
        this.opts.onActivity?.();
      });
      up.pipe(res);
    });
    upstream.on('error', (err) => {
      if (!res.headersSent) refuseResponse(res, new Refusal(502, `spritely: could not reach ${url.host}: ${err.message}`));
      else res.destroy();
    });
    req.on('data', (c: Buffer) => (this.bytesOut += c.length));
    req.pipe(upstream);
    res.on('close', () => upstream.destroy());
  }

  private count(client: net.Socket, upstream: net.Socket): void {
    client.on('data', (c: Buffer) => {
      this.bytesOut += c.length;
      this.opts.onActivity?.();
    });
    upstream.on('data', (c: Buffer) => {
      this.bytesIn += c.length;
      this.opts.onActivity?.();
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
