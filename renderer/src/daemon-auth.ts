/**
 * The page's side of the browser login (the daemon's is vm/api/ui-auth.ts; docs/ui.md has the
 * picture). It hands the transport a token only after the daemon on this page's origin proved,
 * since the last connection loss, that it holds the installation's key — so after a daemon
 * restart, a squatter on the port gets nothing from this window and the user is told.
 *
 * - `#login=CODE` (from the login page) is taken out of the address bar at once and traded, with
 *   a fresh P-256 public key, for a session and a token. The private key is non-extractable and
 *   lives only in this page's memory: no storage a squatter's page could read ever holds it.
 * - The token and the daemon's public key go to localStorage, so a reload (or another tab) stays
 *   logged in while the daemon process that issued the token runs. Tokens die with that process.
 * - After a daemon restart, a page that still holds its key resumes by signing the daemon's
 *   challenge; a page reloaded since cannot, and says "logged out".
 */
import { fromB64url, identityMessage, resumeMessage, toB64url, type IdentityAnswer, type LoginAnswer, type ResumeAnswer } from '../../vm/api/ui-protocol.ts';

export type AuthFailure = 'unreachable' | 'not-your-daemon' | 'logged-out';

export class AuthError extends Error {
  override name = 'AuthError';
  constructor(
    readonly kind: AuthFailure,
    message: string,
  ) {
    super(message);
  }
}

/** What the transport needs: a token it may send, and news of lost connections and refused tokens. */
export interface TokenSource {
  token(): Promise<string>;
  /** The connection dropped: the daemon must prove itself again before the next token is given out. */
  lost(): void;
  /** The daemon refused this token (logged out, expired, or issued by a daemon process now gone). */
  rejected(token: string): void;
  /** A new login arrived (a `#login=` code, another tab's login): worth trying again now. */
  onChange?(listener: () => void): () => void;
}

interface Saved {
  daemonKey: string;
  session: string;
  token: string;
  instance: string;
}

export const STORAGE_KEY = 'spritely.login';

type StorageLike = Pick<Storage, 'getItem' | 'setItem'>;

export interface DaemonAuthOptions {
  fetch?: typeof fetch;
  subtle?: SubtleCrypto;
  random?: (bytes: number) => Uint8Array;
  storage?: StorageLike | null;
  location?: { host: string; hash: string; pathname: string; search: string };
  history?: Pick<History, 'replaceState'> | null;
  /** Where `hashchange` and `storage` events come from (default: the window). */
  events?: Pick<EventTarget, 'addEventListener'> | null;
}

const utf8 = (s: string) => new TextEncoder().encode(s);
const ECDSA = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGN = { name: 'ECDSA', hash: 'SHA-256' } as const;

function isIdentity(x: unknown): x is IdentityAnswer {
  const o = x as Record<string, unknown>;
  return !!o && typeof o === 'object' && ['host', 'instance', 'challenge', 'signature'].every((k) => typeof o[k] === 'string');
}

async function errorText(res: Response): Promise<string | null> {
  try {
    const body = (await res.json()) as { error?: { message?: unknown } };
    return typeof body?.error?.message === 'string' ? body.error.message : null;
  } catch {
    return null;
  }
}

export class DaemonAuth implements TokenSource {
  private readonly fetchFn: typeof fetch;
  private readonly subtle: SubtleCrypto;
  private readonly random: (n: number) => Uint8Array;
  private readonly storage: StorageLike | null;
  private readonly host: string;
  private saved: Saved | null;
  /** This page's session key: memory only, never extractable. */
  private key: CryptoKeyPair | null = null;
  private verified = false;
  private pending: Promise<string> | null = null;
  private loginCode: string | null = null;
  private dead = new Set<string>();
  private ended: string | null = null;
  private keys = new Map<string, Promise<CryptoKey>>();
  private listeners = new Set<() => void>();
  private readonly loc: { host: string; hash: string; pathname: string; search: string };
  private readonly history: Pick<History, 'replaceState'> | null;

  constructor(opts: DaemonAuthOptions = {}) {
    this.fetchFn = opts.fetch ?? ((...a) => globalThis.fetch(...a));
    this.subtle = opts.subtle ?? globalThis.crypto?.subtle;
    this.random = opts.random ?? ((n) => globalThis.crypto.getRandomValues(new Uint8Array(n)));
    this.storage = opts.storage === undefined ? (globalThis.localStorage ?? null) : opts.storage;
    this.loc = opts.location ?? globalThis.location;
    this.host = this.loc.host;
    this.history = opts.history === undefined ? (globalThis.history ?? null) : opts.history;
    this.takeLoginCode();
    this.saved = this.readStored();
    // Electron's "Log in again" (and a pasted link) lands on this very document as a new fragment.
    const events = opts.events === undefined ? (globalThis.window ?? null) : opts.events;
    events?.addEventListener('hashchange', () => this.takeLoginCode() && this.changed());
    events?.addEventListener('storage', (e) => (e as StorageEvent).key === STORAGE_KEY && this.changed());
  }

  /** Takes `#login=CODE` out of the address bar (and the history entry) before anything else happens. */
  private takeLoginCode(): boolean {
    const code = new URLSearchParams(this.loc.hash.replace(/^#/, '')).get('login');
    if (!code) return false;
    this.loginCode = code;
    this.history?.replaceState(null, '', `${this.loc.pathname}${this.loc.search}`);
    return true;
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  }

  private changed(): void {
    this.verified = false;
    for (const l of [...this.listeners]) l();
  }

  token(): Promise<string> {
    const s = this.saved;
    if (this.verified && s && !this.dead.has(s.token)) return Promise.resolve(s.token);
    this.pending ??= this.establish().finally(() => (this.pending = null));
    return this.pending;
  }

  lost(): void {
    this.verified = false;
  }

  rejected(token: string): void {
    this.dead.add(token);
    this.verified = false;
  }

  private async establish(): Promise<string> {
    if (this.loginCode) {
      const code = this.loginCode;
      this.loginCode = null;
      return this.login(code);
    }
    this.adoptStored();
    const s = this.saved;
    if (!s) throw new AuthError('logged-out', this.ended ?? 'This window is not logged in. Run `spritely ui` in a terminal to open the app with a fresh login.');
    // Already concluded: ask nothing more of the port until a new login shows up.
    if (this.ended && this.dead.has(s.token) && !this.key) throw new AuthError('logged-out', this.ended);
    const id = await this.identify(s.daemonKey);
    if (id.instance === s.instance && !this.dead.has(s.token)) {
      this.verified = true;
      return s.token;
    }
    if (!this.key) {
      this.dead.add(s.token);
      this.ended =
        id.instance !== s.instance
          ? 'Logged out: the Spritely daemon restarted, and a page reloaded since its login cannot prove it. Run `spritely ui` to log in again.'
          : 'Logged out (`spritely ui --logout-all`, or this login ended). Run `spritely ui` to log in again.';
      throw new AuthError('logged-out', this.ended);
    }
    return this.resume(s, this.key, id);
  }

  /** Another tab may have logged in or resumed; a page holding its own key keeps its daemon's. */
  private adoptStored(): void {
    const stored = this.readStored();
    if (!stored || stored.token === this.saved?.token || this.dead.has(stored.token)) return;
    if (this.key && this.saved && stored.daemonKey !== this.saved.daemonKey) return;
    this.saved = stored;
    this.ended = null;
  }

  private notYours(detail: string): AuthError {
    return new AuthError('not-your-daemon', `This is not your Spritely daemon: something else answers on ${this.host} (${detail}). Nothing was sent to it; waiting for your daemon to come back…`);
  }

  private async post(path: string, body: unknown): Promise<Response> {
    try {
      return await this.fetchFn(path, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body), credentials: 'omit', cache: 'no-store' });
    } catch (err) {
      throw new AuthError('unreachable', `Cannot reach the Spritely daemon (${(err as Error).message}); retrying…`);
    }
  }

  private verifyKey(daemonKey: string): Promise<CryptoKey> {
    let k = this.keys.get(daemonKey);
    if (!k) this.keys.set(daemonKey, (k = this.subtle.importKey('spki', fromB64url(daemonKey), ECDSA, false, ['verify'])));
    return k;
  }

  /** Checks an answer's signature over our nonce and this page's host. */
  private async proves(daemonKey: string, nonce: string, answer: unknown): Promise<string | null> {
    if (!isIdentity(answer)) return 'it gave no signed answer';
    if (answer.host !== this.host) return `it answered for ${answer.host}`;
    try {
      const ok = await this.subtle.verify(SIGN, await this.verifyKey(daemonKey), fromB64url(answer.signature), utf8(identityMessage({ host: this.host, instance: answer.instance, nonce, challenge: answer.challenge })));
      return ok ? null : 'its signature is not your daemon\u2019s';
    } catch {
      return 'its signature is malformed';
    }
  }

  private async identify(daemonKey: string): Promise<IdentityAnswer> {
    const nonce = toB64url(this.random(24));
    const res = await this.post('/ui/identity', { nonce });
    let body: unknown = null;
    try {
      body = await res.json();
    } catch {
      /* checked below */
    }
    const problem = res.ok ? await this.proves(daemonKey, nonce, body) : `it answered HTTP ${res.status}`;
    if (problem) throw this.notYours(problem);
    return body as IdentityAnswer;
  }

  private async login(code: string): Promise<string> {
    if (!this.subtle) throw new AuthError('logged-out', 'This browser offers no WebCrypto here; open the app at http://127.0.0.1:PORT as `spritely ui` does.');
    const key = (await this.subtle.generateKey(ECDSA, false, ['sign', 'verify'])) as CryptoKeyPair;
    const spki = toB64url(new Uint8Array(await this.subtle.exportKey('spki', key.publicKey)));
    const nonce = toB64url(this.random(24));
    const res = await this.post('/ui/login', { code, key: spki, nonce });
    if (!res.ok) {
      this.ended = (await errorText(res)) ?? `The login failed (HTTP ${res.status}). Run \`spritely ui\` for a new login link.`;
      throw new AuthError('logged-out', this.ended);
    }
    const body = (await res.json().catch(() => null)) as LoginAnswer | null;
    const problem = body && typeof body.daemonKey === 'string' && typeof body.token === 'string' && typeof body.session === 'string' ? await this.proves(body.daemonKey, nonce, body) : 'it gave no login answer';
    if (problem) throw this.notYours(problem);
    this.key = key;
    this.ended = null;
    this.store({ daemonKey: body!.daemonKey, session: body!.session, token: body!.token, instance: body!.instance });
    this.verified = true;
    return body!.token;
  }

  private async resume(s: Saved, key: CryptoKeyPair, id: IdentityAnswer): Promise<string> {
    const signature = toB64url(new Uint8Array(await this.subtle.sign(SIGN, key.privateKey, utf8(resumeMessage({ host: this.host, session: s.session, challenge: id.challenge })))));
    const res = await this.post('/ui/resume', { session: s.session, challenge: id.challenge, signature });
    if (!res.ok) {
      const message = (await errorText(res)) ?? `The daemon refused this window's login (HTTP ${res.status}). Run \`spritely ui\` to log in again.`;
      if (res.status !== 401) throw new AuthError('unreachable', message);
      this.key = null;
      this.dead.add(s.token);
      this.ended = message;
      throw new AuthError('logged-out', message);
    }
    const body = (await res.json()) as ResumeAnswer;
    this.store({ ...s, token: body.token, instance: body.instance });
    this.verified = true;
    return body.token;
  }

  private store(s: Saved): void {
    this.saved = s;
    try {
      this.storage?.setItem(STORAGE_KEY, JSON.stringify(s));
    } catch {
      /* private mode: this tab still works */
    }
  }

  private readStored(): Saved | null {
    try {
      const s = JSON.parse(this.storage?.getItem(STORAGE_KEY) ?? 'null') as Saved | null;
      return s && ['daemonKey', 'session', 'token', 'instance'].every((k) => typeof (s as unknown as Record<string, unknown>)[k] === 'string') ? s : null;
    } catch {
      return null;
    }
  }
}
