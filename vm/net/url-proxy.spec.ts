import { describe, expect, it } from 'vitest';
import { forwardHeaders, page, spriteFromHost } from './url-proxy.ts';

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

  it('keeps Upgrade and Connection for WebSocket handshakes', () => {
    const h = forwardHeaders({ host: 'x.localhost', connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-key': 'k' }, '127.0.0.1', true);
    expect(h).toMatchObject({ connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-key': 'k' });
  });

  it('escapes pages', () => {
    expect(page(404, '<b>', '"x"').html).toContain('&#60;b&#62;');
  });
});
