import { createPrivateKey, sign } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { generateShareKey, importSharePublicKey, sharePublicKey, signShareToken, verifyShareToken } from './share-link.ts';

const key = generateShareKey();
const publicKey = importSharePublicKey(sharePublicKey(key));
const now = 1_700_000_000_000;

describe('share links', () => {
  it('verify until they expire', () => {
    const token = signShareToken(key, 'dev-k3x9ab', now + 60_000);
    expect(verifyShareToken(token, publicKey, 'dev-k3x9ab', now)).toEqual({ ok: true, expiresAt: now + 60_000 });
    expect(verifyShareToken(token, publicKey, 'dev-k3x9ab', now + 60_000)).toEqual({ ok: false, reason: 'expired' });
  });
  it('are bound to one host label', () => {
    const token = signShareToken(key, 'dev-k3x9ab', now + 60_000);
    expect(verifyShareToken(token, publicKey, 'api-k3x9ab', now)).toEqual({ ok: false, reason: 'wrong-host' });
  });
  it('refuse another key, a changed payload and a changed signature', () => {
    const token = signShareToken(key, 'dev-k3x9ab', now + 60_000);
    const otherKey = importSharePublicKey(sharePublicKey(generateShareKey()));
    expect(verifyShareToken(token, otherKey, 'dev-k3x9ab', now)).toEqual({ ok: false, reason: 'bad-signature' });
    const [payload, signature] = token.split('.');
    const longer = Buffer.from(JSON.stringify({ v: 1, h: 'dev-k3x9ab', exp: now + 10 ** 9 })).toString('base64url');
    expect(verifyShareToken(`${longer}.${signature}`, publicKey, 'dev-k3x9ab', now)).toEqual({ ok: false, reason: 'bad-signature' });
    const flipped = Buffer.from(signature, 'base64url');
    flipped[0] ^= 1;
    expect(verifyShareToken(`${payload}.${flipped.toString('base64url')}`, publicKey, 'dev-k3x9ab', now)).toEqual({ ok: false, reason: 'bad-signature' });
  });
  it.each(['', 'abc', 'a.b.c', 'a.b', `x.${'A'.repeat(86)}`, 'y'.repeat(2000)])('call %j malformed', (token) => {
    expect(verifyShareToken(token, publicKey, 'dev-k3x9ab', now)).toMatchObject({ ok: false });
  });
  it('refuse a validly signed payload of the wrong shape', () => {
    const payload = Buffer.from(JSON.stringify({ h: 'dev-k3x9ab', exp: now + 1000 })).toString('base64url');
    const signature = sign(null, Buffer.from(payload), createPrivateKey(key)).toString('base64url');
    expect(verifyShareToken(`${payload}.${signature}`, publicKey, 'dev-k3x9ab', now)).toEqual({ ok: false, reason: 'malformed' });
  });
  it('publish a 43-character public key', () => {
    expect(sharePublicKey(key)).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });
});
