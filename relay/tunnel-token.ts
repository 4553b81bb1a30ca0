/**
 * Tunnel tokens: the credential an installation's daemon presents to open its tunnel. The token
 * carries the account's public suffix (so the client can build its URLs before connecting) and 256
 * random bits; the relay's tokens file keeps only the sha256 of the whole token.
 */
import { createHash, randomBytes, randomInt, timingSafeEqual } from 'node:crypto';
import { SUFFIX_PATTERN } from './host-routing.ts';

const SUFFIX_ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';
export const SUFFIX_LENGTH = 6;

export function generateSuffix(): string {
  let suffix = '';
  for (let i = 0; i < SUFFIX_LENGTH; i += 1) suffix += SUFFIX_ALPHABET[randomInt(SUFFIX_ALPHABET.length)];
  return suffix;
}

export function generateTunnelToken(suffix: string): string {
  return `srt_${suffix}_${randomBytes(32).toString('base64url')}`;
}

/** The suffix a token claims, or null when the token is not shaped like one of ours. */
export function parseTunnelToken(token: string): { suffix: string } | null {
  const match = /^srt_([a-z0-9]+)_([A-Za-z0-9_-]{43})$/.exec(token);
  if (!match || !SUFFIX_PATTERN.test(match[1])) return null;
  return { suffix: match[1] };
}

export function hashTunnelToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** Constant-time comparison of two hex digests of equal length. */
export function sameDigest(a: string, b: string): boolean {
  const left = Buffer.from(a, 'hex');
  const right = Buffer.from(b, 'hex');
  return left.length === right.length && left.length > 0 && timingSafeEqual(left, right);
}
