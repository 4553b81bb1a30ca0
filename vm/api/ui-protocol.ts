/**
 * The browser UI's login protocol, shared word for word by the daemon (vm/api/ui-auth.ts) and the
 * page (renderer/src/daemon-auth.ts): the messages each side signs, the answers' shapes, and the
 * names that travel on WebSockets. Pure and free of Node and DOM imports, so both sides bundle it.
 *
 * Signatures are ECDSA P-256 with SHA-256 in IEEE P1363 form (r‖s), the one format Node's crypto
 * and every browser's WebCrypto share; keys travel as base64url SPKI. Every field a signed message
 * joins is base64url or a host the daemon checked, so the newline-joined form is unambiguous.
 */

/** Offered by the page on every WebSocket; the daemon answers with it (never with the token's). */
export const UI_SUBPROTOCOL = 'spritely.ui.v1';
/** The page's WebSocket carries its token as a second offered subprotocol: browsers cannot set headers there. */
export const TOKEN_SUBPROTOCOL_PREFIX = 'spritely.token.';
/** WebSocket close code: this window's token is not (or no longer) valid. */
export const CLOSE_UNAUTHENTICATED = 4401;

/** The page's answer to a login code: its public key (the private half never leaves the page's memory). */
export interface LoginRequest {
  code: string;
  key: string;
  nonce: string;
}

/** The daemon proves it holds the installation's private key, for this host and this nonce. */
export interface IdentityAnswer {
  /** `127.0.0.1:PORT` as the daemon listens on it: a relay on another port cannot answer for it. */
  host: string;
  /** Random per daemon process: tokens die with the process that issued them. */
  instance: string;
  /** Single-use, a minute long: what a resume must sign. */
  challenge: string;
  signature: string;
}

export interface LoginAnswer extends IdentityAnswer {
  /** The installation's public key (SPKI, base64url), pinned by the page. */
  daemonKey: string;
  session: string;
  token: string;
}

export interface ResumeRequest {
  session: string;
  challenge: string;
  signature: string;
}

export interface ResumeAnswer {
  token: string;
  instance: string;
}

export const B64URL = /^[A-Za-z0-9_-]+$/;

export function identityMessage(a: { host: string; instance: string; nonce: string; challenge: string }): string {
  return ['spritely-ui-identity/1', a.host, a.instance, a.nonce, a.challenge].join('\n');
}

export function resumeMessage(a: { host: string; session: string; challenge: string }): string {
  return ['spritely-ui-resume/1', a.host, a.session, a.challenge].join('\n');
}

export function toB64url(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

export function fromB64url(text: string): Uint8Array<ArrayBuffer> {
  if (!B64URL.test(text)) throw new TypeError('not base64url');
  const s = atob(text.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (text.length % 4)) % 4));
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

/** The token a page offers among its WebSocket subprotocols, or null. */
export function tokenFromSubprotocols(header: string | undefined): string | null {
  for (const p of (header ?? '').split(',')) {
    const t = p.trim();
    if (t.startsWith(TOKEN_SUBPROTOCOL_PREFIX)) return t.slice(TOKEN_SUBPROTOCOL_PREFIX.length) || null;
  }
  return null;
}
