import { describe, expect, it } from 'vitest';
import { SUFFIX_PATTERN } from './host-routing.ts';
import { generateSuffix, generateTunnelToken, hashTunnelToken, parseTunnelToken, sameDigest, SUFFIX_LENGTH } from './tunnel-token.ts';

describe('tunnel tokens', () => {
  it('carry their suffix and 256 random bits', () => {
    const token = generateTunnelToken('k3x9ab');
    expect(token).toMatch(/^srt_k3x9ab_[A-Za-z0-9_-]{43}$/);
    expect(parseTunnelToken(token)).toEqual({ suffix: 'k3x9ab' });
    expect(generateTunnelToken('k3x9ab')).not.toBe(token);
  });
  it.each(['', 'srt_k3x9ab_short', 'xyz_k3x9ab_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', 'srt_K3X9AB_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', 'srt_ab_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'])('rejects %j', (token) => {
    expect(parseTunnelToken(token)).toBeNull();
  });
  it('hash to a stable sha256 hex digest', () => {
    expect(hashTunnelToken('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });
  it('compare digests in constant time, only equal lengths', () => {
    const digest = hashTunnelToken('abc');
    expect(sameDigest(digest, digest)).toBe(true);
    expect(sameDigest(digest, hashTunnelToken('abd'))).toBe(false);
    expect(sameDigest(digest, digest.slice(0, 62))).toBe(false);
    expect(sameDigest('', '')).toBe(false);
  });
  it('suffixes are short, lower-case and valid in host names', () => {
    for (let i = 0; i < 50; i += 1) {
      const suffix = generateSuffix();
      expect(suffix).toHaveLength(SUFFIX_LENGTH);
      expect(suffix).toMatch(SUFFIX_PATTERN);
    }
  });
});
