import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { DigestSet } from './digest-set.ts';

const sha = (text: string) => createHash('sha256').update(text).digest('hex');

describe('DigestSet', () => {
  const set = new DigestSet([
    [sha('live'), 'live'],
    [sha('old'), 'revoked'],
  ] as const);

  it('finds a member by hex or by raw digest', () => {
    expect(set.find(sha('live'))).toBe('live');
    expect(set.find(Buffer.from(sha('old'), 'hex'))).toBe('revoked');
    expect(set.has(sha('live'))).toBe(true);
  });
  it('answers undefined for strangers and for anything not shaped like a digest', () => {
    expect(set.find(sha('nope'))).toBeUndefined();
    for (const odd of ['', 'abc', sha('live').toUpperCase(), sha('live').slice(0, 62), `${sha('live')}00`]) expect(set.find(odd)).toBeUndefined();
    expect(set.find(Buffer.alloc(31))).toBeUndefined();
  });
  it('ignores malformed members, and an empty set holds nothing', () => {
    expect(new DigestSet([['xyz', true]]).size).toBe(0);
    expect(new DigestSet().has(sha('a'))).toBe(false);
  });
  it('the first of two equal members wins', () => {
    expect(new DigestSet([[sha('a'), 1], [sha('a'), 2]]).find(sha('a'))).toBe(1);
  });
});
