/**
 * Local URLs: `http://NAME.localhost:PORT/` (browsers resolve *.localhost to loopback) is a reverse
 * proxy, bound to 127.0.0.1 and [::1], to a port in sprite NAME (8080 unless changed). A request for a
 * sleeping sprite wakes it and is held until the service inside answers; streaming responses and
 * WebSocket upgrades pass through unbuffered. Every request counts as activity and holds the
 * sprite awake while it is in flight.
 */
import http from 'node:http';
import net from 'node:net';
import type { Engine } from '../engine/engine.ts';
import { SpritelyError } from '../errors.ts';
import { spriteNameProblem } from '../names.ts';

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'proxy-connection']);
/** How long a request may wait for a sprite to wake and its service to answer. */
export const WAKE_HOLD_MS = 90_000;
/** After a wake, how long to retry a refused connection while the service comes back. */
const CONNECT_RETRY_MS = 10_000;

/** The sprite a Host header names (`NAME.localhost[:port]`), or null. */
export function spriteFromHost(host: string | undefined): string | null {
  if (!host) return null;
  const m = /^([^.:]+)\.localhost(?::\d+)?$/i.exec(host.trim());
  if (!m) return null;
  const name = m[1].toLowerCase();
  return spriteNameProblem(name) ? null : name;
}

/**
 * The daemon's own browser cookie never reaches a sprite. The UI uses no cookie now (docs/ui.md),
 * but earlier versions left `spritely_session` in browsers, and a guest's page must never see a
 * daemon credential whatever a browser sends: defence in depth.
 */
export const DAEMON_COOKIE = 'spritely_session';

/** A Cookie header without the daemon's cookie; undefined when nothing is left. */
export function withoutDaemonCookie(cookie: string | string[] | undefined): string | undefined {
  const joined = Array.isArray(cookie) ? cookie.join('; ') : cookie;
  if (!joined) return undefined;
  const kept = joined
    .split(';')
    .map((part) => part.trim())
    .filter((part) => part !== '' && part.split('=', 1)[0].trim() !== DAEMON_COOKIE);
  return kept.length ? kept.join('; ') : undefined;
}

/** Request headers for the sprite: hop-by-hop ones and the daemon's cookie removed, X-Forwarded-* set. */
export function forwardHeaders(headers: http.IncomingHttpHeaders, clientIp: string, keepUpgrade = false): http.OutgoingHttpHeaders {
  const connectionTokens = String(headers.connection ?? '')
    .split(',')
    .map((t) => t.trim().toLowerCase())
    .filter(Boolean);
  const out: http.OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(headers)) {
    const key = k.toLowerCase();
    if (v === undefined) continue;
    if (!keepUpgrade && (HOP_BY_HOP.has(key) || connectionTokens.includes(key))) continue;
    if (keepUpgrade && key !== 'connection' && key !== 'upgrade' && (HOP_BY_HOP.has(key) || connectionTokens.includes(key))) continue;
    out[key] = v;
  }
  const cookie = withoutDaemonCookie(headers.cookie);
  if (cookie === undefined) delete out.cookie;
  else out.cookie = cookie;
  const prior = headers['x-forwarded-for'];
  out['x-forwarded-for'] = prior ? `${prior}, ${clientIp}` : clientIp;
  out['x-forwarded-proto'] = 'http';
  out['x-forwarded-host'] = headers.host ?? '';
  return out;
}

/**
 * Splices a client's upgrade (a WebSocket) onto a connection to where it goes: the request line
 * and `headers`, what the client already sent past them, then bytes both ways. Either side ending
 * ends both (and calls `onEnd`); an upstream that fails answers 502.
 */
export function spliceUpgrade(req: http.IncomingMessage, socket: net.Socket, head: Buffer, up: net.Socket, headers: http.OutgoingHttpHeaders, onEnd?: () => void): void {
  up.on('connect', () => {
    let text = `${req.method} ${req.url} HTTP/1.1\r\n`;
    for (const [k, v] of Object.entries(headers)) for (const one of Array.isArray(v) ? v : [v]) text += `${k}: ${one}\r\n`;
    up.write(text + '\r\n');
    if (head.length) up.write(head);
    up.pipe(socket);
    socket.pipe(up);
  });
  let ended = false;
  const done = () => {
    if (!ended) onEnd?.();
    ended = true;
    up.destroy();
    socket.destroy();
  };
  up.on('error', () => {
    if (!socket.destroyed) socket.end('HTTP/1.1 502 Bad Gateway\r\nConnection: close\r\n\r\n');
    done();
  });
  up.on('close', done);
  socket.on('close', done);
}

export function page(status: number, title: string, body: string): { status: number; html: string } {
  const esc = (s: string) => s.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
  return {
    status,
    html: `<!doctype html><meta charset="utf-8"><title>${esc(title)}</title><body style="font:16px system-ui;margin:4em auto;max-width:40em;color:#333"><h1 style="font-weight:600">${esc(title)}</h1><p>${esc(body)}</p><p style="color:#888">Spritely local URL</p>`,
  };
}

/** Remote sprites (vm/hosts/host-url-proxy.ts): `SPRITE.HOST.localhost` is served through HOST's SSH link. */
export interface HostedUrlHandler {
  match(hostHeader: string | undefined): { sprite: string; host: string } | null;
  request(who: { sprite: string; host: string }, req: http.IncomingMessage, res: http.ServerResponse): Promise<void>;
  upgrade(who: { sprite: string; host: string }, req: http.IncomingMessage, socket: net.Socket, head: Buffer): Promise<void>;
}

export class UrlProxy {
  private server: http.Server;
  private v6: net.Server | null = null;
  port = 0;

  constructor(
    private readonly engine: Engine,
    private readonly hosted?: HostedUrlHandler,
  ) {
    this.server = http.createServer({ headersTimeout: 30_000, requestTimeout: 0 }, (req, res) => void this.onRequest(req, res));
    this.server.on('upgrade', (req, socket, head) => void this.onUpgrade(req, socket as net.Socket, head));
    this.server.on('clientError', (_e, socket) => socket.destroy());
  }

  /**
   * Listens on 127.0.0.1 and on [::1] at the same port: browsers try ::1 first for NAME.localhost,
   * and a port of ours left free on ::1 is one another local user could take to read sprites'
   * traffic. Where the host has no IPv6 loopback, 127.0.0.1 alone serves.
   */
  async listen(port: number): Promise<number> {
    await listenOn(this.server, port, '127.0.0.1');
    this.port = (this.server.address() as net.AddressInfo).port;
    const v6 = net.createServer((socket) => this.server.emit('connection', socket));
    try {
      await listenOn(v6, this.port, '::1');
      this.v6 = v6;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EADDRNOTAVAIL' && code !== 'EAFNOSUPPORT') {
        this.server.close();
        throw new Error(`[::1]:${this.port} is taken by another program; local URLs need it on both loopbacks (${code})`);
      }
    }
    return this.port;
  }

  localUrl(name: string): string {
    return `http://${name}.localhost:${this.port}/`;
  }

  /** The local URL of sprite `name` of remote host `host`. */
  hostedUrl(host: string, name: string): string {
    return `http://${name}.${host}.localhost:${this.port}/`;
  }

  /** Resolves the sprite and where to connect, waking it; a page to send instead when that fails. */
  private async route(req: http.IncomingMessage): Promise<{ name: string; target: { host: string; port: number }; woke: boolean } | { status: number; html: string }> {
    const name = spriteFromHost(req.headers.host);
    if (!name) return page(404, 'Not a sprite URL', `Open http://NAME.localhost:${this.port}/ where NAME is one of your sprites.`);
    let woke = false;
    try {
      const state = this.engine.get(name).state;
      if (state === 'stopped' || state === 'crashed') return page(503, `${name} is ${state}`, `Start it with: spritely start ${name}`);
      woke = state === 'sleeping';
      const target = await withTimeout(this.engine.urlTarget(name), WAKE_HOLD_MS, `${name} did not wake within ${WAKE_HOLD_MS / 1000} s`);
      return { name, target, woke };
    } catch (err) {
      const e = err as SpritelyError;
      if (e.code === 'not_found') return page(404, 'No such sprite', `There is no sprite named "${name}". spritely list shows your sprites.`);
      if (e.code === 'timeout') return page(504, `${name} is taking too long to wake`, e.message);
      return page(502, `${name} is not reachable`, e.message);
    }
  }

  private async onRequest(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const remote = this.hosted?.match(req.headers.host);
    if (remote) return this.hosted!.request(remote, req, res);
    const r = await this.route(req);
    if ('html' in r) return sendPage(res, r);
    const release = this.engine.hold(r.name);
    res.on('close', release);
    const deadline = Date.now() + (r.woke ? CONNECT_RETRY_MS : 0);
    // a service that comes back with its machine answers within milliseconds of the wake: retry
    // soon, then less often (20 ms, 40, 80, … 200)
    let delay = 20;
    const attempt = () => {
      const up = http.request({ host: r.target.host, port: r.target.port, method: req.method, path: req.url, headers: forwardHeaders(req.headers, req.socket.remoteAddress ?? '127.0.0.1'), agent: false });
      up.on('response', (upRes) => {
        const headers = { ...upRes.headers };
        for (const h of Object.keys(headers)) if (HOP_BY_HOP.has(h) && h !== 'transfer-encoding') delete headers[h];
        res.writeHead(upRes.statusCode ?? 502, upRes.statusMessage, headers);
        res.flushHeaders();
        upRes.pipe(res);
      });
      up.on('error', (err: NodeJS.ErrnoException) => {
        if (res.headersSent) return res.destroy();
        if ((err.code === 'ECONNREFUSED' || err.code === 'ECONNRESET') && Date.now() < deadline && !req.readableEnded) {
          setTimeout(attempt, delay);
          delay = Math.min(delay * 2, 200);
          return;
        }
        sendPage(res, page(502, `Nothing answers on port ${this.engine.get(r.name).urlPort} in ${r.name}`, `Start a web server in the sprite on that port (for example: python3 -m http.server ${this.engine.get(r.name).urlPort}), or point the URL at another port with: spritely url ${r.name} --port N`));
      });
      req.pipe(up);
    };
    attempt();
  }

  private async onUpgrade(req: http.IncomingMessage, socket: net.Socket, head: Buffer): Promise<void> {
    socket.on('error', () => {});
    const remote = this.hosted?.match(req.headers.host);
    if (remote) return this.hosted!.upgrade(remote, req, socket, head);
    const r = await this.route(req);
    if ('html' in r) {
      socket.end(`HTTP/1.1 ${r.status} ${http.STATUS_CODES[r.status]}\r\nContent-Type: text/html; charset=utf-8\r\nConnection: close\r\n\r\n${r.html}`);
      return;
    }
    const release = this.engine.hold(r.name);
    spliceUpgrade(req, socket, head, net.connect(r.target.port, r.target.host), forwardHeaders(req.headers, req.socket.remoteAddress ?? '127.0.0.1', true), release);
  }

  async close(): Promise<void> {
    this.v6?.close();
    await new Promise<void>((r) => {
      this.server.close(() => r());
      this.server.closeAllConnections();
    });
  }
}

function sendPage(res: http.ServerResponse, p: { status: number; html: string }): void {
  if (res.headersSent) return void res.destroy();
  res.writeHead(p.status, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' });
  res.end(p.html);
}

function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new SpritelyError('timeout', message)), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e) => {
        clearTimeout(t);
        reject(e);
      },
    );
  });
}

function listenOn(server: net.Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}
