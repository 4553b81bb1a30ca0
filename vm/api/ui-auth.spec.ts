import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { endedMessage, sessionVerdict, UI_LIMITS, UiAuth, type UiAuthOptions } from './ui-auth.ts';
import { parseP256Key, verifyP256 } from './ui-identity.ts';
import { CLOSE_UNAUTHENTICATED, identityMessage, resumeMessage, tokenFromSubprotocols } from './ui-protocol.ts';

const HOST = '127.0.0.1:4567';
const H = 3600_000;
const made: UiAuth[] = [];
afterEach(() => {
  for (const a of made.splice(0)) a.close();
});

function dir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'uiauth-'));
  fs.chmodSync(d, 0o700);
  return d;
}

function auth(d = dir(), opts: Partial<UiAuthOptions> & { clock?: { t: number } } = {}): UiAuth {
  const clock = opts.clock;
  const a = new UiAuth({ sessionsFile: path.join(d, 'ui-sessions.json'), now: clock ? () => clock.t : undefined, ...opts });
  made.push(a);
  return a;
}

/** What the page does with WebCrypto, done with Node's crypto: a P-256 key pair. */
function pageKey() {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return {
    spki: publicKey.export({ type: 'spki', format: 'der' }).toString('base64url'),
    sign: (m: string) => crypto.sign('sha256', Buffer.from(m), { key: privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url'),
  };
}
const nonce = () => crypto.randomBytes(24).toString('base64url');

function login(a: UiAuth, key = pageKey()) {
  const { code } = a.mintCode();
  const n = nonce();
  return { key, nonce: n, answer: a.login({ code, key: key.spki, nonce: n }, HOST) };
}

function resume(a: UiAuth, session: string, key: { sign(m: string): string }, host = HOST) {
  const { challenge } = a.answerIdentity({ nonce: nonce() }, host);
  return a.resume({ session, challenge, signature: key.sign(resumeMessage({ host, session, challenge })) }, host);
}

describe('login', () => {
  it("trades a code once for a session and a token, with the daemon's signature over the page's nonce and this host", () => {
    const a = auth();
    const { code } = a.mintCode();
    const key = pageKey();
    const n = nonce();
    const ans = a.login({ code, key: key.spki, nonce: n }, HOST);
    expect(ans).toMatchObject({ host: HOST, instance: a.instance, daemonKey: a.identity.publicKey });
    const daemonKey = parseP256Key(ans.daemonKey)!;
    expect(verifyP256(daemonKey, identityMessage({ host: HOST, instance: ans.instance, nonce: n, challenge: ans.challenge }), ans.signature)).toBe(true);
    expect(a.authenticate(ans.token, HOST)).toEqual({ ok: true, session: ans.session });
    expect(() => a.login({ code, key: key.spki, nonce: nonce() }, HOST)).toThrow(/used up or expired/);
    expect(() => a.login({ code: 'made-up', key: key.spki, nonce: nonce() }, HOST)).toThrow(/used up or expired/);
  });

  it('refuses malformed requests and keys that are not P-256, before spending the code', () => {
    const a = auth();
    const { code } = a.mintCode();
    const rsa = crypto.generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ type: 'spki', format: 'der' }).toString('base64url');
    expect(() => a.login({ code, key: rsa, nonce: nonce() }, HOST)).toThrow(/P-256/);
    expect(() => a.login({ code, key: 'AAAA', nonce: nonce() }, HOST)).toThrow(/P-256/);
    expect(() => a.login({ code, key: pageKey().spki, nonce: 'short' }, HOST)).toThrow(/Invalid login request: nonce/);
    expect(() => a.login({ code, key: pageKey().spki, nonce: nonce(), extra: 1 }, HOST)).toThrow(/Invalid login request/);
    expect(() => a.login('not an object', HOST)).toThrow(/Invalid login request/);
    expect(a.login({ code, key: pageKey().spki, nonce: nonce() }, HOST).token).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it('a code expires after two minutes', () => {
    const clock = { t: 1_000_000 };
    const a = auth(dir(), { clock });
    const { code } = a.mintCode();
    clock.t += UI_LIMITS.codeTtlMs;
    expect(() => a.login({ code, key: pageKey().spki, nonce: nonce() }, HOST)).toThrow(/used up or expired/);
  });
});

describe('the identity check', () => {
  it('signs the nonce, host and instance; a tampered answer, another host or another key does not verify', () => {
    const a = auth();
    const n = nonce();
    const ans = a.answerIdentity({ nonce: n }, HOST);
    const key = parseP256Key(a.identity.publicKey)!;
    const msg = identityMessage({ host: HOST, instance: a.instance, nonce: n, challenge: ans.challenge });
    expect(verifyP256(key, msg, ans.signature)).toBe(true);
    expect(verifyP256(key, identityMessage({ host: '127.0.0.1:9999', instance: a.instance, nonce: n, challenge: ans.challenge }), ans.signature)).toBe(false);
    expect(verifyP256(key, identityMessage({ host: HOST, instance: a.instance, nonce: nonce(), challenge: ans.challenge }), ans.signature)).toBe(false);
    const flipped = Buffer.from(ans.signature, 'base64url');
    flipped[10] ^= 1;
    expect(verifyP256(key, msg, flipped.toString('base64url'))).toBe(false);
    expect(verifyP256(key, msg, 'AAAA')).toBe(false);
    expect(verifyP256(parseP256Key(auth().identity.publicKey)!, msg, ans.signature)).toBe(false);
    expect(() => a.answerIdentity({ nonce: 'x\ny' }, HOST)).toThrow(/Invalid login request/);
  });

  it('the installation key is one per data dir, kept 0600, and survives a restart', () => {
    const d = dir();
    const first = auth(d).identity.publicKey;
    expect(fs.statSync(path.join(d, 'ui-identity.pem')).mode & 0o777).toBe(0o600);
    expect(auth(d).identity.publicKey).toBe(first);
    expect(auth().identity.publicKey).not.toBe(first);
  });
});

describe('tokens and resume', () => {
  it('a token is only for the host it was issued on, and dies with the daemon process; the page resumes with its key', () => {
    const d = dir();
    const a = auth(d);
    const { key, answer } = login(a);
    expect(a.authenticate(answer.token, 'localhost:4567')).toEqual({ ok: false, reason: 'moved' });
    expect(a.authenticate(null, HOST)).toEqual({ ok: false, reason: 'unknown' });
    expect(a.authenticate('made-up', HOST)).toEqual({ ok: false, reason: 'unknown' });
    a.close();
    const b = auth(d); // the daemon restarted
    expect(b.instance).not.toBe(a.instance);
    expect(b.authenticate(answer.token, HOST)).toEqual({ ok: false, reason: 'unknown' });
    const r = resume(b, answer.session, key);
    expect(r.instance).toBe(b.instance);
    expect(b.authenticate(r.token, HOST)).toEqual({ ok: true, session: answer.session });
  });

  it('a resume needs a fresh single-use challenge, this host, and a signature by the session key', () => {
    const clock = { t: 5_000_000 };
    const a = auth(dir(), { clock });
    const { key, answer } = login(a);
    const { challenge } = a.answerIdentity({ nonce: nonce() }, HOST);
    const sig = (k: { sign(m: string): string }, host = HOST, c = challenge) => k.sign(resumeMessage({ host, session: answer.session, challenge: c }));
    expect(() => a.resume({ session: answer.session, challenge, signature: sig(pageKey()) }, HOST)).toThrow(/did not verify/);
    // The challenge was spent by that attempt.
    expect(() => a.resume({ session: answer.session, challenge, signature: sig(key) }, HOST)).toThrow(/challenge is unknown or expired/);
    const c2 = a.answerIdentity({ nonce: nonce() }, HOST).challenge;
    expect(() => a.resume({ session: answer.session, challenge: c2, signature: sig(key, '127.0.0.1:9999', c2) }, HOST)).toThrow(/did not verify/);
    const c3 = a.answerIdentity({ nonce: nonce() }, HOST).challenge;
    clock.t += UI_LIMITS.challengeTtlMs;
    expect(() => a.resume({ session: answer.session, challenge: c3, signature: sig(key, HOST, c3) }, HOST)).toThrow(/challenge is unknown or expired/);
    expect(() => resume(a, answer.session, key, '127.0.0.1:9999')).toThrow(/another port/);
    expect(() => resume(a, 'A'.repeat(24), key)).toThrow(/Logged out/);
    expect(a.authenticate(resume(a, answer.session, key).token, HOST).ok).toBe(true);
  });
});

describe('expiry', () => {
  it('the pure rule: at most 7 days after login; 12 hours without use unless a window is connected', () => {
    const s = { createdAt: 0, lastUsedAt: 0 };
    expect(sessionVerdict(s, 12 * H - 1, false)).toBe('ok');
    expect(sessionVerdict(s, 12 * H, false)).toBe('idle');
    expect(sessionVerdict(s, 12 * H, true)).toBe('ok');
    expect(sessionVerdict({ createdAt: 0, lastUsedAt: 7 * 24 * H - 1 }, 7 * 24 * H - 1, false)).toBe('ok');
    expect(sessionVerdict({ createdAt: 0, lastUsedAt: 7 * 24 * H - 1 }, 7 * 24 * H, true)).toBe('max-age');
    expect(endedMessage('idle')).toBe('Logged out: this login was not used for 12 hours. Run `spritely ui` to log in again.');
    expect(endedMessage('max-age')).toMatch(/a login lasts 7 days/);
    expect(endedMessage('moved')).toMatch(/another port/);
  });

  it('an idle session ends; use and open sockets keep it alive', () => {
    const clock = { t: 10 * H };
    const a = auth(dir(), { clock });
    const idle = login(a).answer;
    const used = login(a).answer;
    const connected = login(a).answer;
    const closed: unknown[] = [];
    const detach = a.attach(connected.session, (code, reason) => closed.push([code, reason]));
    clock.t += 11 * H;
    expect(a.authenticate(used.token, HOST).ok).toBe(true);
    clock.t += 2 * H;
    expect(a.authenticate(idle.token, HOST)).toEqual({ ok: false, reason: 'idle' });
    expect(a.authenticate(idle.token, HOST)).toEqual({ ok: false, reason: 'unknown' }); // it is gone now
    expect(a.authenticate(used.token, HOST).ok).toBe(true);
    clock.t += 20 * H;
    a.sweep();
    expect(a.authenticate(used.token, HOST)).toEqual({ ok: false, reason: 'unknown' });
    expect(a.authenticate(connected.token, HOST).ok).toBe(true);
    detach(); // the window closed: idle counts from now
    clock.t += 12 * H;
    a.sweep();
    expect(a.authenticate(connected.token, HOST).ok).toBe(false);
    expect(closed).toEqual([]);
  });

  it('a 7-day-old session ends even while connected: its sockets are closed with 4401', () => {
    const clock = { t: 0 };
    const a = auth(dir(), { clock });
    const { key, answer } = login(a);
    const closed: unknown[] = [];
    a.attach(answer.session, (code, reason) => closed.push([code, reason]));
    for (let day = 1; day < 7; day++) {
      clock.t = day * 24 * H;
      a.sweep();
      expect(a.authenticate(answer.token, HOST).ok).toBe(true);
    }
    clock.t = 7 * 24 * H;
    a.sweep();
    expect(closed).toEqual([[CLOSE_UNAUTHENTICATED, 'session ended (max-age)']]);
    expect(a.authenticate(answer.token, HOST).ok).toBe(false);
    expect(() => resume(a, answer.session, key)).toThrow(/Logged out/);
  });

  it('expired sessions are dropped when a restarted daemon loads them', () => {
    const d = dir();
    const clock = { t: 0 };
    const a = auth(d, { clock });
    const old = login(a);
    clock.t = 6 * H;
    const fresh = login(a);
    a.close();
    clock.t = 13 * H;
    const b = auth(d, { clock });
    expect(b.sessionCount).toBe(1);
    expect(() => resume(b, old.answer.session, old.key)).toThrow(/Logged out/);
    expect(resume(b, fresh.answer.session, fresh.key).token).toBeTruthy();
  });
});

describe('revocation', () => {
  it('logoutAll ends every session, closes their sockets, and voids pending login pages', () => {
    const d = dir();
    const a = auth(d);
    const one = login(a);
    const two = login(a);
    const closed: unknown[] = [];
    a.attach(one.answer.session, (code, reason) => closed.push([code, reason]));
    a.attach(two.answer.session, (code, reason) => closed.push([code, reason]));
    const pending = a.loginFile((code) => `http://${HOST}/#login=${code}`);
    expect(fs.existsSync(pending.path)).toBe(true);
    expect(a.logoutAll()).toBe(2);
    expect(closed).toEqual([
      [CLOSE_UNAUTHENTICATED, 'logged out'],
      [CLOSE_UNAUTHENTICATED, 'logged out'],
    ]);
    expect(fs.existsSync(pending.path)).toBe(false);
    expect(a.authenticate(one.answer.token, HOST).ok).toBe(false);
    expect(() => resume(a, two.answer.session, two.key)).toThrow(/Logged out/);
    expect(auth(d).sessionCount).toBe(0); // on disk too
  });
});

describe('files', () => {
  it('sessions are kept 0600 with public keys and times only: nothing on disk logs anyone in', () => {
    const d = dir();
    const a = auth(d);
    const { answer, key } = login(a);
    const file = path.join(d, 'ui-sessions.json');
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    const text = fs.readFileSync(file, 'utf8');
    expect(text).not.toContain(answer.token);
    expect(JSON.parse(text)).toEqual({ version: 2, sessions: [{ id: answer.session, key: key.spki, host: HOST, createdAt: expect.any(Number), lastUsedAt: expect.any(Number) }] });
  });

  it('drops sessions saved by earlier versions (hashes that never expired)', () => {
    const d = dir();
    fs.writeFileSync(path.join(d, 'ui-sessions.json'), JSON.stringify(['a'.repeat(64)]), { mode: 0o600 });
    const logs: string[] = [];
    const a = auth(d, { log: (m) => logs.push(m) });
    expect(a.sessionCount).toBe(0);
    expect(logs.join()).toMatch(/old format/);
    expect(JSON.parse(fs.readFileSync(path.join(d, 'ui-sessions.json'), 'utf8'))).toEqual({ version: 2, sessions: [] });
  });

  it('a login page is 0600 in a 0700 dir, carries the code only in the URL fragment, and is removed once redeemed', () => {
    const a = auth();
    let minted = '';
    const { path: file, expiresAt } = a.loginFile((code) => ((minted = code), `http://${HOST}/#login=${code}`));
    expect(Date.parse(expiresAt) - Date.now()).toBeGreaterThan(UI_LIMITS.codeTtlMs - 5000);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(fs.statSync(path.dirname(file)).mode & 0o777).toBe(0o700);
    expect(path.basename(file)).not.toContain(minted);
    const html = fs.readFileSync(file, 'utf8');
    expect(html).toContain(`content="0;url=http://${HOST}/#login=${minted}"`);
    expect(html).not.toMatch(/[?&]code=/);
    a.login({ code: minted, key: pageKey().spki, nonce: nonce() }, HOST);
    expect(fs.existsSync(file)).toBe(false);
  });

  it('an unused login page is removed when its code expires, and leftovers when the daemon starts', async () => {
    const d = dir();
    const a = auth(d, { limits: { codeTtlMs: 50 } });
    const { path: file } = a.loginFile((c) => `http://${HOST}/#login=${c}`);
    await new Promise((r) => setTimeout(r, 120));
    expect(fs.existsSync(file)).toBe(false);
    const left = a.loginFile((c) => `http://${HOST}/#login=${c}`).path;
    fs.copyFileSync(left, `${left}.copy`); // not ours: kept
    fs.copyFileSync(left, path.join(path.dirname(left), 'login-leftover.html'));
    auth(d);
    expect(fs.readdirSync(path.dirname(left)).sort()).toEqual([`${path.basename(left)}.copy`]);
  });
});

describe('protocol', () => {
  it('finds the token among offered WebSocket subprotocols', () => {
    expect(tokenFromSubprotocols('spritely.ui.v1, spritely.token.abc_-1')).toBe('abc_-1');
    expect(tokenFromSubprotocols('spritely.ui.v1')).toBeNull();
    expect(tokenFromSubprotocols('spritely.token.')).toBeNull();
    expect(tokenFromSubprotocols(undefined)).toBeNull();
  });
});
