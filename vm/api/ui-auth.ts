/**
 * Browser-mode access to the daemon. A browser cannot use the owner-only unix socket, so the
 * daemon also listens on 127.0.0.1; no web page, no sprite and no other local user may drive it.
 *
 * - **Login**: a one-time code (two minutes) minted over the unix socket reaches the page in a
 *   0600 login file's URL fragment (never argv, never a query string). The page generates an
 *   ECDSA key pair whose private half stays in its memory (non-extractable) and trades the code
 *   plus its public key for a *session* (remembered in a 0600 file: public key and times only) and
 *   a *token*.
 * - **Token**: a bearer for HTTP and WebSockets, kept by the page in localStorage so a reload
 *   stays logged in. Tokens live only in this daemon process's memory: one sent to a squatter on
 *   the port while the daemon is down is dead, and the daemon holds the port while it runs.
 * - **Identity**: before each (re)connect the page has the daemon sign its nonce with the
 *   installation's key (vm/api/ui-identity.ts); a wrong answer → "not your daemon", nothing sent.
 * - **Resume**: after a daemon restart the page signs a fresh challenge with its private key for
 *   a new token — the proof is bound to this host and challenge, so it is useless to anyone else.
 * - **Expiry**: a session ends 7 days after login (absolute) or after 12 hours with no window
 *   connected and no request (idle); `logoutAll` ends every one at once and closes their sockets.
 *
 * No cookie at all: a cookie goes to every port of its host, squatters' included (docs/ui.md).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import writeFileAtomic from 'write-file-atomic';
import { z } from 'zod';
import { SpritelyError } from '../errors.ts';
import { loadOrCreateIdentity, parseP256Key, verifyP256, type Identity } from './ui-identity.ts';
import { loginPage, removeLoginFile, sweepLoginFiles, writeLoginFile } from './ui-login-file.ts';
import { B64URL, CLOSE_UNAUTHENTICATED, identityMessage, resumeMessage, type IdentityAnswer, type LoginAnswer, type ResumeAnswer } from './ui-protocol.ts';

export const UI_LIMITS = {
  codeTtlMs: 2 * 60_000,
  challengeTtlMs: 60_000,
  /** No window connected and no request for this long: the session ends (a closed, forgotten tab). */
  idleMs: 12 * 3600_000,
  /** A session ends this long after its login, connected or not (Electron logs in again by itself). */
  maxAgeMs: 7 * 24 * 3600_000,
  maxSessions: 50,
  maxCodes: 100,
  maxChallenges: 1000,
  /** How often `lastUsedAt` of busy sessions reaches the disk. */
  persistEveryMs: 5 * 60_000,
};
export type UiLimits = typeof UI_LIMITS;

export interface StoredSession {
  id: string;
  /** The page's public key (SPKI, base64url): the only way to resume this session. */
  key: string;
  /** `127.0.0.1:PORT` it was made for; on another port it cannot be resumed. */
  host: string;
  createdAt: number;
  lastUsedAt: number;
}

export type SessionEnd = 'idle' | 'max-age' | 'unknown' | 'moved';

/** Whether a session may still be used; `connected` = a window of it holds a socket open now. */
export function sessionVerdict(s: Pick<StoredSession, 'createdAt' | 'lastUsedAt'>, now: number, connected: boolean, limits: UiLimits = UI_LIMITS): 'ok' | 'idle' | 'max-age' {
  if (now - s.createdAt >= limits.maxAgeMs) return 'max-age';
  if (!connected && now - s.lastUsedAt >= limits.idleMs) return 'idle';
  return 'ok';
}

const hours = (ms: number) => (ms % 3600_000 === 0 ? `${ms / 3600_000} hours` : `${Math.round(ms / 60_000)} minutes`);
const days = (ms: number) => (ms % 86400_000 === 0 ? `${ms / 86400_000} days` : hours(ms));

/** What a logged-out window tells its user. */
export function endedMessage(reason: SessionEnd, limits: UiLimits = UI_LIMITS): string {
  const again = 'Run `spritely ui` to log in again.';
  switch (reason) {
    case 'idle':
      return `Logged out: this login was not used for ${hours(limits.idleMs)}. ${again}`;
    case 'max-age':
      return `Logged out: a login lasts ${days(limits.maxAgeMs)}. ${again}`;
    case 'moved':
      return `Logged out: the daemon now listens on another port than the one this window logged in to. ${again}`;
    case 'unknown':
      return `Logged out (\`spritely ui --logout-all\`, or this login ended). ${again}`;
  }
}

const Id = z.string().min(16).max(128).regex(B64URL);
const LoginBody = z.object({ code: z.string().min(1).max(200), key: z.string().min(1).max(400).regex(B64URL), nonce: Id }).strict();
const IdentityBody = z.object({ nonce: Id }).strict();
const ResumeBody = z.object({ session: Id, challenge: Id, signature: z.string().min(1).max(200).regex(B64URL) }).strict();
const Stored = z.object({ id: Id, key: z.string().max(400).regex(B64URL), host: z.string().max(100), createdAt: z.number(), lastUsedAt: z.number() });

const rand = (n: number) => crypto.randomBytes(n).toString('base64url');
const sha256 = (s: string) => crypto.createHash('sha256').update(s).digest('hex');

function parse<T extends z.ZodType>(schema: T, body: unknown): z.infer<T> {
  const r = schema.safeParse(body);
  if (!r.success) throw new SpritelyError('invalid_argument', `Invalid login request: ${r.error.issues[0]?.path.join('.') || 'body'}: ${r.error.issues[0]?.message ?? 'invalid'}.`);
  return r.data;
}

export interface UiAuthOptions {
  /** Sessions (public keys and times: nothing in it logs anyone in), 0600. */
  sessionsFile: string;
  /** The installation's private key, 0600 (default: `ui-identity.pem` beside the sessions file). */
  identityFile?: string;
  /** Where login pages go, 0700 (default: `ui-login/` beside the sessions file). */
  loginDir?: string;
  now?: () => number;
  limits?: Partial<UiLimits>;
  log?: (msg: string) => void;
}

type Closer = (code: number, reason: string) => void;

export type Authenticated = { ok: true; session: string } | { ok: false; reason: SessionEnd };

export class UiAuth {
  /** Random per daemon process; a page compares it with its token's to know the token died. */
  readonly instance = rand(16);
  readonly identity: Identity;
  readonly limits: UiLimits;
  readonly loginDir: string;
  private readonly now: () => number;
  private readonly log: (msg: string) => void;
  private codes = new Map<string, { expiresAt: number; file?: string; timer?: NodeJS.Timeout }>();
  private challenges = new Map<string, number>();
  private sessions = new Map<string, StoredSession>();
  /** sha256(token) → session id; memory only. */
  private tokens = new Map<string, string>();
  private sockets = new Map<string, Set<Closer>>();
  private dirty = false;
  private lastPersist = 0;
  private sweeper: NodeJS.Timeout;

  constructor(private readonly opts: UiAuthOptions) {
    const dir = path.dirname(opts.sessionsFile);
    this.now = opts.now ?? Date.now;
    this.log = opts.log ?? (() => {});
    this.limits = { ...UI_LIMITS, ...opts.limits };
    this.loginDir = opts.loginDir ?? path.join(dir, 'ui-login');
    this.identity = loadOrCreateIdentity(opts.identityFile ?? path.join(dir, 'ui-identity.pem'), this.log);
    sweepLoginFiles(this.loginDir);
    this.load();
    this.sweeper = setInterval(() => this.sweep(), 60_000);
    this.sweeper.unref();
  }

  // ---------------------------------------------------------------- codes

  /** A single-use login code, valid for two minutes. */
  mintCode(file?: (code: string) => string): { code: string; expiresAt: number; file?: string } {
    this.pruneCodes();
    while (this.codes.size >= this.limits.maxCodes) this.dropCode(this.codes.keys().next().value!);
    const code = rand(24);
    const expiresAt = this.now() + this.limits.codeTtlMs;
    const key = sha256(code);
    const entry: { expiresAt: number; file?: string; timer?: NodeJS.Timeout } = { expiresAt };
    this.codes.set(key, entry);
    if (file) {
      entry.file = file(code);
      entry.timer = setTimeout(() => this.dropCode(key), this.limits.codeTtlMs);
      entry.timer.unref();
    }
    return { code, expiresAt, file: entry.file };
  }

  /** A login page for `urlFor(code)`, written 0600 into the login dir; removed once used or expired. */
  loginFile(urlFor: (code: string) => string): { path: string; expiresAt: string } {
    const { file, expiresAt } = this.mintCode((code) => writeLoginFile(this.loginDir, loginPage(urlFor(code))));
    return { path: file!, expiresAt: new Date(expiresAt).toISOString() };
  }

  private consumeCode(code: string): boolean {
    const key = sha256(code);
    const entry = this.codes.get(key);
    if (!entry) return false;
    this.dropCode(key);
    return entry.expiresAt > this.now();
  }

  private dropCode(key: string): void {
    const entry = this.codes.get(key);
    if (!entry) return;
    clearTimeout(entry.timer);
    removeLoginFile(entry.file);
    this.codes.delete(key);
  }

  private pruneCodes(): void {
    const now = this.now();
    for (const [k, e] of this.codes) if (e.expiresAt <= now) this.dropCode(k);
  }

  // ---------------------------------------------------------------- the page's requests

  /** The daemon's signed answer to a page's nonce, with a challenge for a resume. */
  answerIdentity(body: unknown, host: string): IdentityAnswer {
    return this.identityFor(parse(IdentityBody, body).nonce, host);
  }

  private identityFor(nonce: string, host: string): IdentityAnswer {
    const now = this.now();
    for (const [c, exp] of this.challenges) if (exp <= now) this.challenges.delete(c);
    while (this.challenges.size >= this.limits.maxChallenges) this.challenges.delete(this.challenges.keys().next().value!);
    const challenge = rand(24);
    this.challenges.set(challenge, now + this.limits.challengeTtlMs);
    const signature = this.identity.sign(identityMessage({ host, instance: this.instance, nonce, challenge }));
    return { host, instance: this.instance, challenge, signature };
  }

  /** Trades a login code and the page's public key for a session and a token. */
  login(body: unknown, host: string): LoginAnswer {
    const req = parse(LoginBody, body);
    if (!parseP256Key(req.key)) throw new SpritelyError('invalid_argument', 'The login request carries no valid P-256 public key.');
    if (!this.consumeCode(req.code)) throw new SpritelyError('unauthenticated', 'This login link is used up or expired. Run `spritely ui` for a new one.');
    const now = this.now();
    const session: StoredSession = { id: rand(18), key: req.key, host, createdAt: now, lastUsedAt: now };
    this.sessions.set(session.id, session);
    while (this.sessions.size > this.limits.maxSessions) {
      const oldest = [...this.sessions.values()].filter((s) => !this.sockets.has(s.id)).sort((a, b) => a.lastUsedAt - b.lastUsedAt)[0] ?? [...this.sessions.values()][0];
      this.endSession(oldest.id, 'unknown', false);
    }
    this.persist();
    return { ...this.identityFor(req.nonce, host), daemonKey: this.identity.publicKey, session: session.id, token: this.issueToken(session.id) };
  }

  /** A new token for a session whose page proves it still holds the session's private key. */
  resume(body: unknown, host: string): ResumeAnswer {
    const req = parse(ResumeBody, body);
    const exp = this.challenges.get(req.challenge);
    this.challenges.delete(req.challenge);
    // Not "logged out": the page asks for a fresh challenge and tries again (a flood of identity
    // requests from anyone can push a page's challenge out of the bounded table).
    if (!exp || exp <= this.now()) throw new SpritelyError('failed_precondition', 'That challenge is unknown or expired; ask for a new one.');
    const s = this.sessions.get(req.session);
    if (!s) throw new SpritelyError('unauthenticated', endedMessage('unknown', this.limits));
    if (s.host !== host) throw new SpritelyError('unauthenticated', endedMessage('moved', this.limits));
    const verdict = sessionVerdict(s, this.now(), this.sockets.has(s.id), this.limits);
    if (verdict !== 'ok') {
      this.endSession(s.id, verdict);
      throw new SpritelyError('unauthenticated', endedMessage(verdict, this.limits));
    }
    const key = parseP256Key(s.key);
    if (!key || !verifyP256(key, resumeMessage({ host, session: s.id, challenge: req.challenge }), req.signature)) {
      throw new SpritelyError('unauthenticated', "This window's proof of its login did not verify. Run `spritely ui` to log in again.");
    }
    this.touch(s.id);
    return { token: this.issueToken(s.id), instance: this.instance };
  }

  private issueToken(session: string): string {
    const token = rand(32);
    this.tokens.set(sha256(token), session);
    return token;
  }

  /** Whether a token (from `Authorization: Bearer` or a WebSocket subprotocol) is a live session's. */
  authenticate(token: string | null, host: string): Authenticated {
    if (!token) return { ok: false, reason: 'unknown' };
    const key = sha256(token);
    const id = this.tokens.get(key);
    const s = id ? this.sessions.get(id) : undefined;
    if (!s) {
      this.tokens.delete(key);
      return { ok: false, reason: 'unknown' };
    }
    if (s.host !== host) return { ok: false, reason: 'moved' };
    const verdict = sessionVerdict(s, this.now(), this.sockets.has(s.id), this.limits);
    if (verdict !== 'ok') {
      this.endSession(s.id, verdict);
      return { ok: false, reason: verdict };
    }
    this.touch(s.id);
    return { ok: true, session: s.id };
  }

  /** Registers an open socket of a session (it keeps the session from going idle); returns its detach. */
  attach(session: string, close: Closer): () => void {
    let set = this.sockets.get(session);
    if (!set) this.sockets.set(session, (set = new Set()));
    set.add(close);
    return () => {
      const s = this.sockets.get(session);
      if (!s?.delete(close)) return;
      if (!s.size) this.sockets.delete(session);
      this.touch(session);
    };
  }

  /** Ends every session: tokens, pending codes and challenges are gone, open sockets are closed. */
  logoutAll(): number {
    const n = this.sessions.size;
    for (const id of [...this.sessions.keys()]) this.endSession(id, 'unknown', false);
    this.tokens.clear();
    for (const k of [...this.codes.keys()]) this.dropCode(k);
    this.challenges.clear();
    this.persist();
    this.log(`ui: logged out ${n} browser session(s)`);
    return n;
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  private endSession(id: string, reason: SessionEnd, persist = true): void {
    this.sessions.delete(id);
    for (const [k, sid] of this.tokens) if (sid === id) this.tokens.delete(k);
    const socks = this.sockets.get(id);
    this.sockets.delete(id);
    for (const close of socks ?? []) close(CLOSE_UNAUTHENTICATED, reason === 'unknown' ? 'logged out' : `session ended (${reason})`);
    if (persist) this.persist();
  }

  private touch(id: string): void {
    const s = this.sessions.get(id);
    if (!s) return;
    s.lastUsedAt = this.now();
    this.dirty = true;
    if (this.now() - this.lastPersist >= this.limits.persistEveryMs) this.persist();
  }

  /** Ends sessions past their limits and forgets stale codes; runs every minute. */
  sweep(): void {
    this.pruneCodes();
    const now = this.now();
    for (const [c, exp] of this.challenges) if (exp <= now) this.challenges.delete(c);
    let ended = false;
    for (const s of [...this.sessions.values()]) {
      const verdict = sessionVerdict(s, now, this.sockets.has(s.id), this.limits);
      if (verdict !== 'ok') {
        this.endSession(s.id, verdict, false);
        ended = true;
      }
    }
    if (ended || (this.dirty && now - this.lastPersist >= this.limits.persistEveryMs)) this.persist();
  }

  close(): void {
    clearInterval(this.sweeper);
    for (const k of [...this.codes.keys()]) this.dropCode(k);
    if (this.dirty) this.persist();
  }

  // ---------------------------------------------------------------- disk

  private load(): void {
    let raw: unknown;
    try {
      raw = JSON.parse(fs.readFileSync(this.opts.sessionsFile, 'utf8'));
    } catch {
      return;
    }
    const list = (raw as { version?: unknown; sessions?: unknown })?.version === 2 ? (raw as { sessions: unknown }).sessions : null;
    if (!Array.isArray(list)) {
      this.log('ui: dropping browser sessions saved in the old format (they never expired); windows log in again');
      this.persist();
      return;
    }
    const now = this.now();
    let dropped = 0;
    for (const item of list) {
      const r = Stored.safeParse(item);
      if (r.success && sessionVerdict(r.data, now, false, this.limits) === 'ok') this.sessions.set(r.data.id, r.data);
      else dropped++;
    }
    if (dropped) this.persist();
  }

  private persist(): void {
    const data = JSON.stringify({ version: 2, sessions: [...this.sessions.values()] });
    writeFileAtomic.sync(this.opts.sessionsFile, data, { mode: 0o600 });
    this.dirty = false;
    this.lastPersist = this.now();
  }
}
