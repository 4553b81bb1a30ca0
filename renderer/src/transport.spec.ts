import { describe, expect, it, vi } from 'vitest';
import { methods } from '../../vm/api/contract.ts';
import { contractRoutes } from '../vite.config.ts';
import { ApiError, backoffMs, buildRequest, errorFromResponse, WebTransport, wsUrl, type RouteTable } from './transport.ts';

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
  constructor(readonly url: string) {
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
  drop(reason = '') {
    this.readyState = 3;
    this.onclose?.({ code: 1006, reason });
  }
}

function transport(fetchFn?: typeof fetch) {
  FakeWS.all = [];
  const timers: (() => void)[] = [];
  const t = new WebTransport({
    routes,
    fetch: fetchFn,
    WebSocket: FakeWS as never,
    location: loc,
    setTimeout: (fn) => timers.push(fn),
    clearTimeout: () => {},
  });
  return { t, timers };
}

describe('WebTransport', () => {
  it('calls methods with same-origin credentials and parses JSON', async () => {
    const f = vi.fn(async (_url: string, _init: RequestInit) => new Response(JSON.stringify([]), { status: 200 }));
    const { t } = transport(f as never);
    expect(await t.call('sprites.list')).toEqual([]);
    expect(f).toHaveBeenCalledWith('/v1/sprites', expect.objectContaining({ method: 'GET', credentials: 'same-origin' }));
    expect(t.has('sprites.list')).toBe(true);
    expect(t.has('sprites.teleport')).toBe(false);
  });

  it('turns error responses and network failures into ApiErrors', async () => {
    const { t } = transport((async () => new Response(JSON.stringify({ error: { code: 'not_found', message: 'No sprite "x".' } }), { status: 404 })) as never);
    await expect(t.call('sprites.get', { name: 'x' })).rejects.toMatchObject({ code: 'not_found', message: 'No sprite "x".' });
    const { t: t2 } = transport((async () => {
      throw new TypeError('Failed to fetch');
    }) as never);
    await expect(t2.call('sprites.list')).rejects.toMatchObject({ code: 'unavailable' });
  });

  it('reconnects the events socket with backoff and reports state', () => {
    const { t, timers } = transport();
    const events: unknown[] = [];
    const states: string[] = [];
    const stop = t.subscribe({ onEvent: (e) => events.push(e), onState: (s) => states.push(s) });
    expect(FakeWS.all[0].url).toBe('ws://127.0.0.1:4000/v1/events');
    FakeWS.all[0].text({ type: 'hello', sprites: [] });
    FakeWS.all[0].drop();
    expect(states).toEqual(['connecting', 'online', 'offline']);
    expect(timers).toHaveLength(1);
    timers[0]();
    expect(FakeWS.all).toHaveLength(2);
    FakeWS.all[1].text({ type: 'hello', sprites: [] });
    expect(events).toHaveLength(2);
    stop();
    expect(FakeWS.all[1].closed).toBe(true);
    FakeWS.all[1].drop();
    expect(timers).toHaveLength(1);
  });

  it('opens terminals with size and session, queues input until open, and sends control frames', () => {
    const { t } = transport();
    const got: unknown[] = [];
    const sock = t.openTerminal('box', { cols: 100, rows: 30, session: 'S1' }, { onOpen: () => {}, onData: (b) => got.push(b), onMessage: (m) => got.push(m), onClose: () => {} });
    const ws = FakeWS.all[0];
    expect(ws.url).toBe('ws://127.0.0.1:4000/v1/sprites/box/terminal?cols=100&rows=30&session=S1');
    expect(ws.binaryType).toBe('arraybuffer');
    sock.send(new Uint8Array([65]));
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
});
