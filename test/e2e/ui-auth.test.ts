/**
 * The browser login end to end (docs/ui.md, #13 items 5 and 6): Debian's Chromium against the
 * real daemon and the real CLI, no sprite needed. `spritely ui` opens a login page by its path
 * ($BROWSER is a recorder here, so the test sees the exact argv); no credential reaches a sprite's
 * URL host or another loopback port; a squatter on the daemon's port after it stops gets nothing
 * and the page says so; the real daemon returns and the page reconnects; `--logout-all` logs the
 * window out.
 */
import fs from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { type BrowserContext, type Page } from 'playwright-core';
import { build } from 'vite';
import { WebSocketServer } from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, runCli, startDaemon, waitFor, type TestDaemon } from '../vm/harness.ts';
import { dropScreenshots, openBrowser, screenshotsDir, type E2eBrowser } from './browser.ts';

const SHOTS = screenshotsDir();

let d: TestDaemon;
let browser: E2eBrowser;
let ctx: BrowserContext;
let page: Page;
let port: number;
let origin: string;
let scratch: string;
let recorder: string;
let argvFile: string;

interface Seen {
  kind: 'http' | 'ws';
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** An HTTP + WebSocket server on loopback that answers everything and remembers every request. */
async function recordingServer(listenPort: number, answer: (req: http.IncomingMessage, body: string) => { status: number; type: string; body: string } = () => ({ status: 200, type: 'text/html', body: '<p>hello</p>' })) {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      seen.push({ kind: 'http', method: req.method!, url: req.url!, headers: req.headers, body });
      const a = answer(req, body);
      res.writeHead(a.status, { 'content-type': a.type });
      res.end(a.body);
    });
  });
  const wss = new WebSocketServer({ server });
  wss.on('connection', (ws, req) => {
    seen.push({ kind: 'ws', method: 'GET', url: req.url!, headers: req.headers, body: '' });
    ws.on('message', (m) => (seen.at(-1)!.body += m.toString()));
  });
  // The daemon may still be letting go of the port.
  await waitFor(`port ${listenPort} to be free`, () =>
    new Promise<boolean>((resolve) => {
      server.once('error', () => resolve(false));
      server.listen(listenPort, '127.0.0.1', () => resolve(true));
    }), 15_000, 50);
  return {
    seen,
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of wss.clients) c.terminate();
        wss.close();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** Runs `spritely ui` with $BROWSER = a recorder; returns the login page it opened and the argv the opener got. */
async function spritelyUi(): Promise<{ file: string; argv: string[]; stdout: string; stderr: string; code: string }> {
  fs.rmSync(argvFile, { force: true });
  const r = await runCli(['ui'], { ...d.env, BROWSER: recorder });
  expect(r.code, r.stderr).toBe(0);
  const argv = fs.readFileSync(await waitFor('the opener to run', () => fs.existsSync(argvFile) && argvFile, 10_000, 20), 'utf8').trim().split('\n');
  const file = argv[0];
  const code = /#login=([A-Za-z0-9_-]+)/.exec(fs.readFileSync(file, 'utf8'))![1];
  return { file, argv, stdout: r.stdout, stderr: r.stderr, code };
}

const pageLogin = () => page.evaluate(() => JSON.parse(localStorage.getItem('spritely.login') ?? 'null') as { token: string; session: string } | null);
const shot = (name: string) => page.screenshot({ path: path.join(SHOTS, name) });

beforeAll(async () => {
  await build({ configFile: path.join(ROOT, 'renderer/vite.config.ts'), logLevel: 'warn' });
  d = await startDaemon();
  port = Number(fs.readFileSync(path.join(d.home, 'api-port'), 'utf8'));
  origin = `http://127.0.0.1:${port}`;
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'spritely-e2e-auth-'));
  argvFile = path.join(scratch, 'argv');
  recorder = path.join(scratch, 'browser');
  fs.writeFileSync(recorder, `#!/bin/sh\nprintf '%s\\n' "$@" > '${argvFile}'\n`, { mode: 0o755 });
  browser = await openBrowser({ profile: path.join(scratch, 'profile'), viewport: { width: 1100, height: 640 } });
  ({ ctx, page } = browser);
}, 600_000);

afterAll(async () => {
  await browser?.close();
  if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
  dropScreenshots(SHOTS);
  await d?.cleanup();
});

describe('the browser login', () => {
  it('spritely ui opens a 0600 login page by its path — the code on no command line — and the page logs in once', async () => {
    // A cookie an earlier version left on 127.0.0.1 (it went to every port): the daemon clears it.
    await ctx.addCookies([{ name: 'spritely_session', value: 'legacy-cookie', domain: '127.0.0.1', path: '/', httpOnly: true, sameSite: 'Strict' }]);
    const { file, argv, stdout, stderr, code } = await spritelyUi();
    expect(argv).toEqual([file]);
    expect(path.dirname(path.dirname(file))).toBe(d.home);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(fs.statSync(path.dirname(file)).mode & 0o777).toBe(0o700);
    for (const text of [argv.join(' '), stdout, stderr]) expect(text).not.toContain(code);
    expect(stdout.trim()).toBe(pathToFileURL(file).href);
    await page.goto(pathToFileURL(file).href);
    await page.waitForURL(`${origin}/`, { timeout: 15_000 });
    await page.getByText('No sprites yet').waitFor({ timeout: 15_000 });
    expect(page.url()).toBe(`${origin}/`); // the code left the address bar
    expect(await pageLogin()).toMatchObject({ token: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/) });
    await waitFor('the login page to be removed', () => !fs.existsSync(file), 5_000, 20);
    expect(await ctx.cookies()).toEqual([]);
  });

  it('no credential reaches a sprite URL host or another loopback port', async () => {
    const rec = await recordingServer(0);
    try {
      const other = await ctx.newPage();
      for (const url of [`http://127.0.0.1:${rec.port}/forwarded-port`, `http://e2e-one.localhost:${rec.port}/sprite-host`]) {
        await other.goto(url);
        await other.getByText('hello').waitFor();
      }
      await other.close();
      const { token, session } = (await pageLogin())!;
      // The probes (and the browser's own favicon requests) all arrived, the sprite host by its name.
      expect(rec.seen.filter((s) => s.url !== '/favicon.ico').map((s) => [s.url, s.headers.host])).toEqual([
        ['/forwarded-port', `127.0.0.1:${rec.port}`],
        ['/sprite-host', `e2e-one.localhost:${rec.port}`],
      ]);
      for (const s of rec.seen) {
        expect(s.headers.cookie).toBeUndefined();
        expect(s.headers.authorization).toBeUndefined();
        expect(JSON.stringify(s)).not.toContain(token);
        expect(JSON.stringify(s)).not.toContain(session);
      }
    } finally {
      await rec.close();
    }
  });

  it('a squatter on the daemon\'s port after it stops gets no credential and the page says so; the real daemon returns and the page reconnects', async () => {
    const before = (await pageLogin())!;
    await page.locator('.conn-online').waitFor();
    d.proc.kill('SIGTERM');
    await waitFor('the daemon to stop', () => d.proc.exitCode !== null || d.proc.signalCode !== null, 30_000, 50);
    // Something else takes the port: it answers the identity check as plausibly as it can.
    const squatter = await recordingServer(port, (req, body) => {
      if (req.url === '/ui/identity') {
        const nonce = (JSON.parse(body || '{}') as { nonce?: string }).nonce ?? '';
        return { status: 200, type: 'application/json', body: JSON.stringify({ host: `127.0.0.1:${port}`, instance: 'i'.repeat(22), challenge: nonce, signature: 'A'.repeat(86) }) };
      }
      return { status: 200, type: 'text/html', body: '<p>not spritely</p>' };
    });
    try {
      const alert = page.locator('[data-connection="not-your-daemon"]');
      await alert.waitFor({ timeout: 30_000 });
      expect(await alert.textContent()).toBe(`This is not your Spritely daemon. Something else answers on 127.0.0.1:${port} (its signature is not your daemon’s). Nothing was sent to it; waiting for your daemon to come back…`);
      // A click meanwhile is refused on the page, not sent.
      await page.getByLabel('Name of the new sprite').fill('while-away');
      await page.getByRole('button', { name: 'Create' }).click();
      await page.locator('.toast.error', { hasText: /This is not your Spritely daemon: something else answers/ }).waitFor();
      await page.mouse.move(0, 639);
      await shot('ui-not-your-daemon.png');
      await page.locator('.toast.error').getByRole('button', { name: 'Dismiss' }).click();
      expect(squatter.seen.length).toBeGreaterThan(0);
      for (const s of squatter.seen) {
        expect(s.kind).toBe('http');
        expect(`${s.method} ${s.url}`).toBe('POST /ui/identity');
        expect(s.headers.authorization).toBeUndefined();
        expect(s.headers.cookie).toBeUndefined();
        expect(s.headers['sec-websocket-protocol']).toBeUndefined();
        expect(JSON.stringify(s)).not.toContain(before.token);
        expect(JSON.stringify(s)).not.toContain(before.session);
      }
    } finally {
      await squatter.close();
    }
    await d.restart();
    expect(Number(fs.readFileSync(path.join(d.home, 'api-port'), 'utf8'))).toBe(port);
    await page.locator('.conn-online').waitFor({ timeout: 30_000 });
    expect(await page.locator('[data-connection]').count()).toBe(0);
    const after = (await pageLogin())!;
    expect(after.session).toBe(before.session); // the same login, resumed with the page's key
    expect(after.token).not.toBe(before.token); // the old token died with the old daemon
  });

  it('spritely ui --logout-all: the open window says it is logged out, also after a reload; a new login on the same page logs it in', async () => {
    const r = await runCli(['ui', '--logout-all'], d.env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^Logged out 1 browser login; open windows now say so/);
    const alert = page.locator('[data-connection="logged-out"]');
    await alert.waitFor({ timeout: 15_000 });
    expect(await alert.textContent()).toBe('Logged out (spritely ui --logout-all, or this login ended). Run spritely ui to log in again.');
    await page.mouse.move(0, 639);
    await shot('ui-logged-out.png');
    await page.reload();
    await page.locator('[data-connection="logged-out"]').waitFor({ timeout: 15_000 });
    // What Electron's "Log in again" does: the login URL loaded on this same document (only the
    // fragment changes, so the page is not reloaded and must notice the new code).
    const { url } = await d.api.call('ui.loginUrl');
    await page.evaluate((u) => void (location.href = u), url);
    await page.locator('.conn-online').waitFor({ timeout: 15_000 });
    expect(page.url()).toBe(`${origin}/`);
    expect(await page.locator('[data-connection]').count()).toBe(0);
  });
});
