import { describe, expect, it } from 'vitest';
import { bearerToken, decideAccess, type AccessChecks, type AccessRequest } from './access.ts';
import type { Authenticated } from './ui-auth.ts';

const PORT = 4567;
const checks: AccessChecks = {
  apiToken: (t) => t === 'API',
  ui: (t, host): Authenticated => (t === 'UI' && host === '127.0.0.1:4567' ? { ok: true, session: 'S' } : t === 'OLD' ? { ok: false, reason: 'idle' } : { ok: false, reason: 'unknown' }),
};
const tcp = (over: Partial<AccessRequest>): AccessRequest => ({ transport: 'tcp', host: `127.0.0.1:${PORT}`, origin: undefined, port: PORT, credential: null, ...over });

describe('loopback access', () => {
  it.each([
    ['the api-token, no Origin', tcp({ credential: 'API' }), { ok: true, via: 'api-token' }],
    ['the api-token on localhost', tcp({ credential: 'API', host: `localhost:${PORT}` }), { ok: true, via: 'api-token' }],
    ['a UI token from the page', tcp({ credential: 'UI', origin: `http://127.0.0.1:${PORT}` }), { ok: true, via: 'ui', session: 'S' }],
    ['the app shell, anonymous', tcp({ anonymous: true }), { ok: true, via: 'anonymous' }],
    ['the unix socket, no credential', { ...tcp({}), transport: 'unix' as const, host: 'daemon' }, { ok: true, via: 'unix' }],
  ])('lets in %s', (_what, req, want) => {
    expect(decideAccess(req, checks)).toEqual(want);
  });

  it.each([
    ['no credential', tcp({}), 'unauthenticated', /Not logged in/],
    ['a wrong token', tcp({ credential: 'nope' }), 'unauthenticated', /neither the api-token/],
    ['an ended session', tcp({ credential: 'OLD' }), 'unauthenticated', /not used for 12 hours/],
    // localhost may resolve to ::1, where another user can listen on the same port number.
    ['a UI token on localhost', tcp({ credential: 'UI', host: `localhost:${PORT}` }), 'unauthenticated', /work on http:\/\/127\.0\.0\.1:4567 only/],
    ['a foreign Origin', tcp({ credential: 'UI', origin: 'http://evil.example' }), 'permission_denied', /origin http:\/\/evil\.example/],
    ['a sprite page as Origin', tcp({ credential: 'UI', origin: `http://dev.localhost:${PORT}` }), 'permission_denied', /not allowed/],
    ['a page on another loopback port', tcp({ credential: 'UI', origin: 'http://127.0.0.1:8080' }), 'permission_denied', /not allowed/],
    ['the localhost Origin', tcp({ credential: 'UI', origin: `http://localhost:${PORT}` }), 'permission_denied', /not allowed/],
    ['DNS rebinding', tcp({ credential: 'API', host: `evil.example:${PORT}` }), 'permission_denied', /DNS rebinding/],
    ['another port in Host', tcp({ credential: 'API', host: '127.0.0.1:1' }), 'permission_denied', /DNS rebinding/],
    ['no Host', tcp({ credential: 'API', host: undefined }), 'permission_denied', /DNS rebinding/],
    ['rebinding, even anonymous', tcp({ anonymous: true, host: `evil.example:${PORT}` }), 'permission_denied', /DNS rebinding/],
    ['a foreign Origin on the unix socket', { ...tcp({}), transport: 'unix' as const, origin: 'https://evil.example' }, 'permission_denied', /not allowed/],
    ['anything before the port is open', tcp({ credential: 'API', port: null }), 'permission_denied', /DNS rebinding/],
  ])('refuses %s', (_what, req, code, message) => {
    const d = decideAccess(req, checks);
    expect(d.ok).toBe(false);
    expect(d).toMatchObject({ code, message: expect.stringMatching(message) });
  });

  it('accepts extra origins it was told about', () => {
    expect(decideAccess(tcp({ credential: 'API', origin: 'app://spritely' }), { ...checks, allowedOrigins: ['app://spritely'] })).toMatchObject({ ok: true });
  });

  it('reads bearer tokens', () => {
    expect(bearerToken('Bearer abc')).toBe('abc');
    expect(bearerToken('Bearer ')).toBeNull();
    expect(bearerToken('Basic abc')).toBeNull();
    expect(bearerToken(undefined)).toBeNull();
  });
});
