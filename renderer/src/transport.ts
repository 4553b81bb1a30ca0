/**
 * The renderer's only way to the daemon: typed HTTP calls, one events WebSocket that reconnects
 * (with backoff, and a fresh `hello` each time), and terminal sockets. URLs are relative to the
 * page, so the same code runs in Electron and in a browser: both load the UI from the daemon's
 * loopback origin. Every request carries the token of the browser login (daemon-auth.ts) —
 * explicitly, never a cookie — and only after the daemon proved its identity since the last
 * connection loss: a squatter on the port after a restart is shown as such and sent nothing.
 * Types come from the daemon's contract (type-only imports: no zod in the bundle); the routes
 * themselves are baked in at build time from the same contract (see vite.config.ts).
 */
import type { DaemonEvent, EventMessage, HostStatus, MethodInput, MethodName, MethodOutput, Sprite, TerminalServerMessage } from '../../vm/api/contract.ts';
import { CLOSE_UNAUTHENTICATED, TOKEN_SUBPROTOCOL_PREFIX, UI_SUBPROTOCOL } from '../../vm/api/ui-protocol.ts';
import { AuthError, DaemonAuth, type TokenSource } from './daemon-auth.ts';
import { hostedPath, parseSpriteKey, routeInput } from './sprite-key.ts';

export type { DaemonEvent, EventMessage, HostStatus, MethodInput, MethodName, MethodOutput, Sprite, TerminalServerMessage };

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

/** `not-your-daemon`: something else answers on the daemon's port; `logged-out`: the login ended. */
export type ConnectionState = 'connecting' | 'online' | 'offline' | 'not-your-daemon' | 'logged-out';

export interface EventsHandlers {
  /** This daemon's events, and (`host.event`, `hosts.changed`) its remote hosts'. */
  onEvent(e: EventMessage): void;
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
  /** A `name` that is a remote sprite's key (`NAME@HOST`, sprite-key.ts) sends the call to that host. */
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

type WebSocketCtor = new (url: string, protocols?: string[]) => WebSocket;

/** The subprotocols that carry a token on a WebSocket (browsers cannot set its headers). */
export function wsProtocols(token: string): string[] {
  return [UI_SUBPROTOCOL, TOKEN_SUBPROTOCOL_PREFIX + token];
}

/** An auth failure as the ApiError a caller shows. */
export function apiErrorFromAuth(err: unknown): ApiError {
  if (err instanceof AuthError) return new ApiError(err.kind === 'unreachable' ? 'unavailable' : err.kind === 'logged-out' ? 'unauthenticated' : 'permission_denied', err.message);
  return new ApiError('internal', (err as Error)?.message ?? String(err));
}

export const stateOfAuthFailure = (err: unknown): ConnectionState => (err instanceof AuthError && err.kind !== 'unreachable' ? err.kind : 'offline');

export interface WebTransportOptions {
  routes: RouteTable;
  /** Gives out tokens only for a daemon that proved itself (default: a DaemonAuth on this page). */
  auth?: TokenSource;
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
  private readonly auth: TokenSource;

  constructor(private readonly opts: WebTransportOptions) {
    this.auth = opts.auth ?? new DaemonAuth({ fetch: opts.fetch });
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
    const routed = routeInput((input ?? {}) as Record<string, unknown>);
    const { url, init } = buildRequest({ http: route.http, path: hostedPath(route.path, routed.host) }, routed.input);
    const send = async () => {
      let token: string;
      try {
        token = await this.auth.token();
      } catch (err) {
        throw apiErrorFromAuth(err);
      }
      try {
        const res = await this.fetchFn(url, { ...init, headers: { ...init.headers, Authorization: `Bearer ${token}` }, credentials: 'omit', cache: 'no-store' });
        return { res, token };
      } catch (err) {
        this.auth.lost();
        throw new ApiError('unavailable', `Cannot reach the Spritely daemon (${(err as Error).message}). Is it running?`);
      }
    };
    let { res, token } = await send();
    if (res.status === 401) {
      // The token died (a daemon restart, an expiry): a page that can resume gets a new one.
      this.auth.rejected(token);
      ({ res, token } = await send());
      if (res.status === 401) this.auth.rejected(token);
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
    let first = true;
    const retry = (delay: number) => {
      if (!stopped) timer = this.setT(connect, delay);
    };
    const connect = () => {
      timer = null;
      if (stopped) return;
      // Only the first attempt says "connecting": later ones keep showing why the last one failed.
      if (first) handlers.onState('connecting');
      first = false;
      this.auth.token().then(
        (token) => (stopped ? undefined : open(token)),
        (err) => {
          if (stopped) return;
          handlers.onState(stateOfAuthFailure(err), (err as Error).message);
          retry(backoffMs(attempt++));
        },
      );
    };
    const open = (token: string) => {
      const sock = new this.WS(wsUrl(this.loc, '/v1/events'), wsProtocols(token));
      ws = sock;
      let hello = false;
      sock.onmessage = (m) => {
        let e: EventMessage;
        try {
          e = JSON.parse(String(m.data)) as EventMessage;
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
        this.auth.lost();
        if (stopped) return;
        if (ev.code === CLOSE_UNAUTHENTICATED) {
          // Logged out, expired, or the token outlived its daemon process: ask for a new one now.
          this.auth.rejected(token);
          return retry(attempt++ ? backoffMs(attempt) : 0);
        }
        handlers.onState('offline', hello ? 'The connection to the Spritely daemon was lost; reconnecting…' : `Cannot reach the Spritely daemon${ev.reason ? ` (${ev.reason})` : ''}; retrying…`);
        retry(backoffMs(attempt++));
      };
      sock.onerror = () => {};
    };
    // A new login (a fresh #login= code, another tab's): while waiting to retry, retry now.
    const off = this.auth.onChange?.(() => {
      if (timer === null || stopped) return;
      this.clearT(timer);
      connect();
    });
    connect();
    return () => {
      stopped = true;
      off?.();
      if (timer !== null) this.clearT(timer);
      const s = ws;
      ws = null;
      s?.close();
    };
  }

  openTerminal(sprite: string, opts: TerminalOpenOptions, handlers: TerminalSocketHandlers): TerminalSocket {
    const { host, name } = parseSpriteKey(sprite);
    const url = wsUrl(this.loc, hostedPath(`/v1/sprites/${encodeURIComponent(name)}/terminal`, host), { cols: opts.cols, rows: opts.rows, session: opts.session });
    let ws: WebSocket | null = null;
    /** Set when the caller let go before the socket existed; a hang-up still reaches the daemon. */
    let ending: 'detach' | 'hang-up' | null = null;
    const queue: (string | Uint8Array)[] = [];
    const send = (m: string | Uint8Array) => {
      if (ws?.readyState === 1) ws.send(m);
      else if (!ws || ws.readyState === 0) queue.push(m);
    };
    this.auth.token().then(
      (token) => {
        if (ending === 'detach') return;
        const sock = new this.WS(url, wsProtocols(token));
        ws = sock;
        sock.binaryType = 'arraybuffer';
        sock.onopen = () => {
          for (const m of queue.splice(0)) sock.send(m);
          if (ending === 'hang-up') return sock.close(1000);
          handlers.onOpen();
        };
        sock.onmessage = (m) => {
          if (typeof m.data === 'string') {
            try {
              handlers.onMessage(JSON.parse(m.data) as TerminalServerMessage);
            } catch {
              /* ignore malformed */
            }
          } else handlers.onData(new Uint8Array(m.data as ArrayBuffer));
        };
        sock.onclose = (ev) => {
          if (ev.code === CLOSE_UNAUTHENTICATED) this.auth.rejected(token);
          if (ending !== 'hang-up') handlers.onClose({ code: ev.code, reason: ev.reason });
        };
        sock.onerror = () => {};
      },
      (err) => {
        if (!ending) handlers.onClose({ code: CLOSE_UNAUTHENTICATED, reason: (err as Error).message });
      },
    );
    return {
      send: (bytes) => send(bytes),
      resize: (cols, rows) => send(JSON.stringify({ type: 'resize', cols, rows })),
      ack: (bytes) => send(JSON.stringify({ type: 'ack', bytes })),
      hangUp: () => {
        send(JSON.stringify({ type: 'close' }));
        if (ws) ws.close(1000);
        else ending = 'hang-up';
      },
      detach: () => {
        if (ws) ws.close(1000);
        else ending = 'detach';
      },
    };
  }
}
