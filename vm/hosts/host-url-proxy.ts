/**
 * A remote sprite's local URL, served on this computer: `http://SPRITE.HOST.localhost:PORT/` on the
 * local URL proxy goes through HOST's SSH connection to the server's own URL proxy (its loopback
 * port, forwarded to a socket in this data dir), with the Host it expects
 * (`SPRITE.localhost:ITS_PORT`). The server's proxy does the rest as for its own browser: wakes a
 * sleeping sprite, holds the request, pipes WebSockets. No port is opened on the server.
 */
import http from 'node:http';
import net from 'node:net';
import { forwardHeaders, page, spliceUpgrade } from '../net/url-proxy.ts';
import type { HostLink } from './host-link.ts';
import { READY_WAIT_MS } from './host-passthrough.ts';
import { hostedSpriteFromHost } from './host-route.ts';

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'upgrade', 'proxy-connection']);

type Target = { socketPath: string; hostHeader: string };

export class HostedUrls {
  constructor(private readonly hosts: { link(name: string): HostLink }) {}

  /** The remote sprite a Host header names (`SPRITE.HOST.localhost[:port]`), or null. */
  match(hostHeader: string | undefined): { sprite: string; host: string } | null {
    return hostedSpriteFromHost(hostHeader);
  }

  private async target(sprite: string, host: string): Promise<Target | { status: number; html: string }> {
    let link;
    try {
      link = this.hosts.link(host);
    } catch {
      return page(404, 'No such host', `There is no host named "${host}". spritely host list shows your hosts.`);
    }
    try {
      await link.ready(READY_WAIT_MS);
    } catch (err) {
      return page(502, `Host ${host} is not reachable`, (err as Error).message);
    }
    const t = link.urlTarget(sprite);
    return t ?? page(502, `Host ${host} serves no local URLs`, `The Spritely daemon on ${host} has no URL proxy port open.`);
  }

  async request(who: { sprite: string; host: string }, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const t = await this.target(who.sprite, who.host);
    if ('html' in t) return send(res, t);
    const headers = { ...forwardHeaders(req.headers, req.socket.remoteAddress ?? '127.0.0.1'), host: t.hostHeader };
    const up = http.request({ socketPath: t.socketPath, method: req.method, path: req.url, headers, agent: false });
    up.on('response', (upRes) => {
      const out = { ...upRes.headers };
      for (const h of Object.keys(out)) if (HOP_BY_HOP.has(h)) delete out[h];
      res.writeHead(upRes.statusCode ?? 502, upRes.statusMessage, out);
      res.flushHeaders();
      upRes.pipe(res);
    });
    up.on('error', (err) => {
      if (res.headersSent) return void res.destroy();
      send(res, page(502, `${who.sprite} on ${who.host} is not reachable`, `The connection to host ${who.host} failed (${err.message}). It reconnects on its own; try again.`));
    });
    req.pipe(up);
  }

  async upgrade(who: { sprite: string; host: string }, req: http.IncomingMessage, socket: net.Socket, head: Buffer): Promise<void> {
    socket.on('error', () => {});
    const t = await this.target(who.sprite, who.host);
    if ('html' in t) {
      socket.end(`HTTP/1.1 ${t.status} ${http.STATUS_CODES[t.status]}\r\nContent-Type: text/html; charset=utf-8\r\nConnection: close\r\n\r\n${t.html}`);
      return;
    }
    spliceUpgrade(req, socket, head, net.connect(t.socketPath), { ...forwardHeaders(req.headers, req.socket.remoteAddress ?? '127.0.0.1', true), host: t.hostHeader });
  }
}

function send(res: http.ServerResponse, p: { status: number; html: string }): void {
  if (res.headersSent) return void res.destroy();
  res.writeHead(p.status, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' });
  res.end(p.html);
}
