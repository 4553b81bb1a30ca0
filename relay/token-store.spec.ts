import { mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { addAccountToken, emptyTokenFile, readTokenFile, revokeAccount, TokenIndex, writeTokenFile } from './token-store.ts';
import { hashTunnelToken, parseTunnelToken } from './tunnel-token.ts';

const now = new Date('2026-01-01T00:00:00Z');

describe('token file edits', () => {
  it('add stores only the hash, with a suffix the token carries', () => {
    const { file, token, account } = addAccountToken(emptyTokenFile(), 'laptop', now);
    expect(JSON.stringify(file)).not.toContain(token);
    expect(account.tokenHash).toBe(hashTunnelToken(token));
    expect(parseTunnelToken(token)?.suffix).toBe(account.suffix);
  });
  it('refuses a second live token for an account and bad names', () => {
    const { file } = addAccountToken(emptyTokenFile(), 'laptop', now);
    expect(() => addAccountToken(file, 'laptop', now)).toThrow(/revoke it first/);
    expect(() => addAccountToken(file, 'bad name', now)).toThrow(/invalid account name/);
  });
  it('gives each account a unique suffix', () => {
    const suffixes = ['aaaaaa', 'aaaaaa', 'bbbbbb'];
    const first = addAccountToken(emptyTokenFile(), 'a', now, () => suffixes.shift()!);
    const second = addAccountToken(first.file, 'b', now, () => suffixes.shift()!);
    expect(second.account.suffix).toBe('bbbbbb');
  });
  it('re-issuing after a revoke keeps the suffix (URLs stay stable) and forgets nothing revoked', () => {
    const first = addAccountToken(emptyTokenFile(), 'laptop', now);
    const revoked = revokeAccount(first.file, 'laptop', now);
    expect(revoked.accounts[0]).toMatchObject({ tokenHash: null, revokedAt: now.toISOString(), revokedHashes: [first.account.tokenHash] });
    const again = addAccountToken(revoked, 'laptop', now);
    expect(again.account.suffix).toBe(first.account.suffix);
    expect(again.token).not.toBe(first.token);
    const index = new TokenIndex(again.file);
    expect(index.lookup(hashTunnelToken(again.token)).kind).toBe('ok');
    expect(index.lookup(hashTunnelToken(first.token)).kind).toBe('revoked');
    expect(index.lookup(hashTunnelToken('nope')).kind).toBe('unknown');
    expect(index.isLive(hashTunnelToken(first.token))).toBe(false);
  });
  it('revoke refuses unknown and already revoked accounts', () => {
    const { file } = addAccountToken(emptyTokenFile(), 'laptop', now);
    expect(() => revokeAccount(file, 'other', now)).toThrow(/no account/);
    expect(() => revokeAccount(revokeAccount(file, 'laptop', now), 'laptop', now)).toThrow(/already revoked/);
  });
});

describe('token file I/O', () => {
  it('writes atomically with mode 0600 and reads back; a missing file is empty', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'spritely-tokens-'));
    try {
      const file = path.join(dir, 'tokens.json');
      expect(readTokenFile(file)).toEqual(emptyTokenFile());
      const { file: data } = addAccountToken(emptyTokenFile(), 'laptop', now);
      writeTokenFile(file, data);
      expect(statSync(file).mode & 0o777).toBe(0o600);
      expect(readTokenFile(file)).toEqual(data);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
