/**
 * The egress proxy: a sprite's only way out. QEMU runs the guest's network restricted and forwards
 * the guest's connections to 10.0.2.100:3128 onto this server's unix socket (one per sprite, so the
 * socket says which sprite is asking). It speaks plain HTTP proxying: CONNECT host:port for TLS and
 * anything else, absolute-form requests for http://. Every destination is parsed, resolved on the
 * host and decided (egress-decision.ts) before one byte leaves, and the connection goes to exactly
 * the address decided; a refusal is a 403 whose text says why and how to change it, so the person
 * or agent in the guest can act on it. Guest-supplied text reaches logs and messages only through
 * printable().
 */
import dns from 'node:dns';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { hostPart, parseRange, type Address, type Range } from './address.ts';
import { decideEgress, parseTarget, refuseBeforeLookup, type EgressDecision } from './egress-decision.ts';
import { formatNetworkPolicy, type NetworkPolicy } from './egress-policy.ts';
import { hostNetworks, type HostNetwork } from './host-networks.ts';
import { printable } from './printable.ts';

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
  maxConnections?: number;
}

const CONNECT_TIMEOUT_MS = 15_000;
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'proxy-authenticate', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

/**
 * The system resolver, asked for the absolute name (`name.`): no search domain is appended and
 * the hosts file does not answer, so what comes back is what DNS says about that exact name.
 */
async function systemLookup(name: string): Promise<string[]> {
  const found = await dns.promises.lookup(`${name}.`, { all: true, verbatim: true });
  return found.map((f) => f.address);
}

/** Reads ADDRESS/BITS (or single addresses) from text the user wrote; bad ones are reported and dropped. */
export function readTreatAsPublic(entries: string[], log?: (line: string) => void): Range[] {
  const out: Range[] = [];
  for (const raw of entries.map((e) => e.trim()).filter(Boolean)) {
    const r = parseRange(raw.includes('/') ? raw : `${raw}/${raw.includes(':') ? 128 : 32}`);
    if (r.ok) out.push(r.value);
    else log?.(`egress: ignoring "${printable(raw)}" in SPRITELY_EGRESS_TREAT_AS_PUBLIC: ${r.problem}`);
  }
  return out;
}

class Refusal extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

export class EgressProxy {
  private readonly server: http.Server;
  private readonly sockets = new Set<net.Socket>();
  private readonly treatAsPublic: Range[];
  bytesOut = 0;
  bytesIn = 0;

  constructor(private readonly opts: EgressProxyOptions) {
    this.treatAsPublic = readTreatAsPublic(opts.treatAsPublic ?? (process.env.SPRITELY_EGRESS_TREAT_AS_PUBLIC ?? '').split(','), opts.log);
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

  /** Resolves, checks and returns the one address to connect to, or throws a Refusal. */
  private async destination(host: string, port: number): Promise<Address> {
    const policy = this.opts.policy();
    const shown = printable(host, 200);
    const where = `${shown}:${port}`;
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Refusal(400, `spritely: ${where} refused: ${port} is not a port (1-65535).`);
    const target = parseTarget(host);
    if (target.kind === 'invalid') throw new Refusal(400, `spritely: ${where} refused: ${printable(target.problem)}.`);
    let decision: EgressDecision;
    if (target.kind === 'address') decision = this.decide(policy, null, [target.address.text], port);
    else {
      // refused by name alone: no DNS query leaves for a name the policy never lets out
      decision = refuseBeforeLookup(policy, target.name) ?? this.decide(policy, target.name, await this.resolve(target.name), port);
    }
    if (decision.ok) return decision.address;
    if (decision.kind === 'invalid') throw new Refusal(400, `spritely: ${where} refused: ${printable(decision.reason)}.`);
    this.opts.log?.(`egress refused: ${where}: ${printable(decision.reason)}`);
    const change =
      policy.mode === 'allow' && decision.allowEntry ? ` To let it out, on the host: spritely net set ${this.opts.sprite} ${formatNetworkPolicy(policy)},${decision.allowEntry}`
      : policy.mode === 'none' ? ` To give it a network, on the host: spritely net set ${this.opts.sprite} internet`
      : '';
    throw new Refusal(403, `spritely: ${where} refused: ${printable(decision.reason)}.${change}`);
  }

  private decide(policy: NetworkPolicy, name: string | null, candidates: string[], port: number): EgressDecision {
    return decideEgress({ policy, name, candidates, port, host: (this.opts.hostNetworks ?? hostNetworks)(), treatAsPublic: this.treatAsPublic });
  }

  private async resolve(name: string): Promise<string[]> {
    try {
      return await (this.opts.lookup ?? systemLookup)(name);
    } catch (err) {
      throw new Refusal(502, `spritely: could not resolve ${name} (${printable(String((err as NodeJS.ErrnoException).code ?? (err as Error).message))})`);
    }
  }

  private async tunnel(req: http.IncomingMessage, client: net.Socket, head: Buffer): Promise<void> {
    client.on('error', () => {});
    const m = /^(\[[^\]\s]*\]|[^:\s[\]]+):(\d{1,5})$/.exec(req.url ?? '');
    let address: Address;
    try {
      if (!m) throw new Refusal(400, `spritely: CONNECT needs host:port, got "${printable(req.url ?? '', 200)}"`);
      address = await this.destination(m[1], Number(m[2]));
    } catch (err) {
      return void refuseRaw(client, err);
    }
    const upstream = net.connect({ host: address.text, port: Number(m[2]), timeout: CONNECT_TIMEOUT_MS });
    const shown = `${printable(m[1], 200)}:${m[2]}`;
    upstream.once('timeout', () => upstream.destroy(new Error(`no answer from ${shown} (${hostPart(address)}) in ${CONNECT_TIMEOUT_MS / 1000} s`)));
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
      if (!connected && !client.destroyed) refuseRaw(client, new Refusal(502, `spritely: could not connect to ${shown}: ${err.message}`));
      else client.destroy();
    });
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  }

  private async forwardRequest(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    let url: URL;
    let address: Address;
    try {
      if (!/^http:\/\//i.test(req.url ?? '')) {
        throw new Refusal(400, `spritely: this is the sprite's egress proxy; send http://… requests or CONNECT host:port (got "${printable(req.url ?? '', 200)}")`);
      }
      if (!URL.canParse(req.url!)) throw new Refusal(400, `spritely: "${printable(req.url!, 200)}" is not a URL`);
      url = new URL(req.url!);
      // WHATWG URL parsing reinterprets some spellings (http://010.231.077.001/ is octal, a
      // different address): decide on what the guest wrote as well, as CONNECT does.
      address = await this.destination(url.hostname, Number(url.port || 80));
      const written = writtenHost(req.url!);
      if (written !== url.hostname) await this.destination(written, Number(url.port || 80));
    } catch (err) {
      return void refuseResponse(res, err);
    }
    const headers: http.OutgoingHttpHeaders = {};
    for (const [k, v] of Object.entries(req.headers)) if (!HOP_BY_HOP.has(k) && v !== undefined) headers[k] = v;
    headers.host = url.host;
    const upstream = http.request({ host: address.text, port: Number(url.port || 80), method: req.method, path: url.pathname + url.search, headers, agent: false, timeout: CONNECT_TIMEOUT_MS });
    upstream.once('socket', (s) => s.once('connect', () => upstream.setTimeout(0)));
    upstream.once('timeout', () => upstream.destroy(new Error(`no answer from ${printable(url.host)}`)));
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
      if (!res.headersSent) refuseResponse(res, new Refusal(502, `spritely: could not reach ${printable(url.host)}: ${err.message}`));
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

/** The host of an absolute-form request target as the guest wrote it (lower-case, brackets kept). */
export function writtenHost(target: string): string {
  const m = /^http:\/\/(?:[^@/?#]*@)?(\[[^\]/?#]*\]|[^:/?#]*)/i.exec(target);
  return (m?.[1] ?? '').toLowerCase();
}
