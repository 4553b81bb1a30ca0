import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { methods } from '../../vm/api/contract.ts';
import { UiAuth } from '../../vm/api/ui-auth.ts';
import { contractRoutes } from '../vite.config.ts';
import { DaemonAuth, STORAGE_KEY } from './daemon-auth.ts';
import { MemoryStorage } from './testing/fake-transport.ts';
import { ApiError, backoffMs, buildRequest, errorFromResponse, WebTransport, wsUrl, type ConnectionState, type RouteTable } from './transport.ts';

const routes: RouteTable = contractRoutes() as RouteTable;
const loc = { protocol: 'http:', host: '127.0.0.1:4000' };

describe('routes', () => {
  it('are generated from the contract, one per method', () => {
    expect(Object.keys(routes).sort()).toEqual(Object.keys(methods).sort());
    expect(routes['sprites.destroy']).toEqual({ http: 'DELETE', path: '/v1/sprites/:name' });
  });

  it('fill path params and send the rest as JSON only for POST', () => {
    expect(buildRequest(routes['sprites.stop'], { name: 'a b', force: true })).toEqual({
      url: '/v1/sprites/a%20b/stop',
      init: { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"force":true}' },
    });
    expect(buildRequest(routes['sprites.get'], { name: 'x' })).toEqual({ url: '/v1/sprites/x', init: { method: 'GET' } });
  });
});

describe('errors', () => {
  it("keep the daemon's code and message", () => {
    const e = errorFromResponse(409, JSON.stringify({ error: { code: 'busy', message: 'Sprite "a" is busy.' } }));
    expect(e).toBeInstanceOf(ApiError);
    expect([e.code, e.message, e.status]).toEqual(['busy', 'Sprite "a" is busy.', 409]);
  });
  it('explain a missing login in words', () => {
    expect(errorFromResponse(401, '').message).toMatch(/spritely ui/);
    expect(errorFromResponse(502, 'gateway').message).toBe('The daemon answered 502: gateway.');
  });
});

describe('backoff and URLs', () => {
  it('doubles from 250 ms to a 5 s cap with jitter', () => {
    expect([0, 1, 2, 3, 4, 5, 30].map((n) => backoffMs(n, () => 0.5))).toEqual([250, 500, 1000, 2000, 4000, 5000, 5000]);
    expect(backoffMs(0, () => 0)).toBe(200);
    expect(backoffMs(0, () => 1)).toBe(300);
  });
  it('builds same-origin WebSocket URLs', () => {
    expect(wsUrl(loc, '/v1/sprites/a/terminal', { cols: 80, rows: 24, session: null })).toBe('ws://127.0.0.1:4000/v1/sprites/a/terminal?cols=80&rows=24');
    expect(wsUrl({ protocol: 'https:', host: 'h' }, '/v1/events')).toBe('wss://h/v1/events');
  });
});

class FakeWS {
  static all: FakeWS[] = [];
  readyState = 0;
  binaryType = 'blob';
  sent: unknown[] = [];
  onopen: (() => void) | null = null;
  onmessage: ((m: { data: unknown }) => void) | null = null;
  onclose: ((e: { code: number; reason: string }) => void) | null = null;
  onerror: (() => void) | null = null;
  closed = false;
  constructor(
    readonly url: string,
    readonly protocols: string[] = [],
  ) {
    FakeWS.all.push(this);
  }
  send(m: unknown) {
    this.sent.push(m);
  }
  close() {
    this.closed = true;
  }
  open() {
    this.readyState = 1;
    this.onopen?.();
  }
  text(o: unknown) {
    this.onmessage?.({ data: JSON.stringify(o) });
  }
  drop(reason = '', code = 1006) {
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }
}

const HOST = loc.host;
const json = (status: number, body: unknown) => new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });

interface Seen {
  url: string;
  headers: Record<string, string>;
  body: string;
  credentials?: RequestCredentials;
}

/**
 * The daemon behind `fetch`: the real daemon-side UiAuth (vm/api/ui-auth.ts) on a temp dir, so
 * both halves of the protocol meet here. `squatter` replaces it with something else on its port.
 */
class FakeDaemon {
  readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), 'transport-spec-'));
  auth = new UiAuth({ sessionsFile: path.join(this.dir, 'ui-sessions.json') });
  up = true;
  squatter: ((url: string, body: string) => Response) | null = null;
  seen: Seen[] = [];
  /** Requests that reached the real daemon (not the squatter). */
  served: Seen[] = [];

  fetch = async (url: string, init: RequestInit = {}): Promise<Response> => {
    const seen: Seen = { url, headers: { ...(init.headers as Record<string, string>) }, body: String(init.body ?? ''), credentials: init.credentials };
    this.seen.push(seen);
    if (!this.up) throw new TypeError('Failed to fetch');
    if (this.squatter) return this.squatter(url, seen.body);
    this.served.push(seen);
    try {
      const body = seen.body ? JSON.parse(seen.body) : {};
      if (url === '/ui/login') return json(200, this.auth.login(body, HOST));
      if (url === '/ui/identity') return json(200, this.auth.answerIdentity(body, HOST));
      if (url === '/ui/resume') return json(200, this.auth.resume(body, HOST));
      const token = seen.headers.Authorization?.replace(/^Bearer /, '') ?? null;
      const a = this.auth.authenticate(token, HOST);
      return a.ok ? json(200, []) : json(401, { error: { code: 'unauthenticated', message: `no (${a.reason})` } });
    } catch (err) {
      const e = err as { code?: string; message: string };
      return json(e.code === 'unauthenticated' ? 401 : e.code === 'failed_precondition' ? 409 : 400, { error: { code: e.code, message: e.message } });
    }
  };

  /** The same data dir, a new process: same key, new instance, no tokens. */
  restart() {
    this.auth.close();
    this.auth = new UiAuth({ sessionsFile: path.join(this.dir, 'ui-sessions.json') });
  }

  close() {
    this.auth.close();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

const daemons: FakeDaemon[] = [];
afterEach(() => {
  for (const d of daemons.splice(0)) d.close();
});

async function until<T>(what: string, fn: () => T | null | undefined | false, ms = 3000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** A page on the daemon's origin: its transport, the timers it set, and what it showed. */
function page(daemon: FakeDaemon, opts: { hash?: string; storage?: MemoryStorage } = {}) {
  FakeWS.all = [];
  const timers: (() => void)[] = [];
  const replaced: string[] = [];
  const storage = opts.storage ?? new MemoryStorage();
  const location = { host: HOST, hash: opts.hash ?? '', pathname: '/', search: '' };
  const events = new EventTarget();
  const auth = new DaemonAuth({
    fetch: daemon.fetch as never,
    storage,
    location,
    events,
    history: {
      replaceState: (_s: unknown, _t: string, url?: string | URL | null) => {
        replaced.push(String(url));
        location.hash = '';
      },
    },
  });
  const t = new WebTransport({ routes, auth, fetch: daemon.fetch as never, WebSocket: FakeWS as never, location: loc, setTimeout: (fn) => timers.push(fn), clearTimeout: () => {} });
  const states: [ConnectionState, string | undefined][] = [];
  /** What the browser does when a new fragment lands on this document. */
  const navigateHash = (hash: string) => {
    location.hash = hash;
    events.dispatchEvent(new Event('hashchange'));
  };
  const received: unknown[] = [];
  return { t, auth, timers, replaced, storage, states, events: received, navigateHash, subscribe: () => t.subscribe({ onEvent: (e) => received.push(e), onState: (s, d) => states.push([s, d]) }) };
}

const lastState = (p: { states: [ConnectionState, string | undefined][] }) => p.states.at(-1)?.[0];
const tokenOf = (ws: FakeWS) => ws.protocols.find((x) => x.startsWith('spritely.token.'))?.slice('spritely.token.'.length);

function daemonWithLogin() {
  const d = new FakeDaemon();
  daemons.push(d);
  return { d, hash: `#login=${d.auth.mintCode().code}` };
}

describe('WebTransport', () => {
  it('logs in from #login=CODE: the code leaves the address bar first; the token goes as a Bearer header and a WebSocket subprotocol, never a cookie', async () => {
    const { d, hash } = daemonWithLogin();
    const p = page(d, { hash });
    expect(p.replaced).toEqual(['/']);
    expect(await p.t.call('sprites.list')).toEqual([]);
    const [login, call] = d.seen;
    expect(login.url).toBe('/ui/login');
    expect(login.credentials).toBe('omit');
    const stored = JSON.parse(p.storage.getItem(STORAGE_KEY)!);
    expect(stored).toEqual({ daemonKey: d.auth.identity.publicKey, session: expect.any(String), token: expect.any(String), instance: d.auth.instance });
    expect(call).toMatchObject({ url: '/v1/sprites', credentials: 'omit', headers: { Authorization: `Bearer ${stored.token}` } });
    p.subscribe();
    await until('the events socket', () => FakeWS.all[0]);
    expect(FakeWS.all[0].url).toBe('ws://127.0.0.1:4000/v1/events');
    expect(FakeWS.all[0].protocols).toEqual(['spritely.ui.v1', `spritely.token.${stored.token}`]);
    FakeWS.all[0].text({ type: 'hello', sprites: [] });
    expect(p.states.map((s) => s[0])).toEqual(['connecting', 'online']);
    // A used code does not log in again.
    const again = page(d, { hash });
    await expect(again.t.call('sprites.list')).rejects.toMatchObject({ code: 'unauthenticated', message: expect.stringMatching(/used up or expired/) });
  });

  it('turns error responses and network failures into ApiErrors', async () => {
    const { d, hash } = daemonWithLogin();
    const p = page(d, { hash });
    await p.t.call('sprites.list');
    const real = d.fetch;
    d.fetch = (async (url: string, init: RequestInit) => (url.startsWith('/v1/') ? json(404, { error: { code: 'not_found', message: 'No sprite "x".' } }) : real(url, init))) as never;
    (p.t as unknown as { fetchFn: unknown }).fetchFn = d.fetch;
    await expect(p.t.call('sprites.get', { name: 'x' })).rejects.toMatchObject({ code: 'not_found', message: 'No sprite "x".' });
    d.fetch = real;
    d.up = false;
    (p.t as unknown as { fetchFn: unknown }).fetchFn = d.fetch;
    await expect(p.t.call('sprites.list')).rejects.toMatchObject({ code: 'unavailable' });
  });

  it('reconnects the events socket with backoff, checking the daemon each time', async () => {
    const { d, hash } = daemonWithLogin();
    const p = page(d, { hash });
    const stop = p.subscribe();
    await until('socket', () => FakeWS.all[0]);
    FakeWS.all[0].text({ type: 'hello', sprites: [] });
    const identityChecks = () => d.served.filter((s) => s.url === '/ui/identity').length;
    expect(identityChecks()).toBe(0); // the login itself proved the daemon
    FakeWS.all[0].drop();
    expect(p.states.map((s) => s[0])).toEqual(['connecting', 'online', 'offline']);
    expect(p.timers).toHaveLength(1);
    p.timers[0]();
    await until('second socket', () => FakeWS.all[1]);
    expect(identityChecks()).toBe(1);
    FakeWS.all[1].text({ type: 'hello', sprites: [] });
    expect(p.events).toHaveLength(2);
    stop();
    expect(FakeWS.all[1].closed).toBe(true);
    FakeWS.all[1].drop();
    expect(p.timers).toHaveLength(1);
  });

  it.each([
    ['answers 404', () => new Response('not found', { status: 404 }), /HTTP 404/],
    ['answers something else', () => json(200, { hello: 'world' }), /no signed answer/],
    ['signs with another key', (url: string, body: string) => {
      const other = new UiAuth({ sessionsFile: path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'other-')), 's.json') });
      const a = other.answerIdentity(JSON.parse(body), HOST);
      other.close();
      return json(200, a);
    }, /not your daemon’s/],
  ] as const)('refuses to reconnect to a daemon that fails the identity check (a squatter that %s): sends it no token, says so, and reconnects when the real one returns', async (_what, squatter, detail) => {
    const { d, hash } = daemonWithLogin();
    const p = page(d, { hash });
    p.subscribe();
    await until('socket', () => FakeWS.all[0]);
    FakeWS.all[0].text({ type: 'hello', sprites: [] });
    const token = tokenOf(FakeWS.all[0])!;
    // The daemon stops; something else takes its port.
    d.squatter = squatter;
    const before = d.seen.length;
    FakeWS.all[0].drop();
    p.timers.shift()!();
    await until('not-your-daemon', () => lastState(p) === 'not-your-daemon');
    expect(p.states.at(-1)![1]).toMatch(new RegExp(`This is not your Spritely daemon: something else answers on 127\\.0\\.0\\.1:4000 \\(.*${detail.source}`));
    // A click meanwhile: refused here, nothing sent.
    await expect(p.t.call('sprites.list')).rejects.toMatchObject({ code: 'permission_denied', message: expect.stringMatching(/not your Spritely daemon/) });
    const toSquatter = d.seen.slice(before);
    expect(toSquatter.length).toBeGreaterThan(0);
    expect(toSquatter.every((s) => s.url === '/ui/identity' && !s.headers.Authorization && s.credentials === 'omit')).toBe(true);
    expect(JSON.stringify(toSquatter)).not.toContain(token);
    expect(FakeWS.all).toHaveLength(1); // no socket was opened to it
    // The real daemon comes back (restarted): the page proves its login and reconnects.
    d.squatter = null;
    d.restart();
    p.timers.shift()!();
    await until('a new socket', () => FakeWS.all[1]);
    expect(tokenOf(FakeWS.all[1])).not.toBe(token);
    FakeWS.all[1].text({ type: 'hello', sprites: [] });
    expect(lastState(p)).toBe('online');
  });

  it('refuses a relay: a squatter on this port that forwards to the real daemon on another port', async () => {
    const { d, hash } = daemonWithLogin();
    const p = page(d, { hash });
    await p.t.call('sprites.list');
    p.auth.lost();
    // The real daemon answers, but for the port it listens on, not this page's.
    d.squatter = (url, body) => json(200, d.auth.answerIdentity(JSON.parse(body), '127.0.0.1:4001'));
    await expect(p.t.call('sprites.list')).rejects.toMatchObject({ message: expect.stringMatching(/it answered for 127\.0\.0\.1:4001/) });
  });

  it('a resume whose challenge went stale is retried, not taken for a logout', async () => {
    const { d, hash } = daemonWithLogin();
    const p = page(d, { hash });
    await p.t.call('sprites.list');
    d.restart();
    const real = d.auth.resume.bind(d.auth);
    let spoiled = 0;
    d.auth.resume = (body: unknown, host: string) => {
      if (!spoiled++) for (let i = 0; i < 1000; i++) d.auth.answerIdentity({ nonce: 'n'.repeat(22) }, HOST); // a flood evicts it
      return real(body, host);
    };
    await expect(p.t.call('sprites.list')).rejects.toMatchObject({ code: 'unavailable', message: expect.stringMatching(/challenge is unknown or expired/) });
    expect(await p.t.call('sprites.list')).toEqual([]);
  });

  it('a reload stays logged in while the daemon process lives; after a restart only the page that holds its key resumes', async () => {
    const { d, hash } = daemonWithLogin();
    const storage = new MemoryStorage();
    const first = page(d, { hash, storage });
    await first.t.call('sprites.list');
    const reloaded = page(d, { storage });
    expect(await reloaded.t.call('sprites.list')).toEqual([]);
    d.restart();
    await expect(reloaded.t.call('sprites.list')).rejects.toMatchObject({ code: 'unauthenticated', message: expect.stringMatching(/daemon restarted/) });
    expect(await first.t.call('sprites.list')).toEqual([]); // resumed: signs the daemon's challenge
    expect(d.served.some((s) => s.url === '/ui/resume')).toBe(true);
    // Another tab's fresh token is picked up by the reloaded page.
    expect(await reloaded.t.call('sprites.list')).toEqual([]);
  });

  it('logout-all: the socket closes with 4401 and the window shows the daemon\'s words', async () => {
    const { d, hash } = daemonWithLogin();
    const p = page(d, { hash });
    p.subscribe();
    await until('socket', () => FakeWS.all[0]);
    FakeWS.all[0].text({ type: 'hello', sprites: [] });
    d.auth.logoutAll();
    FakeWS.all[0].drop('logged out', 4401);
    p.timers.shift()!();
    await until('logged out', () => lastState(p) === 'logged-out');
    expect(p.states.at(-1)![1]).toMatch(/^Logged out \(`spritely ui --logout-all`/);
    await expect(p.t.call('sprites.list')).rejects.toMatchObject({ code: 'unauthenticated' });
  });

  it('a logged-out window logs in again at once when a new #login= lands on it (Electron\'s "Log in again")', async () => {
    const { d, hash } = daemonWithLogin();
    const p = page(d, { hash });
    p.subscribe();
    await until('socket', () => FakeWS.all[0]);
    FakeWS.all[0].text({ type: 'hello', sprites: [] });
    d.auth.logoutAll();
    FakeWS.all[0].drop('logged out', 4401);
    p.timers.shift()!();
    await until('logged out', () => lastState(p) === 'logged-out');
    expect(p.timers).toHaveLength(1); // a retry is pending
    p.navigateHash(`#login=${d.auth.mintCode().code}`);
    expect(p.replaced).toEqual(['/', '/']); // the new code left the address bar too
    const ws = await until('a new socket, without waiting for the retry', () => FakeWS.all[1]);
    ws.text({ type: 'hello', sprites: [] });
    expect(lastState(p)).toBe('online');
  });

  it('a page with no login says so without asking anything of the port', async () => {
    const d = new FakeDaemon();
    daemons.push(d);
    const p = page(d);
    p.subscribe();
    await until('logged out', () => lastState(p) === 'logged-out');
    expect(p.states.at(-1)![1]).toMatch(/not logged in\. Run `spritely ui`/);
    expect(d.seen).toEqual([]);
  });

  it('terminals open only after the check, with size, session and token; input waits for the socket', async () => {
    const { d, hash } = daemonWithLogin();
    const p = page(d, { hash });
    const got: unknown[] = [];
    const sock = p.t.openTerminal('box', { cols: 100, rows: 30, session: 'S1' }, { onOpen: () => {}, onData: (b) => got.push(b), onMessage: (m) => got.push(m), onClose: () => {} });
    sock.send(new Uint8Array([65]));
    const ws = await until('terminal socket', () => FakeWS.all[0]);
    expect(ws.url).toBe('ws://127.0.0.1:4000/v1/sprites/box/terminal?cols=100&rows=30&session=S1');
    expect(ws.protocols[0]).toBe('spritely.ui.v1');
    expect(ws.binaryType).toBe('arraybuffer');
    expect(ws.sent).toEqual([]);
    ws.open();
    sock.resize(90, 20);
    sock.ack(5000);
    expect(ws.sent).toEqual([new Uint8Array([65]), '{"type":"resize","cols":90,"rows":20}', '{"type":"ack","bytes":5000}']);
    ws.onmessage?.({ data: new Uint8Array([104, 105]).buffer });
    ws.text({ type: 'session', session: 'S1', replayed: 0 });
    expect(got).toEqual([new Uint8Array([104, 105]), { type: 'session', session: 'S1', replayed: 0 }]);
    sock.hangUp();
    expect(ws.sent.at(-1)).toBe('{"type":"close"}');
    expect(ws.closed).toBe(true);
  });

  it("a remote sprite's key (NAME@HOST) routes calls and terminals to /v1/hosts/HOST/… with the plain name", async () => {
    const { d, hash } = daemonWithLogin();
    const p = page(d, { hash });
    const real = d.fetch;
    const urls: { url: string; body?: unknown }[] = [];
    (p.t as unknown as { fetchFn: unknown }).fetchFn = (async (url: string, init: RequestInit) => {
      if (!url.startsWith('/v1/')) return real(url, init);
      urls.push({ url, body: init.body ? JSON.parse(String(init.body)) : undefined });
      return json(200, { ok: true });
    }) as never;
    await p.t.call('sprites.url', { name: 'web@box', port: 3000 });
    await p.t.call('sprites.fork', { name: 'web@box', checkpoint: 'v1', newName: 'copy@box' });
    await p.t.call('sprites.get', { name: 'web' });
    expect(urls).toEqual([
      { url: '/v1/hosts/box/sprites/web/url', body: { port: 3000 } },
      { url: '/v1/hosts/box/sprites/web/fork', body: { checkpoint: 'v1', newName: 'copy' } },
      { url: '/v1/sprites/web', body: undefined },
    ]);
    p.t.openTerminal('web@box', { cols: 80, rows: 24 }, { onOpen: () => {}, onData: () => {}, onMessage: () => {}, onClose: () => {} });
    const ws = await until('terminal socket', () => FakeWS.all[0]);
    expect(ws.url).toBe('ws://127.0.0.1:4000/v1/hosts/box/sprites/web/terminal?cols=80&rows=24');
  });

  it('a terminal to a daemon that fails the check never opens a socket and reports why', async () => {
    const { d, hash } = daemonWithLogin();
    const p = page(d, { hash });
    await p.t.call('sprites.list');
    p.auth.lost();
    d.squatter = () => new Response('', { status: 500 });
    const closed = new Promise<{ code: number; reason: string }>((r) => p.t.openTerminal('box', { cols: 80, rows: 24 }, { onOpen: () => {}, onData: () => {}, onMessage: () => {}, onClose: r }));
    expect(await closed).toMatchObject({ code: 4401, reason: expect.stringMatching(/not your Spritely daemon/) });
    expect(FakeWS.all).toHaveLength(0);
  });
});
