/**
 * The renderer's only way to the daemon: typed HTTP calls, one events WebSocket that reconnects
 * (with backoff, and a fresh `hello` each time), and terminal sockets. URLs are relative to the
 * page, so the same code runs in Electron and in a browser: both load the UI from the daemon's
 * loopback origin, and its HttpOnly cookie authorizes every request. Types come from the
 * daemon's contract (type-only imports: no zod in the bundle); the routes themselves are baked in
 * at build time from the same contract (see vite.config.ts).
 */
import type { DaemonEvent, MethodInput, MethodName, MethodOutput, Sprite, TerminalServerMessage } from '../../vm/api/contract.ts';

export type { DaemonEvent, MethodInput, MethodName, MethodOutput, Sprite, TerminalServerMessage };

export interface Route {
  http: 'GET' | 'POST' | 'DELETE';
  path: string;
}
/** Route of every API method the daemon knows, by method name (a plain object, no zod). */
export type RouteTable = Record<string, Route>;

/** An error the daemon (or the connection to it) reported; `message` is written for a person. */
export class ApiError extends Error {
  override name = 'ApiError';
  constructor(
    readonly code: string,
    message: string,
    readonly status = 0,
  ) {
    super(message);
  }
}

export type ConnectionState = 'connecting' | 'online' | 'offline';

export interface EventsHandlers {
  onEvent(e: DaemonEvent): void;
  onState(s: ConnectionState, detail?: string): void;
}

export interface TerminalSocketHandlers {
  onOpen(): void;
  onData(bytes: Uint8Array): void;
  onMessage(m: TerminalServerMessage): void;
  /** The socket closed; `clean` when the server ended it on purpose (after exit or error). */
  onClose(info: { code: number; reason: string }): void;
}

export interface TerminalSocket {
  send(bytes: Uint8Array): void;
  resize(cols: number, rows: number): void;
  ack(bytes: number): void;
  /** Hangs the shell up (ends the session). */
  hangUp(): void;
  /** Closes only this socket; the session stays and can be re-attached. */
  detach(): void;
}

export interface TerminalOpenOptions {
  cols: number;
  rows: number;
  session?: string | null;
}

/** What the UI needs from the daemon. The real one is `WebTransport`; tests use a fake. */
export interface Transport {
  call<M extends MethodName>(method: M, input?: MethodInput<M>): Promise<MethodOutput<M>>;
  /** Whether the daemon's contract has this method (later capabilities light up by this). */
  has(method: string): boolean;
  /** Opens the events stream; returns a function that closes it for good. */
  subscribe(handlers: EventsHandlers): () => void;
  openTerminal(sprite: string, opts: TerminalOpenOptions, handlers: TerminalSocketHandlers): TerminalSocket;
}

/** Fills `:name` placeholders from the input; returns the path and the remaining fields. */
export function buildRequest(route: Route, input: Record<string, unknown>): { url: string; init: { method: string; headers?: Record<string, string>; body?: string } } {
  const rest: Record<string, unknown> = { ...input };
  const path = route.path.replace(/:([a-zA-Z]+)/g, (_, key: string) => {
    const v = rest[key];
    delete rest[key];
    return encodeURIComponent(String(v));
  });
  if (route.http === 'POST') return { url: path, init: { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(rest) } };
  return { url: path, init: { method: route.http } };
}

/** Turns a failed response into an ApiError with the daemon's own words when it gave some. */
export function errorFromResponse(status: number, text: string): ApiError {
  try {
    const body = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
    if (body?.error && typeof body.error.message === 'string') return new ApiError(typeof body.error.code === 'string' ? body.error.code : 'internal', body.error.message, status);
  } catch {
    /* not JSON */
  }
  if (status === 401) return new ApiError('unauthenticated', 'This window is not signed in to the Spritely daemon. Run `spritely ui` for a fresh link.', status);
  if (status === 403) return new ApiError('permission_denied', 'The Spritely daemon refused this request.', status);
  return new ApiError('internal', `The daemon answered ${status}${text ? `: ${text.slice(0, 200)}` : ''}.`, status);
}

/** Reconnect delay for the n-th attempt in a row (0-based): 250 ms doubling to 5 s, ±20 % jitter. */
export function backoffMs(attempt: number, random = Math.random): number {
  const base = Math.min(5000, 250 * 2 ** Math.min(attempt, 10));
  return Math.round(base * (0.8 + 0.4 * random()));
}

/** Builds a ws:// URL on the page's own origin. */
export function wsUrl(loc: { protocol: string; host: string }, path: string, query: Record<string, string | number | null | undefined> = {}): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const qs = q.toString();
  return `${loc.protocol === 'https:' ? 'wss' : 'ws'}://${loc.host}${path}${qs ? `?${qs}` : ''}`;
}

type WebSocketCtor = new (url: string) => WebSocket;

export interface WebTransportOptions {
  routes: RouteTable;
  fetch?: typeof fetch;
  WebSocket?: WebSocketCtor;
  location?: { protocol: string; host: string };
  setTimeout?: (fn: () => void, ms: number) => unknown;
  clearTimeout?: (t: unknown) => void;
}

export class WebTransport implements Transport {
  private readonly fetchFn: typeof fetch;
  private readonly WS: WebSocketCtor;
  private readonly loc: { protocol: string; host: string };
  private readonly setT: (fn: () => void, ms: number) => unknown;
  private readonly clearT: (t: unknown) => void;

  constructor(private readonly opts: WebTransportOptions) {
    this.fetchFn = opts.fetch ?? ((...a) => globalThis.fetch(...a));
    this.WS = opts.WebSocket ?? globalThis.WebSocket;
    this.loc = opts.location ?? globalThis.location;
    this.setT = opts.setTimeout ?? ((fn, ms) => globalThis.setTimeout(fn, ms));
    this.clearT = opts.clearTimeout ?? ((t) => globalThis.clearTimeout(t as number));
  }

  has(method: string): boolean {
    return Object.hasOwn(this.opts.routes, method);
  }

  async call<M extends MethodName>(method: M, input?: MethodInput<M>): Promise<MethodOutput<M>> {
    const route = this.opts.routes[method];
    if (!route) throw new ApiError('not_found', `This daemon has no "${method}" method.`);
    const { url, init } = buildRequest(route, (input ?? {}) as Record<string, unknown>);
    let res: Response;
    try {
      res = await this.fetchFn(url, { ...init, credentials: 'same-origin', cache: 'no-store' });
    } catch (err) {
      throw new ApiError('unavailable', `Cannot reach the Spritely daemon (${(err as Error).message}). Is it running?`);
    }
    const text = await res.text();
    if (!res.ok) throw errorFromResponse(res.status, text);
    try {
      return (text ? JSON.parse(text) : null) as MethodOutput<M>;
    } catch {
      throw new ApiError('internal', `The daemon sent something that is not JSON: ${text.slice(0, 120)}`);
    }
  }

  subscribe(handlers: EventsHandlers): () => void {
    let ws: WebSocket | null = null;
    let timer: unknown = null;
    let attempt = 0;
    let stopped = false;
    const connect = () => {
      timer = null;
      if (stopped) return;
      handlers.onState('connecting');
      const sock = new this.WS(wsUrl(this.loc, '/v1/events'));
      ws = sock;
      let hello = false;
      sock.onmessage = (m) => {
        let e: DaemonEvent;
        try {
          e = JSON.parse(String(m.data)) as DaemonEvent;
        } catch {
          return;
        }
        if (e.type === 'hello') {
          hello = true;
          attempt = 0;
          handlers.onState('online');
        }
        handlers.onEvent(e);
      };
      sock.onclose = (ev) => {
        if (ws !== sock) return;
        ws = null;
        if (stopped) return;
        const delay = backoffMs(attempt++);
        handlers.onState('offline', hello ? 'The connection to the Spritely daemon was lost; reconnecting…' : `Cannot reach the Spritely daemon${ev.reason ? ` (${ev.reason})` : ''}; retrying…`);
        timer = this.setT(connect, delay);
      };
      sock.onerror = () => {};
    };
    connect();
    return () => {
      stopped = true;
      if (timer !== null) this.clearT(timer);
      const s = ws;
      ws = null;
      s?.close();
    };
  }

  openTerminal(sprite: string, opts: TerminalOpenOptions, handlers: TerminalSocketHandlers): TerminalSocket {
    const url = wsUrl(this.loc, `/v1/sprites/${encodeURIComponent(sprite)}/terminal`, { cols: opts.cols, rows: opts.rows, session: opts.session });
    const ws = new this.WS(url);
    ws.binaryType = 'arraybuffer';
    const queue: (string | Uint8Array)[] = [];
    const send = (m: string | Uint8Array) => {
      if (ws.readyState === 1) ws.send(m);
      else if (ws.readyState === 0) queue.push(m);
    };
    ws.onopen = () => {
      for (const m of queue.splice(0)) ws.send(m);
      handlers.onOpen();
    };
    ws.onmessage = (m) => {
      if (typeof m.data === 'string') {
        try {
          handlers.onMessage(JSON.parse(m.data) as TerminalServerMessage);
        } catch {
          /* ignore malformed */
        }
      } else handlers.onData(new Uint8Array(m.data as ArrayBuffer));
    };
    ws.onclose = (ev) => handlers.onClose({ code: ev.code, reason: ev.reason });
    ws.onerror = () => {};
    return {
      send: (bytes) => send(bytes),
      resize: (cols, rows) => send(JSON.stringify({ type: 'resize', cols, rows })),
      ack: (bytes) => send(JSON.stringify({ type: 'ack', bytes })),
      hangUp: () => {
        send(JSON.stringify({ type: 'close' }));
        ws.close(1000);
      },
      detach: () => ws.close(1000),
    };
  }
}
