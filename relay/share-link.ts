/**
 * Share links: `?spritely_share=<payload>.<signature>` grants access to one publication of one sprite
 * host until an expiry. The daemon signs with an Ed25519 private key that never leaves it and
 * publishes the public key; the relay verifies, then swaps the link for an HttpOnly cookie holding the
 * same signed token (so the relay keeps no session state and a relay restart logs nobody out).
 *
 * Every publication carries a fresh random publication id, and a token names the id it was signed
 * for: unpublishing, re-publishing (or destroying and re-creating a sprite under the same name) and
 * `spritely url NAME --revoke-links` all give the sprite a new id, and every earlier link and cookie
 * stops working at once. Rotating the key revokes every link of every sprite.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, sign, verify, type KeyObject } from 'node:crypto';
import { z } from 'zod';

/** 128 random bits, base64url (22 characters); the relay accepts 22–64 characters of base64url. */
export const PUBLICATION_ID_PATTERN = /^[A-Za-z0-9_-]{22,64}$/;

const payloadSchema = z.object({ v: z.literal(2), h: z.string(), p: z.string(), exp: z.number().int() });

/** What a token must name to open a host now: its label (`dev-k3x9ab`) and current publication id. */
export interface ShareTarget {
  label: string;
  publicationId: string;
}

export type ShareCheck =
  | { ok: true; expiresAt: number }
  | { ok: false; reason: 'malformed' | 'bad-signature' | 'wrong-host' | 'revoked' | 'expired' };

export function generatePublicationId(): string {
  return randomBytes(16).toString('base64url');
}

export function generateShareKey(): string {
  return generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
}

/** The public half of a PKCS#8 PEM Ed25519 key as the 43-char base64url string the relay stores. */
export function sharePublicKey(privateKeyPem: string): string {
  const jwk = createPublicKey(createPrivateKey(privateKeyPem)).export({ format: 'jwk' });
  if (jwk.crv !== 'Ed25519' || typeof jwk.x !== 'string') throw new Error('share key must be an Ed25519 key');
  return jwk.x;
}

export function importSharePublicKey(x: string): KeyObject {
  return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x }, format: 'jwk' });
}

/** Signs a share token for one publication of a host label, valid until `expiresAt` (ms). */
export function signShareToken(privateKey: KeyObject | string, target: ShareTarget, expiresAt: number): string {
  const key = typeof privateKey === 'string' ? createPrivateKey(privateKey) : privateKey;
  const payload = Buffer.from(JSON.stringify({ v: 2, h: target.label, p: target.publicationId, exp: Math.floor(expiresAt) })).toString('base64url');
  const signature = sign(null, Buffer.from(payload), key).toString('base64url');
  return `${payload}.${signature}`;
}

export function verifyShareToken(token: string, publicKey: KeyObject, target: ShareTarget, now: number): ShareCheck {
  if (token.length > 1024) return { ok: false, reason: 'malformed' };
  const dot = token.indexOf('.');
  if (dot <= 0 || token.indexOf('.', dot + 1) !== -1) return { ok: false, reason: 'malformed' };
  const payloadPart = token.slice(0, dot);
  const signature = Buffer.from(token.slice(dot + 1), 'base64url');
  if (signature.length !== 64) return { ok: false, reason: 'malformed' };
  if (!verify(null, Buffer.from(payloadPart), publicKey, signature)) return { ok: false, reason: 'bad-signature' };
  let payload: z.infer<typeof payloadSchema>;
  try {
    payload = payloadSchema.parse(JSON.parse(Buffer.from(payloadPart, 'base64url').toString('utf8')));
  } catch {
    return { ok: false, reason: 'malformed' };
  }
  if (payload.h !== target.label) return { ok: false, reason: 'wrong-host' };
  if (payload.p !== target.publicationId) return { ok: false, reason: 'revoked' };
  if (payload.exp <= now) return { ok: false, reason: 'expired' };
  return { ok: true, expiresAt: payload.exp };
}
