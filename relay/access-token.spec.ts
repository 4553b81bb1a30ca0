import { describe, expect, it } from 'vitest';
import { DigestSet } from './digest-set.ts';
import { accessTokenMatches, bearerToken, generateAccessToken, hashAccessToken } from './access-token.ts';

describe('bearerToken', () => {
  it.each([
    ['Bearer abc', 'abc'],
    ['bearer   abc  ', 'abc'],
    ['BEARER abc', 'abc'],
    ['Basic abc', null],
    ['Bearer', null],
    ['Bearer a b', null],
    [undefined, null],
  ])('%j → %j', (header, expected) => expect(bearerToken(header)).toBe(expected));
});

describe('accessTokenMatches', () => {
  const token = generateAccessToken();
  const hashes = new DigestSet([[hashAccessToken(token), true]]);
  it('matches a token whose hash was published', () => expect(accessTokenMatches(token, hashes)).toBe(true));
  it('refuses other tokens, no token, no hashes and absurdly long input', () => {
    expect(accessTokenMatches(generateAccessToken(), hashes)).toBe(false);
    expect(accessTokenMatches(null, hashes)).toBe(false);
    expect(accessTokenMatches(token, new DigestSet())).toBe(false);
    expect(accessTokenMatches('x'.repeat(513), new DigestSet([[hashAccessToken('x'.repeat(513)), true]]))).toBe(false);
  });
  it('never matches the hash itself used as a token', () => {
    expect(accessTokenMatches(hashAccessToken(token), hashes)).toBe(false);
  });
});
