import { describe, expect, it } from 'vitest';
import { downstreamResponseHeaders, hostedSpriteFromHost, hostRoute, rewriteBody, rewriteFor, streamKind, upstreamRequestHeaders } from './host-route.ts';

describe('hostRoute', () => {
  it('maps /v1/hosts/HOST/REST to that host\'s /v1/REST', () => {
    expect(hostRoute('/v1/hosts/box/sprites')).toEqual({ host: 'box', remotePath: '/v1/sprites' });
    expect(hostRoute('/v1/hosts/box/sprites/dev/exec')).toEqual({ host: 'box', remotePath: '/v1/sprites/dev/exec' });
    expect(hostRoute('/v1/hosts/gpu-1/sprites/dev/checkpoints/v2/restore')).toEqual({ host: 'gpu-1', remotePath: '/v1/sprites/dev/checkpoints/v2/restore' });
    expect(hostRoute('/v1/hosts/box/events')).toEqual({ host: 'box', remotePath: '/v1/events' });
    expect(hostRoute('/v1/hosts/box/')).toEqual({ host: 'box', remotePath: '/v1/' });
  });

  it('leaves the host list and one host\'s own record to the local methods', () => {
    expect(hostRoute('/v1/hosts')).toBeNull();
    expect(hostRoute('/v1/hosts/box')).toBeNull();
    expect(hostRoute('/v1/sprites')).toBeNull();
    expect(hostRoute('/v2/hosts/box/sprites')).toBeNull();
  });

  it('refuses "local", invalid names, a remote\'s own hosts and its browser login', () => {
    expect(hostRoute('/v1/hosts/local/sprites')).toMatchObject({ status: 400, problem: expect.stringContaining('call /v1/sprites directly') });
    expect(hostRoute('/v1/hosts/Box/sprites')).toMatchObject({ status: 400 });
    expect(hostRoute('/v1/hosts/%ZZ/sprites')).toMatchObject({ status: 400 });
    expect(hostRoute('/v1/hosts/b%2Fx/sprites')).toMatchObject({ status: 400 });
    expect(hostRoute('/v1/hosts/box/hosts')).toMatchObject({ status: 403 });
    expect(hostRoute('/v1/hosts/box/hosts/other/sprites')).toMatchObject({ status: 403 });
    expect(hostRoute('/v1/hosts/box/ui/login-url')).toMatchObject({ status: 403 });
  });

  it('names stream kinds', () => {
    expect(streamKind('/v1/events')).toBe('events');
    expect(streamKind('/v1/sprites/dev/exec')).toBe('exec');
    expect(streamKind('/v1/sprites/dev/terminal')).toBe('terminal');
    expect(streamKind('/v1/sprites/dev')).toBe('other');
  });
});

describe('headers', () => {
  it('never send this computer\'s token, session cookie, origin or hop-by-hop headers to a server', () => {
    const h = upstreamRequestHeaders({
      authorization: 'Bearer secret',
      cookie: 'spritely_session=secret',
      origin: 'http://127.0.0.1:7000',
      referer: 'http://127.0.0.1:7000/',
      host: '127.0.0.1:7000',
      connection: 'keep-alive, x-private',
      'x-private': '1',
      'keep-alive': 'timeout=5',
      'transfer-encoding': 'chunked',
      'x-forwarded-for': '1.2.3.4',
      'sec-websocket-key': 'abc',
      'content-type': 'application/json',
      'content-length': '12',
      accept: '*/*',
    });
    expect(h).toEqual({ host: 'spritely', 'content-type': 'application/json', 'content-length': '12', accept: '*/*' });
  });

  it('pass answers back without hop-by-hop headers or cookies', () => {
    expect(downstreamResponseHeaders({ 'content-type': 'application/json', connection: 'keep-alive', 'keep-alive': 'timeout=5', 'set-cookie': ['a=b'], allow: 'GET' })).toEqual({ 'content-type': 'application/json', allow: 'GET' });
  });
});

describe('rewrites', () => {
  const ctx = { host: 'box', localUrl: (h: string, s: string) => `http://${s}.${h}.localhost:7001/` };

  it('only the local URL answer is rewritten: the server\'s own loopback URL means nothing here', () => {
    const r = rewriteFor('POST', '/v1/sprites/web/url');
    expect(r).toEqual({ method: 'sprites.url', params: { name: 'web' } });
    expect(rewriteBody(r!.method, r!.params, { local: 'http://web.localhost:41234/', port: 8080 }, ctx)).toEqual({ local: 'http://web.box.localhost:7001/', port: 8080 });
    expect(rewriteFor('GET', '/v1/sprites/web/url')).toBeNull();
    expect(rewriteFor('GET', '/v1/sprites')).toBeNull();
    expect(rewriteFor('POST', '/v1/sprites/web/exec')).toBeNull();
  });

  it('says so when this computer serves no local URLs', () => {
    expect(() => rewriteBody('sprites.url', { name: 'web' }, { local: 'x', port: 1 }, { host: 'box', localUrl: () => null })).toThrow(/no local URLs/);
  });
});

describe('hostedSpriteFromHost', () => {
  it('reads SPRITE.HOST.localhost[:port]', () => {
    expect(hostedSpriteFromHost('web.box.localhost:7001')).toEqual({ sprite: 'web', host: 'box' });
    expect(hostedSpriteFromHost('WEB.Box.LOCALHOST')).toEqual({ sprite: 'web', host: 'box' });
    expect(hostedSpriteFromHost('local.box.localhost')).toEqual({ sprite: 'local', host: 'box' });
  });
  it('is null for a local sprite, a reserved or invalid host, or anything else', () => {
    expect(hostedSpriteFromHost('web.localhost:7001')).toBeNull();
    expect(hostedSpriteFromHost('web.local.localhost:7001')).toBeNull();
    expect(hostedSpriteFromHost('a.b.c.localhost')).toBeNull();
    expect(hostedSpriteFromHost('-a.box.localhost')).toBeNull();
    expect(hostedSpriteFromHost('web.box.example.com')).toBeNull();
    expect(hostedSpriteFromHost(undefined)).toBeNull();
  });
});
