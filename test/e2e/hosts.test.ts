/**
 * Remote hosts in the app, end to end: Debian's Chromium against the real local daemon, which
 * holds one SSH connection to a second host on this machine (a network namespace with its own sshd
 * and Spritely: test/vm/remote-host.ts). One sprite here, one there. The list is grouped by host
 * with its state and accelerator; a terminal on the remote sprite works; the host drops (its link
 * cut, its ssh ended) and the window shows it unreachable and why, stays usable, and the host comes
 * back on its own. The remote sprite's ⋯ menu reaches its host (a network policy set by its key);
 * at 820×600 the rail names it with its host and the drawer holds the grouped list and "Add a host…".
 */
import path from 'node:path';
import { type BrowserContext, type Page } from 'playwright-core';
import { build } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, startDaemon, waitFor, type TestDaemon } from '../vm/harness.ts';
import { dropScreenshots, openBrowser, screenshotsDir, type E2eBrowser } from './browser.ts';
import { startRemoteHost, type RemoteHost } from '../vm/remote-host.ts';

/** Screenshots go to a scratch dir; `SPRITELY_SHOTS=docs/screenshots` refreshes the docs' pictures. */
const SHOTS = screenshotsDir();

let d: TestDaemon;
let rh: RemoteHost;
let browser: E2eBrowser;
let ctx: BrowserContext;
let page: Page;

async function terminalText(): Promise<string> {
  return page.evaluate(() => (window as unknown as { __spritely: { terminalText(): string } }).__spritely.terminalText());
}

const group = (name: string) => page.getByRole('region', { name: `Sprites on ${name}` });

beforeAll(async () => {
  await build({ configFile: path.join(ROOT, 'renderer/vite.config.ts'), logLevel: 'warn' });
  rh = await startRemoteHost();
  d = await startDaemon();
  rh.setKnownHost('real');
  await d.api.call('hosts.add', { name: 'box', url: rh.url, sshConfig: rh.sshConfig, remoteCommand: rh.remoteCommand }, { timeoutMs: 300_000 });
  await Promise.all([d.api.forHost('box').call('sprites.create', { name: 'web' }, { timeoutMs: 600_000 }), d.api.call('sprites.create', { name: 'here' }, { timeoutMs: 600_000 })]);
  const { url } = await d.api.call('ui.loginUrl');
  browser = await openBrowser();
  ({ ctx, page } = browser);
  await page.goto(url);
}, 900_000);

afterAll(async () => {
  await browser?.close();
  dropScreenshots(SHOTS);
  await d?.cleanup();
  await rh?.cleanup();
});

describe('remote hosts in the app', () => {
  it('one list grouped by host: this computer, then box with its state and accelerator', async () => {
    await group('This computer').locator('[data-sprite="here"][data-state="running"]').waitFor({ timeout: 30_000 });
    const box = group('box');
    await box.locator('[data-sprite="web@box"][data-state="running"]').waitFor({ timeout: 30_000 });
    expect(await box.getAttribute('data-host-state')).toBe('connected');
    expect(await box.locator('[data-host-header="box"]').textContent()).toMatch(/box.*Connected.*TCG/);
  });

  it('a terminal on the remote sprite, through the local daemon and the SSH connection: echo $((6*7)) → 42', async () => {
    await page.locator('[data-sprite="web@box"]').click();
    expect(await page.locator('.sprite-header').textContent()).toMatch(/web.*on box.*Running/);
    await page.getByRole('button', { name: 'Open a terminal' }).click();
    await waitFor('the remote prompt', async () => /root@web[^\n]*[#$] *$/m.test(await terminalText()), 60_000, 100);
    await page.keyboard.type('echo $((6*7))\n');
    await waitFor('42', async () => /^42$/m.test(await terminalText()), 30_000, 100);
    await page.mouse.move(0, 799);
    await page.screenshot({ path: path.join(SHOTS, 'hosts.png') });
  });

  it("the remote sprite's menu: what routes to its host, and a network policy set there by its key", async () => {
    await page.getByRole('button', { name: 'More for web@box' }).click();
    expect(await page.getByRole('menuitem').allTextContents()).toEqual(['Network…', 'Idle timeout…']);
    await page.getByRole('menuitem', { name: 'Network…' }).click();
    const dialog = page.getByRole('dialog', { name: 'Network of web on box' });
    await dialog.getByLabel(/Nothing/).check();
    await dialog.getByRole('button', { name: 'Apply' }).click();
    await page.locator('.sprite-header').getByRole('button', { name: 'network: none' }).waitFor({ timeout: 30_000 });
    expect((await d.api.forHost('box').call('sprites.get', { name: 'web' })).network).toBe('none');
    expect((await d.api.call('sprites.get', { name: 'here' })).network).toBe('internet');
    await page.locator('.sprite-header').getByRole('button', { name: 'network: none' }).click();
    const again = page.getByRole('dialog', { name: 'Network of web on box' });
    await again.getByLabel(/Internet/).check();
    await again.getByRole('button', { name: 'Apply' }).click();
    await page.locator('.sprite-header').getByRole('button', { name: 'network: internet' }).waitFor({ timeout: 30_000 });
    // what it says names the sprite with its host
    await page.locator('.toast', { hasText: 'web on box: network internet.' }).waitFor({ timeout: 10_000 });
    expect(await page.locator('.toast', { hasText: 'web on box: network none.' }).count()).toBe(1);
    while ((await page.locator('.toast').count()) > 0) await page.getByRole('button', { name: 'Dismiss' }).first().click();
  });

  it('the host drops: its sprites show unreachable with the reason, the window stays usable, and it comes back on its own', async () => {
    const before = (await d.api.call('hosts.get', { host: 'box' })).sshPid!;
    rh.setLink(false);
    process.kill(before, 'SIGKILL');
    const box = group('box');
    await page.locator('[data-host="box"][data-host-state="unreachable"]').waitFor({ timeout: 30_000 });
    await box.locator('[data-sprite="web@box"][data-state="unreachable"]').waitFor({ timeout: 5_000 });
    expect(await box.locator('.host-reason').textContent()).toMatch(/unreachable|ended/i);
    expect(await page.locator('.host-away').textContent()).toMatch(/Host box is not connected/);
    await page.mouse.move(0, 799);
    await page.screenshot({ path: path.join(SHOTS, 'hosts-unreachable.png') });
    // not frozen: this computer's sprite is there to use
    const t0 = Date.now();
    await page.locator('[data-sprite="here"]').click();
    await expect.poll(() => page.locator('.sprite-header h1').textContent(), { timeout: 5_000 }).toBe('here');
    expect(Date.now() - t0).toBeLessThan(5_000);
    rh.setLink(true);
    await page.locator('[data-host="box"][data-host-state="connected"]').waitFor({ timeout: 90_000 });
    await box.locator('[data-sprite="web@box"][data-state="running"]').waitFor({ timeout: 10_000 });
    expect((await d.api.call('hosts.get', { host: 'box' })).sshPid).not.toBe(before);
    // the remote terminal comes back to the same shell
    await page.locator('[data-sprite="web@box"]').click();
    await page.locator('.pane:not([hidden]) .xterm-host').click();
    await page.keyboard.type('echo back-$((40+2))\n');
    await waitFor('the terminal after the host came back', async () => /^back-42$/m.test(await terminalText()), 60_000, 200);
  });

  it('at 820×600: the rail names the remote sprite with its host; the drawer holds the grouped list and "Add a host…"', async () => {
    await page.setViewportSize({ width: 820, height: 600 });
    try {
      const rail = page.getByRole('navigation', { name: 'Sprites' });
      await rail.getByRole('button', { name: 'web on box: Running' }).waitFor({ timeout: 10_000 });
      await rail.getByRole('button', { name: 'here: Running' }).waitFor({ timeout: 10_000 });
      await rail.getByRole('button', { name: 'Show the sprite list' }).click();
      const box = group('box');
      await box.locator('[data-sprite="web@box"][data-state="running"]').waitFor({ timeout: 10_000 });
      expect(await box.locator('[data-host-header="box"]').textContent()).toMatch(/box.*Connected.*TCG/);
      await page.locator('.sidebar.drawer').getByText('Add a host…').waitFor({ timeout: 5_000 });
      // nothing in the drawer runs past its right edge
      const over = await page.locator('.sidebar.drawer').evaluate((el) => {
        const right = el.getBoundingClientRect().right;
        return [...el.querySelectorAll('.host-header > *, .sprite-item')].filter((c) => c.getBoundingClientRect().right > right + 0.5).map((c) => c.textContent);
      });
      expect(over).toEqual([]);
      await page.mouse.move(819, 599);
      await page.screenshot({ path: path.join(SHOTS, 'hosts-narrow.png') });
      await page.keyboard.press('Escape');
      await page.locator('.sidebar.drawer').waitFor({ state: 'detached', timeout: 5_000 });
    } finally {
      await page.setViewportSize({ width: 1280, height: 800 });
    }
  });
});
