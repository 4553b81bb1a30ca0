/**
 * Serves the built renderer to browsers on the daemon's loopback port (never a path outside its
 * root) and defines the UI's Content-Security-Policy, one definition for the daemon's pages and
 * the Electron window alike. The app shell is public code and needs no login; everything it then
 * asks of the daemon does (vm/api/ui-auth.ts).
 */
import fs from 'node:fs';
import type http from 'node:http';
import path from 'node:path';

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
