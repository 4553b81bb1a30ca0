/**
 * The access decision for one public request to a published sprite — pure, so every case is unit
 * tested. `public` lets everything through. `sprite` needs a bearer token whose sha256 the daemon
 * published, or a share link signed by the daemon's key for the sprite's current publication
 * (swapped for a `__Host-` cookie that expires with the link; only over HTTPS, where browsers keep
 * such a cookie). Credentials the relay consumed are not forwarded to the sprite.
 */
import type { KeyObject } from 'node:crypto';
import { accessTokenMatches, bearerToken } from './access-token.ts';
import type { DigestSet } from './digest-set.ts';
import { readCookie, withoutCookie } from './forward-headers.ts';
import { safeRedirectPath } from './redirect-target.ts';
import { verifyShareToken, type ShareCheck } from './share-link.ts';
import { LEGACY_SHARE_COOKIE, SHARE_COOKIE, SHARE_PARAM, type AuthMode } from './tunnel-protocol.ts';

export interface AccessPolicy {
  auth: AuthMode;
  accessTokenHashes: DigestSet<unknown>;
  shareKey: KeyObject | null;
  /** The host label the share token must name, e.g. `dev-k3x9ab`. */
  label: string;
  /** The publication id a share token must name; null: the daemon sent none, share links are off. */
  publicationId: string | null;
}

export interface AccessRequest {
  /** Path and query as received. */
  url: string;
  authorization: string | undefined;
  cookie: string | undefined;
  /** Whether the client reached us over HTTPS (a `__Host-` cookie needs it). */
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
  const forwardedCookie = withoutOurCookies(request.cookie);
  const { share, rest } = takeShareParam(request.url);
  if (share !== null) {
    const check = checkShare(policy, share, request.now);
    if (!check) return { kind: 'deny', reason: 'share links are not enabled for this sprite' };
    if (!check.ok) return { kind: 'deny', reason: shareProblem(check.reason, 'link') };
    if (!request.canRedirect) return { kind: 'allow', forwardAuthorization: true, cookie: forwardedCookie, url: rest };
    if (!request.secure) return { kind: 'deny', reason: 'share links need HTTPS: this relay was reached over plain HTTP, where browsers refuse its secure cookie' };
    return { kind: 'redirect', location: safeRedirectPath(rest), setCookie: shareCookie(share, check.expiresAt, request.now) };
  }
  if (accessTokenMatches(bearerToken(request.authorization), policy.accessTokenHashes)) {
    return { kind: 'allow', forwardAuthorization: false, cookie: forwardedCookie, url: request.url };
  }
  const cookieToken = readCookie(request.cookie, SHARE_COOKIE);
  if (cookieToken !== null) {
    const check = checkShare(policy, cookieToken, request.now);
    if (check?.ok) return { kind: 'allow', forwardAuthorization: true, cookie: forwardedCookie, url: request.url };
    return { kind: 'deny', reason: check ? shareProblem(check.reason, 'cookie') : 'share links are not enabled for this sprite' };
  }
  if (request.authorization) return { kind: 'deny', reason: 'the access token is not valid for this sprite' };
  return { kind: 'deny', reason: 'this sprite is private: open it with a share link or send an access token' };
}

/** null when the sprite takes no share links (no key, or a daemon that sent no publication id). */
function checkShare(policy: AccessPolicy, token: string, now: number): ShareCheck | null {
  if (!policy.shareKey || policy.publicationId === null) return null;
  return verifyShareToken(token, policy.shareKey, { label: policy.label, publicationId: policy.publicationId }, now);
}

function shareProblem(reason: Extract<ShareCheck, { ok: false }>['reason'], what: 'link' | 'cookie'): string {
  if (reason === 'expired') return 'the share link has expired: ask for a new one';
  if (reason === 'revoked') return 'the share link was revoked (the sprite was unpublished, published again, or its links were revoked): ask for a new one';
  return what === 'link' ? 'the share link is not valid' : 'the access cookie is not valid';
}

function withoutOurCookies(cookie: string | undefined): string | undefined {
  return withoutCookie(withoutCookie(cookie, SHARE_COOKIE), LEGACY_SHARE_COOKIE);
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

/**
 * `__Host-` (so Secure, Path=/ and no Domain: scoped to this one host, and no sibling can set one
 * for the parent domain), HttpOnly, Lax, expiring with the link.
 */
export function shareCookie(token: string, expiresAt: number, now: number): string {
  const maxAge = Math.max(0, Math.floor((expiresAt - now) / 1000));
  return [`${SHARE_COOKIE}=${token}`, 'Path=/', `Expires=${new Date(expiresAt).toUTCString()}`, `Max-Age=${maxAge}`, 'Secure', 'HttpOnly', 'SameSite=Lax'].join('; ');
}
