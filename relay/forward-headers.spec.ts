import { describe, expect, it } from 'vitest';
import { clientIp, endToEndHeaders, forwardedHeaders, originForm, publicScheme, readCookie, withoutCookie } from './forward-headers.ts';

describe('endToEndHeaders', () => {
  it('drops hop-by-hop headers, the ones Connection names, pseudo-headers and our own', () => {
    const out = endToEndHeaders({
      host: 'a',
      connection: 'keep-alive, X-Secret',
      'keep-alive': 'timeout=5',
      'proxy-connection': 'x',
      'transfer-encoding': 'chunked',
      te: 'trailers',
      trailer: 'x',
      upgrade: 'websocket',
      'proxy-authorization': 'x',
      'proxy-authenticate': 'x',
      'http2-settings': 'x',
      'x-secret': 'x',
      ':path': '/',
      'spritely-sprite': 'x',
      'x-forwarded-for': '1.2.3.4',
      accept: 'text/html',
      'set-cookie': ['a=1', 'b=2'],
      'sec-websocket-key': 'k',
    });
    expect(out).toEqual({ accept: 'text/html', 'set-cookie': ['a=1', 'b=2'], 'sec-websocket-key': 'k' });
  });
  it('drops extra names and keeps X-Forwarded-* when asked', () => {
    expect(endToEndHeaders({ authorization: 'x', 'x-forwarded-for': '1.2.3.4' }, new Set(['authorization']), true)).toEqual({ 'x-forwarded-for': '1.2.3.4' });
  });
});

describe('forwardedHeaders', () => {
  it('replaces client claims when the relay is the edge', () => {
    expect(forwardedHeaders({ peerIp: '203.0.113.9', scheme: 'https', host: 'dev-x.r.com', trustProxy: false, incoming: { 'x-forwarded-for': '6.6.6.6', 'x-forwarded-proto': 'http' } })).toEqual({
      'x-forwarded-for': '203.0.113.9',
      'x-forwarded-proto': 'https',
      'x-forwarded-host': 'dev-x.r.com',
    });
  });
  it("appends to a trusted proxy's chain and takes its scheme", () => {
    expect(forwardedHeaders({ peerIp: '127.0.0.1', scheme: 'http', host: 'h', trustProxy: true, incoming: { 'x-forwarded-for': '198.51.100.7', 'x-forwarded-proto': 'https' } })).toEqual({
      'x-forwarded-for': '198.51.100.7, 127.0.0.1',
      'x-forwarded-proto': 'https',
      'x-forwarded-host': 'h',
    });
  });
  it('ignores a nonsense proto from a trusted proxy', () => {
    expect(forwardedHeaders({ peerIp: 'p', scheme: 'http', host: 'h', trustProxy: true, incoming: { 'x-forwarded-proto': 'gopher' } })['x-forwarded-proto']).toBe('http');
  });
});

describe('clientIp and publicScheme', () => {
  it('use the peer unless a proxy is trusted; then the last hop the proxy saw', () => {
    expect(clientIp('10.0.0.1', { 'x-forwarded-for': '6.6.6.6' }, false)).toBe('10.0.0.1');
    expect(clientIp('127.0.0.1', { 'x-forwarded-for': '6.6.6.6, 198.51.100.7' }, true)).toBe('198.51.100.7');
    expect(clientIp('127.0.0.1', {}, true)).toBe('127.0.0.1');
    expect(publicScheme('http', { 'x-forwarded-proto': 'https' }, false)).toBe('http');
    expect(publicScheme('http', { 'x-forwarded-proto': 'https, http' }, true)).toBe('https');
  });
});

describe('cookies', () => {
  it('reads one cookie', () => {
    expect(readCookie('a=1; spritely_share=T.S; b=2', 'spritely_share')).toBe('T.S');
    expect(readCookie('a=1', 'spritely_share')).toBeNull();
    expect(readCookie(undefined, 'a')).toBeNull();
  });
  it('removes one cookie and nothing else', () => {
    expect(withoutCookie('a=1; spritely_share=T; b=2', 'spritely_share')).toBe('a=1; b=2');
    expect(withoutCookie('spritely_share=T', 'spritely_share')).toBeUndefined();
    expect(withoutCookie('spritely_share_x=1', 'spritely_share')).toBe('spritely_share_x=1');
    expect(withoutCookie(undefined, 'a')).toBeUndefined();
  });
});

describe('originForm', () => {
  it.each([
    ['/a?b=1', '/a?b=1'],
    ['http://dev-x.relay.test/a?b=1', '/a?b=1'],
    ['*', '/'],
  ])('%s → %s', (input, expected) => expect(originForm(input)).toBe(expected));
});
