/**
 * Browser-mode access to the daemon. A browser cannot use the unix socket, so the daemon also
 * listens on 127.0.0.1; a web page must not be able to drive it, and neither may another local
 * user. The owner gets in through a one-time login URL (minted over the owner-only socket by
 * `spritely ui` or the Electron shell) that is exchanged for an HttpOnly, SameSite=Strict session
 * cookie. Only sha256 hashes of session tokens are kept (in memory and in a 0600 file, so a
 * daemon restart does not log the window out).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import type http from 'node:http';
import path from 'node:path';

export const SESSION_COOKIE = 'spritely_session';
const CODE_TTL_MS = 2 * 60 * 1000;
const SESSION_MAX_AGE_S = 30 * 24 * 3600;

const sha256 = (s: string) => crypto.createHash('sha256').update(s).digest('hex');

export class UiAuth {
  private codes = new Map<string, number>();
  private sessions = new Set<string>();

  constructor(private readonly sessionsFile: string) {
    try {
      const saved = JSON.parse(fs.readFileSync(sessionsFile, 'utf8'));
      if (Array.isArray(saved)) for (const h of saved) if (typeof h === 'string') this.sessions.add(h);
    } catch {
      /* none yet */
    }
  }

  /** A single-use code, valid for two minutes. */
  mintCode(): string {
    const now = Date.now();
    for (const [c, exp] of this.codes) if (exp < now) this.codes.delete(c);
    const code = crypto.randomBytes(24).toString('base64url');
    this.codes.set(sha256(code), now + CODE_TTL_MS);
    return code;
  }

  /** Consumes a code; returns a new session token, or null if the code is unknown, used or old. */
  redeem(code: string): string | null {
    const key = sha256(code);
    const exp = this.codes.get(key);
    this.codes.delete(key);
    if (!exp || exp < Date.now()) return null;
    const token = crypto.randomBytes(32).toString('base64url');
    this.sessions.add(sha256(token));
    this.persist();
    return token;
  }

  hasSession(req: http.IncomingMessage): boolean {
    const token = readCookie(req, SESSION_COOKIE);
    return token !== null && this.sessions.has(sha256(token));
  }

  sessionCookie(token: string): string {
    return `${SESSION_COOKIE}=${token}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${SESSION_MAX_AGE_S}`;
  }

  private persist(): void {
    fs.writeFileSync(this.sessionsFile, JSON.stringify([...this.sessions].slice(-50)), { mode: 0o600 });
  }
}

export function readCookie(req: http.IncomingMessage, name: string): string | null {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === name) return v.join('=');
  }
  return null;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.json': 'application/json',
  '.map': 'application/json',
};

/** Serves the built renderer; never a path outside `root`. Returns false when nothing matched. */
export function serveStatic(root: string, urlPath: string, res: http.ServerResponse, csp: string): boolean {
  let rel: string;
  try {
    rel = decodeURIComponent(urlPath);
  } catch {
    return false;
  }
  if (rel === '/' || rel === '') rel = '/index.html';
  const file = path.resolve(root, '.' + rel);
  if (!file.startsWith(path.resolve(root) + path.sep)) return false;
  let data: Buffer;
  try {
    data = fs.readFileSync(file);
  } catch {
    return false;
  }
  const type = TYPES[path.extname(file)] ?? 'application/octet-stream';
  res.writeHead(200, {
    'Content-Type': type,
    'Content-Length': data.length,
    'X-Content-Type-Options': 'nosniff',
    'X-Frame-Options': 'DENY',
    'Referrer-Policy': 'no-referrer',
    'Cache-Control': type.startsWith('text/html') ? 'no-store' : 'max-age=3600',
    ...(type.startsWith('text/html') ? { 'Content-Security-Policy': csp } : {}),
  });
  res.end(data);
  return true;
}

/** The UI's CSP, for the daemon's pages and the Electron window alike: only the daemon's origin, inline styles for xterm.js. */
export function uiCsp(port: number): string {
  return [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",
    `connect-src 'self' ws://127.0.0.1:${port}`,
    "img-src 'self' data:",
    "font-src 'self' data:",
    "object-src 'none'",
    "base-uri 'none'",
    "frame-ancestors 'none'",
    "form-action 'self'",
  ].join('; ');
}
