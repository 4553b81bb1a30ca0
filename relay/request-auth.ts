/**
 * The access decision for one public request to a published sprite — pure, so every case is unit
 * tested. `public` lets everything through. `sprite` needs a bearer token whose sha256 the daemon
 * published, or a share link signed by the daemon's key (swapped for a host-only HttpOnly cookie that
 * expires with the link). Credentials the relay consumed are not forwarded to the sprite.
 */
import type { KeyObject } from 'node:crypto';
import { accessTokenMatches, bearerToken } from './access-token.ts';
import type { DigestSet } from './digest-set.ts';
import { readCookie, withoutCookie } from './forward-headers.ts';
import { verifyShareToken } from './share-link.ts';
import { SHARE_COOKIE, SHARE_PARAM, type AuthMode } from './tunnel-protocol.ts';

export interface AccessPolicy {
  auth: AuthMode;
  accessTokenHashes: DigestSet<unknown>;
  shareKey: KeyObject | null;
  /** The host label the share token must name, e.g. `dev-k3x9ab`. */
  label: string;
}

export interface AccessRequest {
  /** Path and query as received. */
  url: string;
  authorization: string | undefined;
  cookie: string | undefined;
  /** Whether the client reached us over HTTPS (the cookie gets `Secure`). */
  secure: boolean;
  /** A WebSocket upgrade cannot follow a redirect: a valid share link is accepted in place. */
  canRedirect: boolean;
  now: number;
}

export type AccessDecision =
  | {
      kind: 'allow';
      /** Forward the Authorization header (false when it carried our token). */
      forwardAuthorization: boolean;
      /** The Cookie header to forward (ours removed). */
      cookie: string | undefined;
      /** The URL to forward (a share parameter removed). */
      url: string;
    }
  | { kind: 'redirect'; location: string; setCookie: string }
  | { kind: 'deny'; reason: string };

export function decideAccess(policy: AccessPolicy, request: AccessRequest): AccessDecision {
  if (policy.auth === 'public') {
    return { kind: 'allow', forwardAuthorization: true, cookie: request.cookie, url: request.url };
  }
  const { share, rest } = takeShareParam(request.url);
  if (share !== null) {
    const check = policy.shareKey ? verifyShareToken(share, policy.shareKey, policy.label, request.now) : null;
    if (!check) return { kind: 'deny', reason: 'share links are not enabled for this sprite' };
    if (!check.ok) return { kind: 'deny', reason: check.reason === 'expired' ? 'the share link has expired' : 'the share link is not valid' };
    if (!request.canRedirect) return { kind: 'allow', forwardAuthorization: true, cookie: withoutCookie(request.cookie, SHARE_COOKIE), url: rest };
    return { kind: 'redirect', location: rest, setCookie: shareCookie(share, check.expiresAt, request.now, request.secure) };
  }
  if (accessTokenMatches(bearerToken(request.authorization), policy.accessTokenHashes)) {
    return { kind: 'allow', forwardAuthorization: false, cookie: withoutCookie(request.cookie, SHARE_COOKIE), url: request.url };
  }
  const cookieToken = readCookie(request.cookie, SHARE_COOKIE);
  if (cookieToken !== null && policy.shareKey) {
    const check = verifyShareToken(cookieToken, policy.shareKey, policy.label, request.now);
    if (check.ok) return { kind: 'allow', forwardAuthorization: true, cookie: withoutCookie(request.cookie, SHARE_COOKIE), url: request.url };
    return { kind: 'deny', reason: check.reason === 'expired' ? 'the share link has expired' : 'the access cookie is not valid' };
  }
  if (request.authorization) return { kind: 'deny', reason: 'the access token is not valid for this sprite' };
  return { kind: 'deny', reason: 'this sprite is private: open it with a share link or send an access token' };
}

/** Splits the share parameter off a path+query. */
export function takeShareParam(url: string): { share: string | null; rest: string } {
  const q = url.indexOf('?');
  if (q === -1 || !url.includes(SHARE_PARAM, q)) return { share: null, rest: url };
  const params = new URLSearchParams(url.slice(q + 1));
  const share = params.get(SHARE_PARAM);
  if (share === null) return { share: null, rest: url };
  params.delete(SHARE_PARAM);
  const query = params.toString();
  return { share, rest: url.slice(0, q) + (query ? `?${query}` : '') };
}

/** Host-only (no Domain attribute), HttpOnly, expiring with the link. */
export function shareCookie(token: string, expiresAt: number, now: number, secure: boolean): string {
  const maxAge = Math.max(0, Math.floor((expiresAt - now) / 1000));
  const parts = [`${SHARE_COOKIE}=${token}`, 'Path=/', `Expires=${new Date(expiresAt).toUTCString()}`, `Max-Age=${maxAge}`, 'HttpOnly', 'SameSite=Lax'];
  if (secure) parts.push('Secure');
  return parts.join('; ');
}
