/**
 * A set of sha256 digests that answers membership in constant time: every lookup compares the
 * candidate with every member (`timingSafeEqual`, no early exit), so how long it takes says nothing
 * about whether — or with which member, live or revoked — it matched. The relay keeps tunnel-token and
 * access-token hashes in these, so an unauthenticated client cannot time its way to "this token was
 * revoked" or "this one is close". The cost grows with the set (tens of entries in practice).
 */
import { timingSafeEqual } from 'node:crypto';

const SHA256_HEX = /^[0-9a-f]{64}$/;

export class DigestSet<T = true> {
  private readonly entries: { digest: Buffer; value: T }[] = [];

  /** `entries`: lower-case sha256 hex digests with the value a match answers; others are ignored. */
  constructor(entries: Iterable<readonly [hex: string, value: T]> = []) {
    for (const [hex, value] of entries) {
      if (SHA256_HEX.test(hex)) this.entries.push({ digest: Buffer.from(hex, 'hex'), value });
    }
  }

  /** The value stored with `digest` (32 bytes, or lower-case hex), or undefined. */
  find(digest: Buffer | string): T | undefined {
    const candidate = typeof digest === 'string' ? (SHA256_HEX.test(digest) ? Buffer.from(digest, 'hex') : null) : digest;
    if (!candidate || candidate.length !== 32) return undefined;
    let found: T | undefined;
    for (const entry of this.entries) {
      const same = timingSafeEqual(entry.digest, candidate);
      if (same && found === undefined) found = entry.value;
    }
    return found;
  }

  has(digest: Buffer | string): boolean {
    return this.find(digest) !== undefined;
  }

  get size(): number {
    return this.entries.length;
  }
}
