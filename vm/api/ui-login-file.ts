/**
 * The login page `spritely ui` opens: a small HTML file, 0600 in a 0700 directory of the data dir,
 * that forwards the browser to the daemon with the one-time code in the URL's fragment. The
 * browser is started with the file's path, so no command line (xdg-open's, the browser's) ever
 * carries the code, and the fragment never reaches a server, a log or a Referer. The daemon
 * removes the file when the code is redeemed or expires, and sweeps leftovers when it starts.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** The page: a meta refresh (no script needed) and a link for browsers that do not follow it. */
export function loginPage(url: string): string {
  return [
    '<!doctype html>',
    '<meta charset="utf-8">',
    `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">`,
    '<meta name="referrer" content="no-referrer">',
    `<meta http-equiv="refresh" content="0;url=${esc(url)}">`,
    '<title>Spritely — logging in</title>',
    '<body style="font:16px system-ui;margin:4em auto;max-width:40em">',
    `<p>Opening Spritely… <a href="${esc(url)}" rel="noreferrer">Continue</a> if nothing happens.</p>`,
    '<p style="color:#777">This page works once, for two minutes.</p>',
  ].join('\n');
}

/** Writes a login page into `dir` (made 0700) as a fresh 0600 file; returns its path. */
export function writeLoginFile(dir: string, html: string): string {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  fs.chmodSync(dir, 0o700);
  const file = path.join(dir, `login-${crypto.randomBytes(9).toString('base64url')}.html`);
  fs.writeFileSync(file, html, { mode: 0o600, flag: 'wx' });
  return file;
}

export function removeLoginFile(file: string | undefined): void {
  if (file) fs.rmSync(file, { force: true });
}

/** Removes every login page left in `dir` (their codes died with the daemon that minted them). */
export function sweepLoginFiles(dir: string): void {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return;
  }
  for (const n of names) if (/^login-[A-Za-z0-9_-]+\.html$/.test(n)) fs.rmSync(path.join(dir, n), { force: true });
}
