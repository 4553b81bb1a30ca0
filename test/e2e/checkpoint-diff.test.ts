/**
 * Comparing checkpoints in the app, end to end: Debian's Chromium against the real daemon and real
 * QEMU. Two nodes of the timeline picked (a checkpoint and "now") → the changed files as a tree →
 * a file's lines side by side, a binary's sizes; names with terminal controls shown as escapes.
 */
import path from 'node:path';
import { type BrowserContext, type Page } from 'playwright-core';
import { build } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { daemonLog, ROOT, startDaemon, type TestDaemon } from '../vm/harness.ts';
import { dropScreenshots, openBrowser, screenshotsDir, type E2eBrowser } from './browser.ts';

/** Screenshots go to a scratch dir unless `SPRITELY_SHOTS=docs/screenshots`. */
const SHOTS = screenshotsDir();

let d: TestDaemon;
let browser: E2eBrowser;
let ctx: BrowserContext;
let page: Page;

const out = async (script: string) => {
  const r = await d.api.call('sprites.exec', { name: 'web', argv: ['sh', '-c', script] }, { timeoutMs: 120_000 });
  if (r.exitCode !== 0) throw new Error(`"${script}" exited ${r.exitCode}: ${r.stderr}\n${daemonLog(d)}`);
  return r.stdout.trim();
};

beforeAll(async () => {
  await build({ configFile: path.join(ROOT, 'renderer/vite.config.ts'), logLevel: 'warn' });
  d = await startDaemon();
  await d.api.call('sprites.create', { name: 'web' }, { timeoutMs: 600_000 });
  const { url } = await d.api.call('ui.loginUrl');
  browser = await openBrowser();
  ({ ctx, page } = browser);
  await page.goto(url);
}, 900_000);

afterAll(async () => {
  await browser?.close();
  dropScreenshots(SHOTS);
  await d?.cleanup();
});

describe('comparing checkpoints in the app', () => {
  it('a checkpoint and now → the changed files as a tree → a file side by side; a binary says its sizes', async () => {
    await out('mkdir -p /srv/app && printf "port=80\\nworkers=2\\nlog=info\\n" > /srv/app/config.ini && echo hello > /srv/app/README && sync');
    const { checkpoint } = await d.api.call('checkpoints.create', { name: 'web', comment: 'app configured' });
    await out(
      [
        'printf "port=8080\\nworkers=4\\nlog=info\\n" > /srv/app/config.ini',
        'rm /srv/app/README',
        'head -c 3000 /dev/urandom > /srv/app/cache.bin',
        'mkdir -p /srv/app/static && echo "<h1>hi</h1>" > /srv/app/static/index.html',
        `touch "/srv/app/$(printf 'odd\\033[31mname')"`,
      ].join(' && '),
    );
    const row = page.locator(`[data-checkpoint="${checkpoint.id}"]`);
    await row.waitFor({ timeout: 60_000 });
    await page.getByRole('button', { name: `Compare ${checkpoint.id}` }).click();
    await page.getByText(/Comparing from/).waitFor();
    await page.mouse.move(0, 799);
    await page.locator('.panels').screenshot({ path: path.join(SHOTS, 'timeline-compare.png') });
    await page.getByRole('button', { name: 'Compare now' }).click();
    const dialog = page.getByRole('dialog', { name: 'Changes in web' });
    await dialog.getByRole('tree').waitFor({ timeout: 60_000 });
    await expect.poll(() => dialog.textContent()).toMatch(new RegExp(`Changes in web: ${checkpoint.id} → now`));
    // the guest's own logs change too; the app's directory is what this test made
    const srv = await dialog.locator('[data-path^="/srv/app/"]').evaluateAll((els) => els.map((e) => `${e.getAttribute('data-path')} ${e.querySelector('.diff-mark')?.textContent ?? ''}`));
    // (names in byte order: upper case first)
    expect(srv).toEqual(['/srv/app/README R', '/srv/app/cache.bin A', '/srv/app/config.ini M', '/srv/app/odd\x1b[31mname A', '/srv/app/static A', '/srv/app/static/index.html A']);
    expect(await dialog.locator('[data-path="/srv/app/odd\x1b[31mname"]').textContent()).toContain('odd\\x1b[31mname');

    await dialog.locator('[data-path="/srv/app/config.ini"] .diff-name').click();
    const table = dialog.getByRole('table', { name: 'Lines before and after' });
    await table.waitFor({ timeout: 30_000 });
    const cells = await table.locator('tr').evaluateAll((trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent)));
    expect(cells).toEqual([['@@ -1,3 +1,3 @@'], ['1', 'port=80', '1', 'port=8080'], ['2', 'workers=2', '2', 'workers=4'], ['3', 'log=info', '3', 'log=info']]);
    await page.mouse.move(0, 799);
    await page.screenshot({ path: path.join(SHOTS, 'checkpoint-diff.png') });

    await dialog.locator('[data-path="/srv/app/cache.bin"] .diff-name').click();
    await expect.poll(() => dialog.textContent(), { timeout: 30_000 }).toMatch(/Binary, absent → 2\.9 KiB/);
    await dialog.getByRole('button', { name: 'Close the comparison' }).click();
    await expect.poll(() => page.getByRole('dialog').count()).toBe(0);
  });
});
