import { describe, expect, it } from 'vitest';
import { forwardHeaders, page, spriteFromHost, withoutDaemonCookie } from './url-proxy.ts';

describe('url proxy routing', () => {
  it('takes the sprite name from NAME.localhost[:port]', () => {
    expect(spriteFromHost('dev.localhost:7780')).toBe('dev');
    expect(spriteFromHost('My-Box.localhost')).toBe('my-box');
    expect(spriteFromHost('localhost:7780')).toBeNull();
    expect(spriteFromHost('dev.example.com')).toBeNull();
    expect(spriteFromHost('a.b.localhost')).toBeNull();
    expect(spriteFromHost('-x.localhost')).toBeNull();
    expect(spriteFromHost(undefined)).toBeNull();
  });

  it('strips hop-by-hop headers (and those named in Connection) and sets X-Forwarded-*', () => {
    const h = forwardHeaders({ host: 'dev.localhost:1', connection: 'keep-alive, x-secret', 'keep-alive': '5', 'x-secret': 'no', te: 'trailers', accept: 'text/html', 'x-forwarded-for': '10.0.0.1' }, '127.0.0.1');
    expect(h).toEqual({ host: 'dev.localhost:1', accept: 'text/html', 'x-forwarded-for': '10.0.0.1, 127.0.0.1', 'x-forwarded-proto': 'http', 'x-forwarded-host': 'dev.localhost:1' });
  });

  it("never forwards the daemon's cookie, on requests and WebSocket handshakes alike, and keeps the sprite's own", () => {
    for (const upgrade of [false, true]) {
      const h = forwardHeaders({ host: 'dev.localhost:1', cookie: 'app=1; spritely_session=SECRET; theme=dark' }, '127.0.0.1', upgrade);
      expect(h.cookie).toBe('app=1; theme=dark');
      expect(JSON.stringify(h)).not.toContain('SECRET');
      expect(forwardHeaders({ host: 'dev.localhost:1', cookie: 'spritely_session=SECRET' }, '127.0.0.1', upgrade)).not.toHaveProperty('cookie');
    }
    expect(withoutDaemonCookie(['a=1', ' spritely_session = x', 'b=2'])).toBe('a=1; b=2');
    expect(withoutDaemonCookie('spritely_session_other=1; xspritely_session=2')).toBe('spritely_session_other=1; xspritely_session=2');
    expect(withoutDaemonCookie(undefined)).toBeUndefined();
    expect(forwardHeaders({ host: 'dev.localhost:1' }, '127.0.0.1')).not.toHaveProperty('cookie');
  });

  it('keeps Upgrade and Connection for WebSocket handshakes', () => {
    const h = forwardHeaders({ host: 'x.localhost', connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-key': 'k' }, '127.0.0.1', true);
    expect(h).toMatchObject({ connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-key': 'k' });
  });

  it('escapes pages', () => {
    expect(page(404, '<b>', '"x"').html).toContain('&#60;b&#62;');
  });
});

describe('url proxy listening', () => {
  it('holds the same port on 127.0.0.1 and [::1], so nobody else can take it on either loopback', async () => {
    const { UrlProxy } = await import('./url-proxy.ts');
    const net = await import('node:net');
    const engine = { get: () => { throw Object.assign(new Error('no'), { code: 'not_found' }); } } as never;
    const proxy = new UrlProxy(engine);
    const port = await proxy.listen(0);
    try {
      for (const host of ['127.0.0.1', '::1']) {
        const body = await new Promise<string>((resolve, reject) => {
          const s = net.connect({ host, port }, () => s.end('GET / HTTP/1.1\r\nHost: nope.localhost\r\nConnection: close\r\n\r\n'));
          let out = '';
          s.on('data', (c) => (out += c));
          s.on('end', () => resolve(out));
          s.on('error', reject);
        });
        expect(body).toMatch(/^HTTP\/1\.1 404/);
      }
      const squatter = net.createServer();
      await expect(new Promise((resolve, reject) => squatter.once('error', reject).listen(port, '::1', () => resolve(null)))).rejects.toMatchObject({ code: 'EADDRINUSE' });
    } finally {
      await proxy.close();
    }
  });
});
