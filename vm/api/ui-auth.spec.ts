import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readCookie, UiAuth } from './ui-auth.ts';

const tmp = () => path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'uiauth-')), 'sessions.json');
const req = (cookie?: string) => ({ headers: cookie ? { cookie } : {} }) as any;

describe('UiAuth', () => {
  it('exchanges a code once for a session that the cookie then proves', () => {
    const auth = new UiAuth(tmp());
    const code = auth.mintCode();
    const token = auth.redeem(code)!;
    expect(token).toMatch(/^[A-Za-z0-9_-]{40,}$/);
    expect(auth.redeem(code)).toBeNull();
    expect(auth.hasSession(req(`a=b; spritely_session=${token}`))).toBe(true);
    expect(auth.hasSession(req(`spritely_session=${token}x`))).toBe(false);
    expect(auth.hasSession(req())).toBe(false);
    expect(auth.sessionCookie(token)).toMatch(/HttpOnly; SameSite=Strict; Path=\//);
  });

  it('refuses unknown codes and keeps only hashes on disk, surviving a restart', () => {
    const file = tmp();
    const auth = new UiAuth(file);
    expect(auth.redeem('made-up')).toBeNull();
    const token = auth.redeem(auth.mintCode())!;
    const onDisk = fs.readFileSync(file, 'utf8');
    expect(onDisk).not.toContain(token);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(new UiAuth(file).hasSession(req(`spritely_session=${token}`))).toBe(true);
  });

  it('reads cookies exactly', () => {
    expect(readCookie(req('x=1; spritely_session=abc=; y=2'), 'spritely_session')).toBe('abc=');
    expect(readCookie(req('xspritely_session=abc'), 'spritely_session')).toBeNull();
  });
});
