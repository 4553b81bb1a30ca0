/**
 * The app end to end: Debian's Chromium (through playwright-core) against the real daemon and
 * real QEMU, logged in through a one-time login URL (the browser login of docs/ui.md; its own
 * end-to-end checks are in ui-auth.test.ts). One daemon and at most three sprites: VM work under
 * TCG is slow.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { type BrowserContext, type Page } from 'playwright-core';
import { build } from 'vite';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addAccount, get, makeCerts, publicAgent, removeDir, startTestRelay, writeEmptyTokens } from '../relay/harness.ts';
import { ROOT, startDaemon, waitFor, type TestDaemon } from '../vm/harness.ts';
import { dropScreenshots, openBrowser, screenshotsDir, type E2eBrowser } from './browser.ts';

/** Screenshots go to a scratch dir, so a test run leaves the tree clean; `SPRITELY_SHOTS=docs/screenshots` refreshes the docs' pictures. */
const SHOTS = screenshotsDir();
const PROMPT = /root@e2e-one[^\n]*[#$] *$/m;

let d: TestDaemon;
let browser: E2eBrowser;
let ctx: BrowserContext;
let page: Page;
let origin: string;

/** The browser login's token, as the page keeps it (docs/ui.md). */
async function pageToken(): Promise<string> {
  return page.evaluate(() => JSON.parse(localStorage.getItem('spritely.login') ?? '{}').token as string);
}

async function terminalText(p: Page = page): Promise<string> {
  return p.evaluate(() => (window as unknown as { __spritely: { terminalText(): string } }).__spritely.terminalText());
}

async function waitForTerminal(re: RegExp, timeoutMs = 60_000, p: Page = page): Promise<string> {
  return waitFor(`terminal text matching ${re}`, async () => {
    const t = await terminalText(p);
    return re.test(t) ? t : null;
  }, timeoutMs, 100);
}

beforeAll(async () => {
  await build({ configFile: path.join(ROOT, 'renderer/vite.config.ts'), logLevel: 'warn' });
  d = await startDaemon();
  const { url } = await d.api.call('ui.loginUrl');
  origin = new URL(url).origin;
  expect(origin).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  browser = await openBrowser();
  ({ ctx, page } = browser);
  await page.goto(url);
}, 600_000);

afterAll(async () => {
  await browser?.close();
  dropScreenshots(SHOTS);
  await d?.cleanup();
});

describe('the app in a browser', () => {
  it('logs in with the one-time link: the code leaves the address bar, no cookie is set', async () => {
    await page.getByText('No sprites yet').waitFor({ timeout: 15_000 });
    expect(page.url()).toBe(`${origin}/`);
    expect(await ctx.cookies()).toEqual([]);
    expect(await pageToken()).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it('creates a sprite from the UI and gets a shell: echo $((6*7)) → 42', async () => {
    await page.getByLabel('Name of the new sprite').fill('e2e-one');
    const t0 = Date.now();
    await page.getByRole('button', { name: 'Create' }).click();
    await page.getByRole('tab', { name: /shell 1/ }).waitFor({ timeout: 240_000 });
    await waitForTerminal(PROMPT, 60_000);
    const toPrompt = Date.now() - t0;
    process.stderr.write(`[e2e] click Create → first prompt: ${toPrompt} ms\n`);
    await page.keyboard.type('echo $((6*7))\n');
    const text = await waitForTerminal(/^42$/m);
    expect(text).toContain('echo $((6*7))');
    await page.locator('[data-sprite="e2e-one"][data-state="running"]').waitFor({ timeout: 10_000 });
    await page.mouse.move(0, 799);
    await page.screenshot({ path: path.join(SHOTS, 'terminal.png') });
  });

  it('reload: the terminal re-attaches to the same shell and shows what came before', async () => {
    await page.keyboard.type('export MARK=kept-$((20+3))\n');
    await waitForTerminal(/^[^\n]*MARK=kept[^\n]*\n[^\n]*[#$] *$/m);
    const before = await page.evaluate(() => sessionStorage.getItem('spritely.layout'));
    await page.reload();
    await page.getByRole('tab', { name: /shell 1/ }).waitFor();
    const text = await waitForTerminal(/^42$/m, 30_000);
    expect(text).toContain('echo $((6*7))');
    expect(await page.evaluate(() => sessionStorage.getItem('spritely.layout'))).toBe(before);
    // Same shell: its environment survived the reload.
    await page.locator('.xterm-host').first().click();
    await page.keyboard.type('echo $MARK\n');
    await waitForTerminal(/^kept-23$/m);
  });

  it('timeline: checkpoint → touch a file → restore → the file is gone, the terminal back on the restored machine', async () => {
    const shell = page.locator('.pane:not([hidden]) .xterm-host');
    await page.getByLabel('Checkpoint comment').fill('clean slate');
    await page.getByRole('button', { name: 'Checkpoint' }).click();
    const first = page.locator('[data-checkpoint]').first();
    await first.waitFor({ timeout: 120_000 });
    const id = (await first.getAttribute('data-checkpoint'))!;
    await expect.poll(() => first.textContent()).toContain('clean slate');
    await shell.click();
    await page.keyboard.type('touch /root/marker && ls /root/marker && echo touched-$((1+1))\n');
    await waitForTerminal(/^touched-2$/m);
    await page.locator(`[data-checkpoint="${id}"] .tl-main`).click();
    const dialog = page.getByRole('dialog');
    await expect.poll(() => dialog.textContent()).toMatch(/automatic checkpoint/);
    await dialog.getByRole('button', { name: 'Restore' }).click();
    // The old shell is gone with the old machine (the daemon says why); a new one opens on the restored machine.
    await waitForTerminal(/This shell is gone: the sprite was restored to v\d+[\s\S]*root@e2e-one[^\n]*[#$] *$/, 180_000);
    await shell.click();
    await page.keyboard.type('test -e /root/marker && echo still-there || echo gone-$((2+3))\n');
    await waitForTerminal(/^gone-5$/m);
    // Going on from the restored state makes a branch beside the automatic undo checkpoint.
    await page.getByLabel('Checkpoint comment').fill('went another way');
    await page.getByRole('button', { name: 'Checkpoint' }).click();
    await page.locator('[data-checkpoint]').nth(2).waitFor({ timeout: 120_000 });
    const rows = await page.locator('[data-checkpoint]').evaluateAll((els) => els.map((e) => e.textContent ?? ''));
    expect(rows).toHaveLength(3);
    expect(rows[1]).toMatch(/auto/);
    expect(rows[2]).toMatch(/went another way/);
    expect(await page.locator('.tl-graph circle').evaluateAll((c) => new Set(c.map((x) => x.getAttribute('cx'))).size)).toBe(2);
    await page.mouse.move(0, 799);
    await page.screenshot({ path: path.join(SHOTS, 'timeline.png') });
  });

  it('a second sprite from the UI, stopped from the UI; the list shows both; screenshots', async () => {
    await page.getByLabel('Name of the new sprite').fill('e2e-two');
    await page.getByRole('button', { name: 'Create' }).click();
    await page.locator('[data-sprite="e2e-two"][data-state="running"]').waitFor({ timeout: 240_000 });
    await page.getByRole('button', { name: 'Stop' }).click();
    await page.locator('[data-sprite="e2e-two"][data-state="stopped"]').waitFor({ timeout: 120_000 });
    await page.locator('[data-sprite="e2e-one"]').click();
    await page.mouse.move(0, 799);
    await page.screenshot({ path: path.join(SHOTS, 'list.png') });
    await page.getByRole('button', { name: /^Theme:/ }).click(); // system → light
    await page.getByRole('button', { name: /^Theme:/ }).click(); // light → dark
    await expect.poll(() => page.evaluate(() => document.documentElement.dataset.theme)).toBe('dark');
    await page.screenshot({ path: path.join(SHOTS, 'terminal-dark.png') });
    await page.getByRole('button', { name: /^Theme:/ }).click(); // back to system
  });

  it('follows changes another client makes (events only, no polling)', async () => {
    await d.api.call('sprites.start', { name: 'e2e-two' }, { timeoutMs: 240_000 });
    await page.locator('[data-sprite="e2e-two"][data-state="running"]').waitFor({ timeout: 30_000 });
  });

  it('stop and destroy from the UI, destroy confirmed by typing the name', async () => {
    await page.locator('[data-sprite="e2e-two"]').click();
    await page.getByRole('button', { name: 'Destroy…' }).click();
    const dialog = page.getByRole('dialog');
    await expect.poll(() => dialog.getByRole('button', { name: 'Destroy' }).isDisabled()).toBe(true);
    await dialog.getByLabel(/Type the sprite/).fill('e2e-two');
    await dialog.getByRole('button', { name: 'Destroy' }).click();
    await page.locator('[data-sprite="e2e-two"]').waitFor({ state: 'detached', timeout: 60_000 });
    expect((await d.api.call('sprites.list')).map((s) => s.name)).toEqual(['e2e-one']);
  });

  it('shows daemon errors in words', async () => {
    await page.locator('[data-sprite="e2e-one"]').click();
    await page.getByLabel('Name of the new sprite').fill('e2e-one');
    await page.getByText(/already exists/).waitFor();
  });

  it('public URL from the URL panel through a real relay: private → token works, public → anyone, relay restart shown live, unpublish', async () => {
    const certs = makeCerts();
    const tokensFile = path.join(certs.dir, 'tokens.json');
    writeEmptyTokens(tokensFile);
    const { token } = addAccount(tokensFile, 'e2e');
    fs.writeFileSync(path.join(certs.dir, 'ca.pem'), certs.cert);
    let relay = await startTestRelay(certs, tokensFile);
    const agent = publicAgent(certs.cert);
    try {
      await page.reload();
      await page.locator('[data-sprite="e2e-one"]').click();
      const app = `perl -MIO::Socket::INET -e '$s=IO::Socket::INET->new(LocalPort=>8080,Listen=>16,ReuseAddr=>1) or die; while($c=$s->accept){ while(<$c>){ last if $_ eq "\\r\\n" } print $c "HTTP/1.1 200 OK\\r\\nContent-Length: 12\\r\\nConnection: close\\r\\n\\r\\nhello phone\\n"; close $c }'`;
      expect((await d.api.call('sprites.exec', { name: 'e2e-one', argv: ['sh', '-c', `setsid ${app} >/dev/null 2>&1 </dev/null &`] })).exitCode).toBe(0);
      const panel = page.locator('.url-panel');
      await panel.getByRole('button', { name: 'Connect a relay…' }).waitFor({ timeout: 15_000 });
      // Connected from the CLI while the page is open: the panel follows the daemon's events.
      const connect = await d.cli(['relay', 'connect', `https://127.0.0.1:${relay.port}`, '--ca', path.join(certs.dir, 'ca.pem')], { input: token });
      expect(connect.code, connect.stderr).toBe(0);
      await panel.getByText('relay connected').waitFor({ timeout: 15_000 });
      await panel.getByText('not published').waitFor();
      await panel.getByRole('button', { name: 'Publish (private)' }).click();
      const link = panel.locator('a.url').nth(1);
      await link.waitFor({ timeout: 15_000 });
      const url = (await link.textContent())!;
      expect(url).toMatch(new RegExp(`^https://e2e-one-[a-z0-9]+\\.relay\\.test:${relay.port}/?$`));
      const accessToken = (await panel.locator('code').first().textContent())!;
      expect((await get(agent, url)).status).toBe(401);
      // The app was started in the background a moment ago: wait until it listens (502 until then).
      const withToken = await waitFor('the app to answer through the relay', async () => {
        const r = await get(agent, url, { headers: { authorization: `Bearer ${accessToken}` } });
        return r.status === 502 ? null : r;
      }, 30_000, 200);
      expect(withToken).toMatchObject({ status: 200, body: 'hello phone\n' });
      await panel.getByRole('button', { name: 'Make public' }).click();
      await panel.getByText('Anyone with the URL can open it.').waitFor();
      expect(await get(agent, url)).toMatchObject({ status: 200, body: 'hello phone\n' });
      // The relay goes away and comes back: the panel shows it as it happens.
      const port = relay.port;
      await relay.close();
      await panel.getByText('relay unreachable, retrying…').waitFor({ timeout: 20_000 });
      await panel.locator('.relay-reason').waitFor(); // the words of the failure, e.g. ECONNREFUSED
      await page.mouse.move(0, 799);
      await page.screenshot({ path: path.join(SHOTS, 'url-panel-relay-down.png') });
      relay = await startTestRelay(certs, tokensFile, {}, { port });
      await panel.getByText('relay connected').waitFor({ timeout: 60_000 });
      await waitFor('the public URL to answer again', async () => (await get(agent, url)).status === 200, 15_000, 200);
      expect(await panel.locator('code').count()).toBe(0); // public: no access token to show
      await page.screenshot({ path: path.join(SHOTS, 'url-panel-public.png') });
      await panel.getByRole('button', { name: 'Unpublish' }).click();
      await panel.getByText('not published').waitFor();
      await waitFor('the URL to be gone', async () => (await get(agent, url)).status === 404, 10_000, 200);
      expect((await d.cli(['relay', 'disconnect'])).code).toBe(0);
      await panel.getByRole('button', { name: 'Connect a relay…' }).waitFor({ timeout: 15_000 });
    } finally {
      await agent.close();
      await relay.close();
      removeDir(certs.dir);
    }
  });
});

describe('browser mode is protected', () => {
  const auth = async () => `Bearer ${await pageToken()}`;

  it('refuses API requests without a token; the app shell itself is public code', async () => {
    expect((await fetch(`${origin}/v1/sprites`)).status).toBe(401);
    expect((await fetch(`${origin}/v1/sprites`, { headers: { authorization: 'Bearer made-up' } })).status).toBe(401);
    expect((await fetch(`${origin}/`)).status).toBe(200);
  });

  it('refuses a foreign Origin or Host even with the token', async () => {
    const authorization = await auth();
    expect((await fetch(`${origin}/v1/sprites`, { headers: { authorization } })).status).toBe(200);
    const evil = await fetch(`${origin}/v1/sprites`, { headers: { authorization, origin: 'http://evil.example' } });
    expect(evil.status).toBe(403);
    // DNS rebinding: right address, someone else's Host name.
    const rebinding = await new Promise<number>((resolve, reject) => {
      http.get(`${origin}/v1/sprites`, { headers: { authorization, host: `evil.example:${new URL(origin).port}` } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      }).on('error', reject);
    });
    expect(rebinding).toBe(403);
  });

  it('refuses WebSockets from a foreign Origin or without the token', async () => {
    const token = await pageToken();
    const status = (protocols: string[] | undefined, headers: Record<string, string>) =>
      new Promise<number>((resolve) => {
        const ws = new WebSocket(`${origin.replace('http', 'ws')}/v1/events`, protocols, { headers });
        ws.on('open', () => {
          ws.close();
          resolve(101);
        });
        ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
        ws.on('error', () => resolve(-1));
      });
    const withToken = ['spritely.ui.v1', `spritely.token.${token}`];
    expect(await status(withToken, { origin })).toBe(101);
    expect(await status(withToken, { origin: 'http://evil.example' })).toBe(403);
    expect(await status(undefined, { origin })).toBe(401);
  });

  it('a used login code does not log anyone in again', async () => {
    const { url } = await d.api.call('ui.loginUrl');
    const code = new URL(url).hash.replace('#login=', '');
    const login = () => {
      const key = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'der' }).toString('base64url');
      return fetch(`${origin}/ui/login`, { method: 'POST', headers: { 'content-type': 'application/json', origin }, body: JSON.stringify({ code, key, nonce: crypto.randomBytes(24).toString('base64url') }) });
    };
    expect((await login()).status).toBe(200);
    expect((await login()).status).toBe(401);
  });
});
