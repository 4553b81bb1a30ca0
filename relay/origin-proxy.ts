/**
 * The daemon's end of one tunneled request: forwards an HTTP/2 stream from the relay to the sprite's
 * app over plain HTTP/1.1 — or, for an extended CONNECT (RFC 8441), performs the HTTP/1.1 upgrade
 * (WebSocket) against the app and splices the bytes. Both directions stream with backpressure, so
 * SSE and downloads pass unbuffered and a slow phone slows the app rather than filling memory.
 */
import http from 'node:http';
import http2, { type IncomingHttpHeaders, type OutgoingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import { PassThrough } from 'node:stream';
import { Pool, type Dispatcher } from 'undici';
import { endToEndHeaders } from './forward-headers.ts';
import { pipeH2, PUMP_BUFFER } from './h2-pipe.ts';
import { ERROR_HEADER, UPGRADE_STATUS_HEADER, type TunnelError } from './tunnel-protocol.ts';

export interface OriginTarget {
  host: string;
  port: number;
}

const NO_BODY_STATUS = new Set([204, 304]);
const INTERNAL_ERROR = http2.constants.NGHTTP2_INTERNAL_ERROR;

/** Answers a stream with the daemon-side error the relay turns into its 502 page. */
export function respondTunnelError(stream: ServerHttp2Stream, error: TunnelError, status = 502): void {
  if (stream.destroyed || stream.closed) return;
  if (stream.headersSent) {
    stream.close(INTERNAL_ERROR);
    return;
  }
  stream.respond({ ':status': status, [ERROR_HEADER]: error, 'content-length': '0' }, { endStream: true });
}

function originHeaders(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const out = endToEndHeaders(headers, DROP_FOR_ORIGIN, true);
  out.host = headers[':authority'];
  return out;
}

function answerHeaders(status: number, headers: http.IncomingHttpHeaders): OutgoingHttpHeaders {
  const out = endToEndHeaders(headers, undefined, true);
  out[':status'] = status;
  return out;
}

/**
 * The daemon's connections to sprites' apps: one undici `Pool` (keep-alive connections) per app
 * address. undici's low-level `dispatch` costs ~30% less CPU per request than `http.request` +
 * `http.Agent` here (bench/relay-forwarding.ts). The pools are ours, not undici's `Agent`: the Agent
 * drops a pool once its last connection closes, so an app that closes every connection (Python's
 * `http.server`, HTTP/1.0) paid a new pool per request (+130 µs). A pool nobody used for `idleMs` is
 * closed. No timeouts of undici's own: the relay's hold timeout bounds a slow answer, and an SSE
 * stream may stay quiet as long as it likes.
 */
export class OriginPools {
  private readonly pools = new Map<string, { pool: Pool; lastUsed: number }>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(private readonly idleMs = 60_000) {
    this.sweeper = setInterval(() => this.closeIdle(Date.now()), idleMs);
    this.sweeper.unref();
  }

  get size(): number {
    return this.pools.size;
  }

  poolFor(target: OriginTarget): Pool {
    const key = `${target.host}|${target.port}`;
    let entry = this.pools.get(key);
    if (!entry) {
      const host = target.host.includes(':') ? `[${target.host}]` : target.host;
      entry = { pool: new Pool(`http://${host}:${target.port}`, { connections: 256, headersTimeout: 0, bodyTimeout: 0, keepAliveTimeout: 4_000 }), lastUsed: 0 };
      this.pools.set(key, entry);
    }
    entry.lastUsed = Date.now();
    return entry.pool;
  }

  /** Closes pools idle for `idleMs` with nothing in flight (a long SSE stream keeps its pool). */
  closeIdle(now: number): void {
    for (const [key, entry] of this.pools) {
      const stats = entry.pool.stats;
      if (now - entry.lastUsed < this.idleMs || stats.running > 0 || stats.pending > 0) continue;
      this.pools.delete(key);
      void entry.pool.close().catch(() => undefined);
    }
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    const pools = [...this.pools.values()].map((entry) => entry.pool);
    this.pools.clear();
    await Promise.all(pools.map((pool) => pool.destroy().catch(() => undefined)));
  }
}

/** Not forwarded: undici refuses `expect`, and the relay has already answered the client's 100-continue. */
const DROP_FOR_ORIGIN: ReadonlySet<string> = new Set(['expect']);

/** Response headers from undici's raw [name, value, …] buffers, minus hop-by-hop ones. */
function rawAnswerHeaders(status: number, raw: Buffer[] | string[] | null): OutgoingHttpHeaders {
  const parsed: http.IncomingHttpHeaders = {};
  if (raw) {
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const name = raw[i].toString().toLowerCase();
      const value = raw[i + 1].toString();
      const prior = parsed[name];
      if (prior === undefined) parsed[name] = name === 'set-cookie' ? [value] : value;
      else if (Array.isArray(prior)) prior.push(value);
      else parsed[name] = `${prior}, ${value}`;
    }
  }
  return answerHeaders(status, parsed);
}

/**
 * Forwards one plain request over the app's pool (see `OriginPools`). Bodies stream both ways with
 * backpressure; a stream the relay cancels aborts the app request, and an upload cut off mid-way
 * reaches the app as an aborted request, never as a complete one.
 */
export function proxyRequest(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, target: OriginTarget, pools: OriginPools): void {
  const method = (headers[':method'] ?? 'GET') as Dispatcher.HttpMethod;
  let body: PassThrough | null = null;
  if (!stream.endAfterHeaders && !stream.readableEnded) {
    body = new PassThrough({ highWaterMark: PUMP_BUFFER });
    pipeH2(stream, body);
  }
  let abort: ((reason?: Error) => void) | null = null;
  let answered = false;
  let finished = false;
  const handler: Dispatcher.DispatchHandler = {
    onConnect(abortRequest) {
      if (stream.destroyed || stream.closed) abortRequest(new Error('the relay cancelled the request'));
      else abort = abortRequest;
    },
    onHeaders(status, raw, resume) {
      if (status < 200) return true; // 1xx: the final answer follows
      if (stream.destroyed || stream.closed) return false;
      const empty = method === 'HEAD' || NO_BODY_STATUS.has(status);
      try {
        stream.respond(rawAnswerHeaders(status, raw), { endStream: empty });
      } catch {
        stream.close(INTERNAL_ERROR);
        return false;
      }
      answered = true;
      stream.on('drain', () => resume());
      return true;
    },
    onData(chunk) {
      if (stream.destroyed || stream.writableEnded) return true;
      stream.write(chunk);
      return stream.writableLength <= PUMP_BUFFER;
    },
    onComplete() {
      finished = true;
      if (!stream.destroyed && !stream.writableEnded) stream.end();
    },
    onError() {
      finished = true;
      body?.destroy();
      if (!answered) respondTunnelError(stream, 'app-down');
      else if (!stream.destroyed) stream.close(INTERNAL_ERROR);
    },
  };
  stream.once('close', () => {
    if (!finished) abort?.(new Error('the relay cancelled the request'));
  });
  try {
    pools.poolFor(target).dispatch(
      { path: headers[':path'] ?? '/', method, headers: originHeaders(headers) as Record<string, string | string[]>, body },
      handler,
    );
  } catch {
    // undici refused the request itself (a header it will not send): the app never saw it.
    finished = true;
    body?.destroy();
    respondTunnelError(stream, 'app-down');
  }
}

/** Forwards an extended CONNECT as an HTTP/1.1 upgrade to the app and splices the two. */
export function proxyUpgrade(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, target: OriginTarget): void {
  const out = originHeaders(headers);
  out.connection = 'Upgrade';
  out.upgrade = headers[':protocol'];
  const request = http.request({ host: target.host, port: target.port, method: 'GET', path: headers[':path'], headers: out, agent: false });
  request.on('upgrade', (response, socket, head) => {
    socket.on('error', () => stream.close(INTERNAL_ERROR));
    if (stream.destroyed || stream.closed) {
      socket.destroy();
      return;
    }
    socket.setNoDelay(true);
    const answer = answerHeaders(200, response.headers);
    answer[UPGRADE_STATUS_HEADER] = '101';
    stream.respond(answer);
    if (head.length > 0) stream.write(head);
    socket.pipe(stream);
    pipeH2(stream, socket);
    stream.on('close', () => socket.destroy());
  });
  request.on('response', (response) => {
    // The app declined the upgrade: pass its answer back as it is.
    if (stream.destroyed || stream.closed) {
      response.destroy();
      return;
    }
    stream.respond(answerHeaders(response.statusCode ?? 502, response.headers));
    response.pipe(stream);
  });
  request.on('error', () => respondTunnelError(stream, 'app-down'));
  stream.on('close', () => request.destroy());
  request.end();
}
