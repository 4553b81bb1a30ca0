/**
 * Access tokens for `sprite`-mode URLs. The daemon publishes only their sha256 hashes; the relay hashes
 * a presented bearer token and looks the digest up, so it can check a credential it never stores.
 * sha256 without a salt is right here: the tokens are 256-bit random strings, not passwords. The
 * lookup is constant-time (relay/digest-set.ts).
 */
import { createHash, randomBytes } from 'node:crypto';
import type { DigestSet } from './digest-set.ts';

export function generateAccessToken(): string {
  return `sat_${randomBytes(32).toString('base64url')}`;
}

export function hashAccessToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** The bearer token in an Authorization header, or null. */
export function bearerToken(authorization: string | undefined): string | null {
  if (!authorization) return null;
  const match = /^\s*bearer\s+(\S+)\s*$/i.exec(authorization);
  return match ? match[1] : null;
}

/** Whether `token` hashes to one of `hashes`. */
export function accessTokenMatches(token: string | null, hashes: DigestSet<unknown>): boolean {
  if (token === null || token.length > 512) return false;
  return hashes.has(createHash('sha256').update(token, 'utf8').digest());
}
