import { createPrivateKey, sign } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { generatePublicationId, generateShareKey, importSharePublicKey, PUBLICATION_ID_PATTERN, sharePublicKey, signShareToken, verifyShareToken, type ShareTarget } from './share-link.ts';

const key = generateShareKey();
const publicKey = importSharePublicKey(sharePublicKey(key));
const now = 1_700_000_000_000;
const dev: ShareTarget = { label: 'dev-k3x9ab', publicationId: generatePublicationId() };

/** A payload signed with the right key, whatever it says. */
function signed(payload: unknown): string {
  const part = Buffer.from(JSON.stringify(payload)).toString('base64url');
  return `${part}.${sign(null, Buffer.from(part), createPrivateKey(key)).toString('base64url')}`;
}

describe('share links', () => {
  it('verify until they expire', () => {
    const token = signShareToken(key, dev, now + 60_000);
    expect(verifyShareToken(token, publicKey, dev, now)).toEqual({ ok: true, expiresAt: now + 60_000 });
    expect(verifyShareToken(token, publicKey, dev, now + 60_000)).toEqual({ ok: false, reason: 'expired' });
  });
  it('are bound to one host label', () => {
    const token = signShareToken(key, dev, now + 60_000);
    expect(verifyShareToken(token, publicKey, { ...dev, label: 'api-k3x9ab' }, now)).toEqual({ ok: false, reason: 'wrong-host' });
  });
  it('are bound to one publication: a new publication id revokes every earlier link', () => {
    const token = signShareToken(key, dev, now + 60_000);
    const republished = { ...dev, publicationId: generatePublicationId() };
    expect(verifyShareToken(token, publicKey, republished, now)).toEqual({ ok: false, reason: 'revoked' });
    expect(verifyShareToken(signShareToken(key, republished, now + 60_000), publicKey, republished, now)).toMatchObject({ ok: true });
    // A revoked link says "revoked" even after it would have expired anyway.
    expect(verifyShareToken(token, publicKey, republished, now + 120_000)).toEqual({ ok: false, reason: 'revoked' });
  });
  it('refuse a token without a publication id (the format before ids existed)', () => {
    expect(verifyShareToken(signed({ v: 1, h: dev.label, exp: now + 1000 }), publicKey, dev, now)).toEqual({ ok: false, reason: 'malformed' });
    expect(verifyShareToken(signed({ v: 2, h: dev.label, exp: now + 1000 }), publicKey, dev, now)).toEqual({ ok: false, reason: 'malformed' });
  });
  it('refuse another key, a changed payload and a changed signature', () => {
    const token = signShareToken(key, dev, now + 60_000);
    const otherKey = importSharePublicKey(sharePublicKey(generateShareKey()));
    expect(verifyShareToken(token, otherKey, dev, now)).toEqual({ ok: false, reason: 'bad-signature' });
    const [payload, signature] = token.split('.');
    const longer = Buffer.from(JSON.stringify({ v: 2, h: dev.label, p: dev.publicationId, exp: now + 10 ** 9 })).toString('base64url');
    expect(verifyShareToken(`${longer}.${signature}`, publicKey, dev, now)).toEqual({ ok: false, reason: 'bad-signature' });
    const flipped = Buffer.from(signature, 'base64url');
    flipped[0] ^= 1;
    expect(verifyShareToken(`${payload}.${flipped.toString('base64url')}`, publicKey, dev, now)).toEqual({ ok: false, reason: 'bad-signature' });
  });
  it.each(['', 'abc', 'a.b.c', 'a.b', `x.${'A'.repeat(86)}`, 'y'.repeat(2000)])('call %j malformed', (token) => {
    expect(verifyShareToken(token, publicKey, dev, now)).toMatchObject({ ok: false });
  });
  it('refuse a validly signed payload of the wrong shape', () => {
    expect(verifyShareToken(signed({ h: dev.label, exp: now + 1000 }), publicKey, dev, now)).toEqual({ ok: false, reason: 'malformed' });
    expect(verifyShareToken(signed({ v: 2, h: dev.label, p: dev.publicationId, exp: 'never' }), publicKey, dev, now)).toEqual({ ok: false, reason: 'malformed' });
  });
  it('publish a 43-character public key', () => {
    expect(sharePublicKey(key)).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });
  it('publication ids are 128 random bits the relay accepts', () => {
    const ids = new Set(Array.from({ length: 100 }, generatePublicationId));
    expect(ids.size).toBe(100);
    for (const id of ids) expect(id).toMatch(PUBLICATION_ID_PATTERN);
  });
});
