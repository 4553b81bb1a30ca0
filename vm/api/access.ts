/**
 * Who may use the daemon's API: the decision alone, pure, so every case is a unit spec. The unix
 * socket is its owner's (0600 in a 0700 dir); on the loopback port a request needs our Host (no
 * DNS rebinding), no foreign Origin (no cross-site requests), and a credential: the api-token
 * file's token, or a live UI token (vm/api/ui-auth.ts). UI tokens are accepted only on the
 * literal `127.0.0.1:PORT` — `localhost` may resolve to ::1 first, where another user can listen
 * on the same port number.
 */
import type { Authenticated, SessionEnd } from './ui-auth.ts';
import { endedMessage } from './ui-auth.ts';

export const loopbackHost = (port: number) => `127.0.0.1:${port}`;
export const loopbackOrigin = (port: number) => `http://127.0.0.1:${port}`;

export interface AccessRequest {
  transport: 'unix' | 'tcp';
  host: string | undefined;
  origin: string | undefined;
  /** The loopback port we listen on (null before it is open). */
  port: number | null;
  /** A bearer from `Authorization`, or a browser WebSocket's token subprotocol. */
  credential: string | null;
  /** Only Host and Origin matter (the public app shell and the login steps). */
  anonymous?: boolean;
}

export interface AccessChecks {
  apiToken(token: string): boolean;
  ui(token: string, host: string): Authenticated;
  allowedOrigins?: readonly string[];
}

export type AccessDecision =
  | { ok: true; via: 'unix' | 'anonymous' | 'api-token' }
  | { ok: true; via: 'ui'; session: string }
  | { ok: false; code: 'permission_denied' | 'unauthenticated'; message: string; ended?: SessionEnd };

export function originAllowed(origin: string, port: number | null, extra: readonly string[] = []): boolean {
  return extra.includes(origin) || (port !== null && origin === loopbackOrigin(port));
}

export function hostAllowed(host: string | undefined, port: number | null): boolean {
  return port !== null && (host === loopbackHost(port) || host === `localhost:${port}`);
}

export function bearerToken(authorization: string | undefined): string | null {
  return authorization?.startsWith('Bearer ') ? authorization.slice(7).trim() || null : null;
}

export function decideAccess(r: AccessRequest, checks: AccessChecks): AccessDecision {
  if (r.origin !== undefined && !originAllowed(r.origin, r.port, checks.allowedOrigins)) {
    return { ok: false, code: 'permission_denied', message: `Requests from origin ${r.origin} are not allowed.` };
  }
  if (r.transport === 'unix') return { ok: true, via: 'unix' };
  if (!hostAllowed(r.host, r.port)) return { ok: false, code: 'permission_denied', message: `Host "${r.host ?? ''}" is not this daemon (possible DNS rebinding).` };
  if (r.anonymous) return { ok: true, via: 'anonymous' };
  const notLoggedIn = 'Not logged in: open the UI with `spritely ui`, or send the token from the api-token file as a Bearer token.';
  if (!r.credential) return { ok: false, code: 'unauthenticated', message: notLoggedIn };
  if (checks.apiToken(r.credential)) return { ok: true, via: 'api-token' };
  if (r.host !== loopbackHost(r.port!)) return { ok: false, code: 'unauthenticated', message: `Browser logins work on http://${loopbackHost(r.port!)} only. ${notLoggedIn}` };
  const ui = checks.ui(r.credential, r.host);
  if (ui.ok) return { ok: true, via: 'ui', session: ui.session };
  const message =
    ui.reason === 'unknown'
      ? 'This token is neither the api-token file\'s nor a live browser login\'s (logged out, expired, or issued before the daemon restarted). Run `spritely ui`, or use the api-token file.'
      : endedMessage(ui.reason);
  return { ok: false, code: 'unauthenticated', message, ended: ui.reason };
}
