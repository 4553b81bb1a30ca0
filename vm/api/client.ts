/**
 * The Node client of the daemon API (used by the CLI, tests, benchmarks and the MCP server). It
 * speaks over the owner-only unix socket; its types come from the contract.
 */
import http from 'node:http';
import WebSocket from 'ws';
import { isErrorCode, SpritelyError } from '../errors.ts';
import { methods, routeFor, type MethodInput, type MethodName, type MethodOutput } from './contract.ts';

export class ApiClient {
  /**
   * `host`: a remote host of this daemon. Every path `/v1/X` then becomes `/v1/hosts/HOST/X`, which
   * the daemon passes to that host's daemon (docs/hosts.md) — the same methods and streams.
   */
  constructor(
    readonly socketPath: string,
    readonly host: string | null = null,
  ) {}

  /** This daemon's client for remote host `host` (null: this computer). */
  forHost(host: string | null): ApiClient {
    return new ApiClient(this.socketPath, host);
  }

  private hosted(path: string): string {
    return this.host ? path.replace(/^\/v1\//, `/v1/hosts/${encodeURIComponent(this.host)}/`) : path;
  }

  async call<M extends MethodName>(method: M, input: MethodInput<M> = {} as MethodInput<M>, opts: { timeoutMs?: number } = {}): Promise<MethodOutput<M>> {
    const def = methods[method];
    const routed = routeFor(def, input as Record<string, unknown>);
    const { rest } = routed;
    const path = this.hosted(routed.path);
    const body = def.http === 'POST' ? JSON.stringify(rest) : undefined;
    const { status, text } = await this.request(def.http, path, body, opts.timeoutMs);
    let parsed: any;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      throw new SpritelyError('internal', `The daemon answered ${status} with non-JSON: ${text.slice(0, 200)}`);
    }
    if (status >= 400) {
      const code = parsed?.error?.code;
      throw new SpritelyError(isErrorCode(code) ? code : 'internal', parsed?.error?.message ?? `HTTP ${status}`, parsed?.error?.details);
    }
    return parsed as MethodOutput<M>;
  }

  /** A raw request (tests use it to send what the typed client never would). */
  request(method: string, path: string, body?: string | Buffer, timeoutMs?: number, headers: Record<string, string> = {}): Promise<{ status: number; text: string }> {
    return new Promise((resolve, reject) => {
      const req = http.request(
        {
          socketPath: this.socketPath,
          // Not the global agent: Node's default one drops sockets idle for 5 s, and a create may
          // take minutes the first time (image build, golden boot).
          agent: false,
          path,
          method,
          headers: { ...(body !== undefined ? { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) } : {}), ...headers },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
          res.on('error', reject);
        },
      );
      if (timeoutMs) req.setTimeout(timeoutMs, () => req.destroy(new Error(`the daemon did not answer ${method} ${path} in ${timeoutMs} ms`)));
      req.on('error', reject);
      req.end(body);
    });
  }

  /** Opens one of the daemon's WebSocket streams (`/v1/events`, `/v1/sprites/NAME/exec`, …). */
  socket(path: string, query: Record<string, string | number | undefined> = {}): WebSocket {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined) q.set(k, String(v));
    const qs = q.toString();
    const ws = new WebSocket(`ws+unix://${this.socketPath}:${this.hosted(path)}${qs ? `?${qs}` : ''}`, { perMessageDeflate: false });
    // A refused upgrade carries the daemon's {error} like any answer: surface its sentence, not "Unexpected server response".
    ws.on('unexpected-response', (_req, res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.length < 64 && chunks.push(c));
      res.on('end', () => {
        let err: Error = new Error(`the daemon refused the stream ${path} (HTTP ${res.statusCode})`);
        try {
          const e = JSON.parse(Buffer.concat(chunks).toString('utf8'))?.error;
          if (typeof e?.message === 'string') err = new SpritelyError(isErrorCode(e.code) ? e.code : 'internal', e.message);
        } catch {
          /* not JSON */
        }
        ws.emit('error', err);
        ws.terminate();
      });
    });
    return ws;
  }
}
