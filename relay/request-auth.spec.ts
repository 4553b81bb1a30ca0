import { describe, expect, it } from 'vitest';
import { HOSTILE_TARGETS } from './hostile-targets.fixture.ts';
import { hashAccessToken } from './access-token.ts';
import { DigestSet } from './digest-set.ts';
import { decideAccess, shareCookie, takeShareParam, type AccessPolicy, type AccessRequest } from './request-auth.ts';
import { generatePublicationId, generateShareKey, importSharePublicKey, sharePublicKey, signShareToken } from './share-link.ts';

const key = generateShareKey();
const now = 1_700_000_000_000;
const policy: AccessPolicy = {
  auth: 'sprite',
  accessTokenHashes: new DigestSet([[hashAccessToken('sat_good'), true]]),
  shareKey: importSharePublicKey(sharePublicKey(key)),
  label: 'dev-k3x9ab',
  publicationId: generatePublicationId(),
};
const request = (overrides: Partial<AccessRequest> = {}): AccessRequest => ({
  url: '/',
  authorization: undefined,
  cookie: undefined,
  secure: true,
  canRedirect: true,
  now,
  ...overrides,
});
const share = (expiresAt = now + 60_000, label = 'dev-k3x9ab', publicationId = policy.publicationId!) => signShareToken(key, { label, publicationId }, expiresAt);

describe('decideAccess', () => {
  it('lets everything through in public mode, untouched', () => {
    const decision = decideAccess({ ...policy, auth: 'public' }, request({ authorization: 'Bearer x', cookie: '__Host-spritely_share=x', url: '/?a=1' }));
    expect(decision).toEqual({ kind: 'allow', forwardAuthorization: true, cookie: '__Host-spritely_share=x', url: '/?a=1' });
  });
  it('denies a request without credential', () => {
    expect(decideAccess(policy, request())).toMatchObject({ kind: 'deny', reason: expect.stringMatching(/private/) });
  });
  it('allows a good bearer token and keeps it, and our cookies, from the sprite', () => {
    expect(decideAccess(policy, request({ authorization: 'Bearer sat_good', cookie: 'a=1; __Host-spritely_share=zzz; spritely_share=old' }))).toEqual({
      kind: 'allow',
      forwardAuthorization: false,
      cookie: 'a=1',
      url: '/',
    });
  });
  it('denies a bad bearer token', () => {
    expect(decideAccess(policy, request({ authorization: 'Bearer sat_bad' }))).toMatchObject({ kind: 'deny', reason: expect.stringMatching(/not valid/) });
  });
  it('redirects a valid share link to the same URL without it, setting the cookie', () => {
    const token = share();
    const decision = decideAccess(policy, request({ url: `/page?x=1&spritely_share=${token}&y=2` }));
    expect(decision).toEqual({ kind: 'redirect', location: '/page?x=1&y=2', setCookie: shareCookie(token, now + 60_000, now) });
  });
  it.each(HOSTILE_TARGETS.map((target) => [target]))('redirects a valid share link on the hostile target %j to /', (target) => {
    const url = `${target}${target.includes('?') ? '&' : '?'}spritely_share=${share()}`;
    expect(decideAccess(policy, request({ url }))).toMatchObject({ kind: 'redirect', location: '/' });
  });
  it('refuses to set the cookie over plain HTTP, where browsers would drop it', () => {
    expect(decideAccess(policy, request({ url: `/?spritely_share=${share()}`, secure: false }))).toMatchObject({ kind: 'deny', reason: expect.stringMatching(/HTTPS/) });
  });
  it('accepts a valid share link in place when it cannot redirect (WebSocket), over HTTP too', () => {
    expect(decideAccess(policy, request({ url: `/ws?spritely_share=${share()}`, canRedirect: false }))).toMatchObject({ kind: 'allow', url: '/ws' });
    expect(decideAccess(policy, request({ url: `/ws?spritely_share=${share()}`, canRedirect: false, secure: false }))).toMatchObject({ kind: 'allow', url: '/ws' });
  });
  it('denies expired, foreign and garbage share links', () => {
    expect(decideAccess(policy, request({ url: `/?spritely_share=${share(now - 1)}` }))).toMatchObject({ kind: 'deny', reason: expect.stringMatching(/expired/) });
    expect(decideAccess(policy, request({ url: `/?spritely_share=${share(now + 1000, 'api-k3x9ab')}` }))).toMatchObject({ kind: 'deny' });
    expect(decideAccess(policy, request({ url: '/?spritely_share=garbage' }))).toMatchObject({ kind: 'deny' });
  });
  it('denies links and cookies of an earlier publication as revoked', () => {
    const old = share(now + 60_000, 'dev-k3x9ab', generatePublicationId());
    expect(decideAccess(policy, request({ url: `/?spritely_share=${old}` }))).toMatchObject({ kind: 'deny', reason: expect.stringMatching(/revoked/) });
    expect(decideAccess(policy, request({ url: `/ws?spritely_share=${old}`, canRedirect: false }))).toMatchObject({ kind: 'deny', reason: expect.stringMatching(/revoked/) });
    expect(decideAccess(policy, request({ cookie: `__Host-spritely_share=${old}` }))).toMatchObject({ kind: 'deny', reason: expect.stringMatching(/revoked/) });
  });
  it('denies share links when the sprite published no key, or no publication id', () => {
    expect(decideAccess({ ...policy, shareKey: null }, request({ url: `/?spritely_share=${share()}` }))).toMatchObject({ kind: 'deny' });
    expect(decideAccess({ ...policy, publicationId: null }, request({ url: `/?spritely_share=${share()}` }))).toMatchObject({ kind: 'deny', reason: expect.stringMatching(/not enabled/) });
    expect(decideAccess({ ...policy, publicationId: null }, request({ cookie: `__Host-spritely_share=${share()}` }))).toMatchObject({ kind: 'deny' });
  });
  it('allows a valid cookie and strips it; denies an expired one', () => {
    const cookie = `theme=dark; __Host-spritely_share=${share()}`;
    expect(decideAccess(policy, request({ cookie }))).toEqual({ kind: 'allow', forwardAuthorization: true, cookie: 'theme=dark', url: '/' });
    expect(decideAccess(policy, request({ cookie: `__Host-spritely_share=${share(now - 1)}` }))).toMatchObject({ kind: 'deny', reason: expect.stringMatching(/expired/) });
  });
  it('ignores a cookie without the __Host- prefix (a sibling host could have set it for the parent domain)', () => {
    expect(decideAccess(policy, request({ cookie: `spritely_share=${share()}` }))).toMatchObject({ kind: 'deny', reason: expect.stringMatching(/private/) });
  });
  it('passes an app Authorization header through when a cookie authorised the request', () => {
    expect(decideAccess(policy, request({ cookie: `__Host-spritely_share=${share()}`, authorization: 'Basic YXBwOnB3' }))).toMatchObject({ kind: 'allow', forwardAuthorization: true });
  });
});

describe('takeShareParam', () => {
  it.each([
    ['/', null, '/'],
    ['/a?b=1', null, '/a?b=1'],
    ['/a?spritely_share=T', 'T', '/a'],
    ['/a?b=1&spritely_share=T', 'T', '/a?b=1'],
    ['/a?spritely_shareX=1', null, '/a?spritely_shareX=1'],
  ])('%s', (url, share, rest) => expect(takeShareParam(url)).toEqual({ share, rest }));
});

describe('shareCookie', () => {
  it('is a __Host- cookie: Secure, Path=/, no Domain; HttpOnly, Lax, expiring with the link', () => {
    const cookie = shareCookie('T', now + 90_500, now);
    expect(cookie).toBe(`__Host-spritely_share=T; Path=/; Expires=${new Date(now + 90_500).toUTCString()}; Max-Age=90; Secure; HttpOnly; SameSite=Lax`);
    const attributes = cookie.split('; ').slice(1).map((part) => part.split('=')[0].toLowerCase());
    expect(attributes).not.toContain('domain');
    expect(attributes).toEqual(expect.arrayContaining(['secure', 'path', 'httponly']));
  });
  it('never has a negative Max-Age', () => {
    expect(shareCookie('T', now - 5_000, now)).toContain('Max-Age=0');
  });
});
