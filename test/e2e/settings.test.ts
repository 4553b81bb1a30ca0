/**
 * Everything the CLI does, from the app, end to end: Debian's Chromium against the real daemon and
 * real QEMU. Each change made in the page is read back through the real CLI (`spritely config
 * get`, `net show`, `ssh-config`, `relay status`): idle timeout and memory limit, a sprite's
 * network policy (and what it refused, in the dialog and in `net show`) and idle timeout, images,
 * usage, the ssh-config block on the clipboard (and ssh through it), a real relay connected with a
 * CA file and disconnected; then the window at 820×600 (every header action reachable, the
 * network dialog fits, the terminal wide) and back at 1280×800. One sprite.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type BrowserContext, type Locator, type Page } from 'playwright-core';
import { build } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addAccount, makeCerts, removeDir, startTestRelay, writeEmptyTokens } from '../relay/harness.ts';
import { ROOT, runCommand, startDaemon, waitFor, type TestDaemon } from '../vm/harness.ts';
import { dropScreenshots, openBrowser, screenshotsDir, type E2eBrowser } from './browser.ts';

/** Screenshots go to a scratch dir unless `SPRITELY_SHOTS=docs/screenshots` (see docs/ui.md). */
const SHOTS = screenshotsDir();
const NAME = 'e2e-set';
const PROMPT = /root@e2e-set[^\n]*[#$] *$/m;

let d: TestDaemon;
let browser: E2eBrowser;
let ctx: BrowserContext;
let page: Page;
let origin: string;

async function terminalText(): Promise<string> {
  return page.evaluate(() => (window as unknown as { __spritely: { terminalText(): string } }).__spritely.terminalText());
}

/** Notes ("copied", "applied") would go by themselves in a few seconds; errors stay in the pictures. */
async function dismissNotes(): Promise<void> {
  const notes = page.locator('.toast.info').getByRole('button', { name: 'Dismiss' });
  while (await notes.count()) await notes.first().click();
}

async function shot(name: string): Promise<void> {
  await dismissNotes();
  await page.mouse.move(0, 0);
  await page.waitForTimeout(150); // hover styles and transitions settle
  await page.screenshot({ path: path.join(SHOTS, name) });
}

async function cli(...args: string[]): Promise<string> {
  const r = await d.cli(args);
  expect(r.code, `spritely ${args.join(' ')}: ${r.stderr}`).toBe(0);
  return r.stdout;
}

const header = () => page.locator('.sprite-header');
const menuButton = () => page.getByRole('button', { name: `More for ${NAME}` });
async function menuItem(name: string): Promise<Locator> {
  await menuButton().click();
  return page.getByRole('menuitem', { name });
}
const settingsSection = (name: string) => page.getByRole('region', { name, exact: true });
const settingsButton = () => page.getByRole('button', { name: 'Settings', exact: true });

beforeAll(async () => {
  await build({ configFile: path.join(ROOT, 'renderer/vite.config.ts'), logLevel: 'warn' });
  d = await startDaemon();
  await d.api.call('sprites.create', { name: NAME }, { timeoutMs: 600_000 });
  const { url } = await d.api.call('ui.loginUrl');
  origin = new URL(url).origin;
  browser = await openBrowser();
  ({ ctx, page } = browser);
  await ctx.grantPermissions(['clipboard-read', 'clipboard-write'], { origin });
  await page.goto(url);
  await page.locator(`[data-sprite="${NAME}"][data-state="running"]`).waitFor({ timeout: 30_000 });
}, 900_000);

afterAll(async () => {
  await browser?.close();
  dropScreenshots(SHOTS);
  await d?.cleanup();
});

describe('daemon-wide settings from the app, read back through the CLI', () => {
  it('idle timeout, memory limit (with the default and the awake total) and checkpoint mounts', async () => {
    await settingsButton().click();
    const idle = settingsSection('Sleep when idle');
    const idleInput = idle.getByLabel('Idle timeout');
    await expect.poll(() => idleInput.inputValue()).toBe('5m');
    await idleInput.fill('ten minutes');
    await idle.getByText('"ten minutes" is not a duration (try 90s, 10m or 1h).').waitFor();
    await idleInput.fill('10m');
    await idle.getByRole('button', { name: 'Save' }).click();
    await idle.getByText('Sprites sleep after 10m without use.').waitFor();
    expect(await cli('config', 'get')).toMatch(/^idle-timeout = 10m00s$/m);

    const mem = settingsSection('Memory limit');
    const sprite = await d.api.call('sprites.get', { name: NAME });
    await mem.getByText(`awake now ${sprite.memoryMiB} MiB in 1 sprite`, { exact: false }).waitFor();
    await mem.getByText('(the default: 80% of this computer’s RAM)', { exact: false }).waitFor();
    const memInput = mem.getByLabel('Memory limit');
    await memInput.fill('3G');
    await mem.getByRole('button', { name: 'Save' }).click();
    await mem.getByText('Limit 3 GiB', { exact: false }).waitFor();
    expect(await cli('config', 'get')).toMatch(/^memory-limit = 3 GiB$/m);
    await shot('settings.png');
    await memInput.fill('default');
    await mem.getByRole('button', { name: 'Save' }).click();
    await mem.getByText('(the default: 80% of this computer’s RAM)', { exact: false }).waitFor();
    expect(await cli('config', 'get')).toMatch(/^memory-limit = .* \(default: 80% of host RAM\)$/m);

    const mounts = settingsSection('Checkpoints inside sprites');
    const mountsInput = mounts.getByLabel('Mounted at once');
    await expect.poll(() => mountsInput.inputValue()).toBe('4');
    await mountsInput.fill('3');
    await mounts.getByRole('button', { name: 'Save' }).click();
    await expect.poll(async () => (await cli('config', 'get')).match(/^checkpoint-mounts = (\d+)$/m)?.[1]).toBe('3');
    await mountsInput.fill('4');
    await mounts.getByRole('button', { name: 'Save' }).click();
    await expect.poll(async () => (await cli('config', 'get')).match(/^checkpoint-mounts = (\d+)$/m)?.[1]).toBe('4');
  });

  it('images: the cached image listed as the default; building it again is a no-op', async () => {
    const before = await d.api.call('images.list');
    const image = before.find((i) => i.default)!;
    const images = settingsSection('Images');
    const row = images.locator(`[data-image="${image.id}"]`);
    await row.waitFor();
    expect(await row.textContent()).toMatch(/yes/);
    await images.getByRole('button', { name: 'Check the default image' }).click();
    await expect.poll(() => images.getByRole('button', { name: 'Check the default image' }).isEnabled(), { timeout: 60_000 }).toBe(true);
    expect(await cli('image', 'list')).toContain(image.id);
    expect((await d.api.call('images.list')).map((i) => [i.id, i.createdAt])).toEqual(before.map((i) => [i.id, i.createdAt]));
  });

  it('usage: a row per sprite, as `spritely usage` has it', async () => {
    const usage = settingsSection('Usage');
    await usage.getByRole('button', { name: 'Refresh' }).click();
    const row = usage.locator(`[data-usage="${NAME}"]`);
    await row.waitFor();
    expect(await row.textContent()).toMatch(new RegExp(`^${NAME}running`));
    expect(await cli('usage')).toMatch(new RegExp(`^${NAME}\\s+running`, 'm'));
    await page.getByRole('button', { name: 'Done' }).click();
    await expect.poll(() => page.getByRole('region', { name: 'Settings', exact: true }).count()).toBe(0);
  });

  it('relay: connected with URL, token and a CA file from the settings page, followed live, disconnected after a confirm', async () => {
    const certs = makeCerts();
    const tokensFile = path.join(certs.dir, 'tokens.json');
    writeEmptyTokens(tokensFile);
    const { token } = addAccount(tokensFile, 'e2e');
    const caFile = path.join(certs.dir, 'ca.pem');
    fs.writeFileSync(caFile, certs.cert);
    const relay = await startTestRelay(certs, tokensFile);
    try {
      // The URL panel offers it where public URLs would be; the settings page has it all.
      await page.locator('.url-panel').getByRole('button', { name: 'Connect a relay…' }).waitFor();
      await settingsButton().click();
      const section = settingsSection('Relay');
      const form = section.getByRole('form', { name: 'Connect a relay' });
      await form.getByLabel('Relay URL').fill(`https://127.0.0.1:${relay.port}`);
      const tokenField = form.getByLabel('Tunnel token');
      expect(await tokenField.getAttribute('type')).toBe('password');
      await tokenField.fill(token);
      await form.getByLabel(/CA certificate/).setInputFiles(caFile);
      await form.getByRole('button', { name: 'Remove ca.pem' }).waitFor();
      await form.getByRole('button', { name: 'Connect' }).click();
      await section.getByText('relay connected').waitFor({ timeout: 30_000 });
      expect(await cli('relay', 'status')).toMatch(new RegExp(`^relay https://127\\.0\\.0\\.1:${relay.port}: connected`, 'm'));
      // the token went into the request body only: not the address bar, not the page's storage
      expect(page.url()).not.toContain(token);
      expect(await page.evaluate(() => JSON.stringify({ ...localStorage, ...sessionStorage }))).not.toContain(token);
      await shot('settings-relay.png');
      await page.getByRole('button', { name: 'Done' }).click();
      await page.locator('.url-panel').getByText('relay connected').waitFor();
      await page.locator('.url-panel').getByRole('button', { name: 'Publish (private)' }).waitFor();
      // the relay goes away: the settings page says so as it happens
      await settingsButton().click();
      await relay.close();
      await section.getByText('relay unreachable, retrying…').waitFor({ timeout: 20_000 });
      await section.getByRole('button', { name: 'Disconnect…' }).click();
      await page.getByRole('dialog', { name: 'Disconnect the relay?' }).getByRole('button', { name: 'Disconnect' }).click();
      await section.getByRole('form', { name: 'Connect a relay' }).waitFor({ timeout: 15_000 });
      expect(await cli('relay', 'status')).toMatch(/^no relay connected/m);
      await page.getByRole('button', { name: 'Done' }).click();
    } finally {
      await relay.close();
      removeDir(certs.dir);
    }
  });
});

describe("a sprite's own settings from its header", () => {
  it('network: none, then an allow list (a refused entry shown in the daemon’s words); `spritely net show` agrees', async () => {
    await header().getByRole('button', { name: 'network: internet' }).click();
    let dialog = page.getByRole('dialog', { name: `Network of ${NAME}` });
    await dialog.getByText('Applies at once', { exact: false }).waitFor();
    await dialog.getByLabel(/^Nothing/).check();
    await dialog.getByRole('button', { name: 'Apply' }).click();
    await header().getByRole('button', { name: 'network: none' }).waitFor();
    // something in the sprite tries to get out (refused by name: nothing leaves this computer)
    await d.api.call('sprites.exec', { name: NAME, argv: ['sh', '-c', 'curl -sS --max-time 8 http://other.example.org/ 2>&1'] }, { timeoutMs: 120_000 });
    const shown = (await cli('net', 'show', NAME)).split('\n');
    expect(shown[0]).toBe(`${NAME}: network none`);
    expect(shown[1]).toBe('last refused, newest first:');
    expect(shown[2]).toMatch(/^  \d\d:\d\d:\d\d  other\.example\.org:80  tcp  this sprite has no network \(network none\)$/);

    await header().getByRole('button', { name: 'network: none' }).click();
    dialog = page.getByRole('dialog', { name: `Network of ${NAME}` });
    // the dialog lists it under the policy, with why
    const refused = dialog.getByRole('region', { name: `Refused destinations of ${NAME}` });
    await refused.getByText('other.example.org:80', { exact: true }).waitFor();
    expect(await refused.locator('.refused-why').first().textContent()).toBe('this sprite has no network (network none)');
    await dialog.getByLabel(/^Only these/).check();
    await dialog.getByLabel('Add hosts').fill('mirror.example.org *.github.com printer');
    await dialog.getByLabel('Add hosts').press('Enter');
    await dialog.getByRole('button', { name: 'Apply' }).click();
    await dialog.getByRole('alert').getByText('"printer" is a single-label name', { exact: false }).waitFor();
    await shot('network.png');
    await dialog.getByRole('button', { name: 'Remove printer' }).click();
    await dialog.getByRole('button', { name: 'Apply' }).click();
    await header().getByRole('button', { name: 'network: allow=mirror.example.org,*.github.com' }).waitFor();
    expect((await cli('net', 'show', NAME)).split('\n')[0]).toBe(`${NAME}: network allow=mirror.example.org,*.github.com`);
  });

  it('idle timeout: its own, never, then the default again', async () => {
    await header().getByRole('button', { name: 'sleeps after 10m (default)' }).click();
    let dialog = page.getByRole('dialog', { name: `When ${NAME} sleeps` });
    await dialog.getByLabel(`Idle time before ${NAME} sleeps`).fill('90s');
    await dialog.getByRole('button', { name: 'Save' }).click();
    await header().getByRole('button', { name: 'sleeps after 1m30s' }).waitFor();
    expect((await d.api.call('sprites.get', { name: NAME })).idleTimeoutSec).toBe(90);
    await header().getByRole('button', { name: 'sleeps after 1m30s' }).click();
    dialog = page.getByRole('dialog', { name: `When ${NAME} sleeps` });
    await dialog.getByLabel(/^Never/).check();
    await dialog.getByRole('button', { name: 'Save' }).click();
    await header().getByRole('button', { name: 'never sleeps' }).waitFor();
    expect((await d.api.call('sprites.get', { name: NAME })).idleTimeoutSec).toBe(0);
    await header().getByRole('button', { name: 'never sleeps' }).click();
    dialog = page.getByRole('dialog', { name: `When ${NAME} sleeps` });
    await dialog.getByLabel(/^Use the default/).check();
    await dialog.getByRole('button', { name: 'Save' }).click();
    await header().getByRole('button', { name: 'sleeps after 10m (default)' }).waitFor();
    expect((await d.api.call('sprites.get', { name: NAME })).idleTimeoutSec).toBeNull();
  });

  it('usage: awake time, CPU, disk and each checkpoint’s RAM + disk (also on its timeline row)', async () => {
    const { checkpoint } = await d.api.call('checkpoints.create', { name: NAME, comment: 'for usage' }, { timeoutMs: 300_000 });
    const tlRow = page.locator(`[data-checkpoint="${checkpoint.id}"]`);
    await tlRow.waitFor({ timeout: 30_000 });
    expect(await tlRow.textContent()).toMatch(/RAM \d[\d.]* (MiB|GiB) \+ disk \d[\d.]* (KiB|MiB|GiB)/);
    await (await menuItem('Usage…')).click();
    const dialog = page.getByRole('dialog', { name: `Usage of ${NAME}` });
    const table = dialog.getByRole('table', { name: `Checkpoints of ${NAME}` });
    await table.waitFor();
    expect(await table.locator('tbody tr').first().textContent()).toMatch(new RegExp(`^${checkpoint.id} for usage`));
    const awake = await dialog.locator('.usage-facts dd').first().textContent();
    expect(awake).toMatch(/^\d+(s|m \d\ds|h \d\dm)$/);
    await shot('usage.png');
    await dialog.getByRole('button', { name: 'Close' }).click();
    // focus is back on the menu button that opened it
    expect(await page.evaluate(() => document.activeElement?.getAttribute('aria-label'))).toBe(`More for ${NAME}`);
  });

  it('Copy SSH config puts exactly what `spritely ssh-config` prints on the clipboard, and ssh works through it', async () => {
    const printed = await cli('ssh-config', NAME);
    await page.evaluate(() => navigator.clipboard.writeText('before'));
    await (await menuItem('Copy SSH config')).click();
    await page.getByText(`SSH config for ${NAME} copied`, { exact: false }).waitFor();
    const copied = await page.evaluate(() => navigator.clipboard.readText());
    expect(copied).toBe(printed);
    expect(copied).toMatch(new RegExp(`^Host ${NAME}$`, 'm'));
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spritely-ssh-config-'));
    try {
      fs.writeFileSync(path.join(dir, 'config'), copied);
      const r = await runCommand('ssh', ['-F', path.join(dir, 'config'), '-o', 'BatchMode=yes', NAME, 'echo', 'via-$((40+2))'], d.env, { timeoutMs: 120_000 });
      expect(r.stdout.trim(), r.stderr).toBe('via-42');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the sprite’s menu, as it looks', async () => {
    await dismissNotes(); // a click on a note would close the menu
    await menuButton().click();
    await page.getByRole('menu').waitFor();
    await shot('sprite-menu.png');
    await page.keyboard.press('Escape');
  });
});

describe('a narrow window', () => {
  it('at 820×600 every header action is reachable and the terminal stays wide', async () => {
    await page.getByRole('button', { name: 'Open a terminal' }).click();
    await waitFor('a prompt', async () => PROMPT.test(await terminalText()), 120_000, 200);
    await page.setViewportSize({ width: 820, height: 600 });
    await page.locator('.rail').waitFor();
    // nothing in the header runs off the right edge
    const boxes = await header().locator('button').evaluateAll((els) => els.map((e) => ({ text: e.textContent, right: e.getBoundingClientRect().right })));
    for (const b of boxes) expect(b.right, `${b.text} ends at ${b.right}`).toBeLessThanOrEqual(820);
    // every action is a button here or in the menu
    const inline = (await header().locator('.sprite-actions > button').allTextContents()).map((x) => x.trim());
    await dismissNotes();
    await menuButton().click();
    const inMenu = (await page.getByRole('menuitem').allTextContents()).map((x) => x.trim());
    await shot('narrow-menu.png');
    await page.keyboard.press('Escape');
    // the network dialog, with its refused list, fits and its buttons are reachable
    await (await menuItem('Network…')).click();
    const network = page.getByRole('dialog', { name: `Network of ${NAME}` });
    await network.getByRole('region', { name: `Refused destinations of ${NAME}` }).locator('li').first().waitFor();
    const box = (await network.boundingBox())!;
    expect(box.x >= 0 && box.y >= 0 && box.x + box.width <= 820 && box.y + box.height <= 600, JSON.stringify(box)).toBe(true);
    await network.getByRole('button', { name: 'Apply' }).scrollIntoViewIfNeeded();
    expect(await network.getByRole('button', { name: 'Apply' }).isVisible()).toBe(true);
    await shot('narrow-network.png');
    await network.getByRole('button', { name: 'Cancel' }).click();
    for (const action of ['Timeline', 'URLs', 'Sleep', 'Stop', 'Destroy…', 'Network…', 'Idle timeout…', 'Usage…', 'Copy SSH config']) expect([...inline, ...inMenu], action).toContain(action);
    const width = await page.locator('.pane:not([hidden]) .xterm-screen').evaluate((e) => e.getBoundingClientRect().width);
    process.stderr.write(`[e2e] terminal width at 820×600: ${Math.round(width)} px (inline: ${inline.join(', ')}; menu: ${inMenu.join(', ')})\n`);
    expect(width).toBeGreaterThanOrEqual(480);
    await page.locator('.pane:not([hidden]) .xterm-host').click();
    await page.keyboard.type('echo narrow-$((6*7))\n');
    await waitFor('the echo', async () => /^narrow-42$/m.test(await terminalText()), 30_000, 100);
    await shot('narrow.png');
    // the timeline as a drawer over the terminal; Destroy from the menu asks first
    await header().getByRole('button', { name: 'Timeline' }).click();
    await page.getByRole('complementary', { name: 'Timeline' }).locator('[data-checkpoint]').first().waitFor();
    await shot('narrow-timeline.png');
    await page.getByRole('button', { name: 'Close Timeline' }).click();
    await (await menuItem('Destroy…')).click();
    await page.getByRole('dialog', { name: `Destroy ${NAME}?` }).waitFor();
    await page.keyboard.press('Escape');
    expect((await d.api.call('sprites.list')).map((s) => s.name)).toEqual([NAME]);
  });

  it('back at 1280×800 everything is docked again', async () => {
    await page.setViewportSize({ width: 1280, height: 800 });
    await page.locator('.sidebar').waitFor();
    await header().getByRole('button', { name: 'Destroy…' }).waitFor();
    await page.locator('.panels:not(.drawer)').waitFor();
    const width = await page.locator('.pane:not([hidden]) .xterm-screen').evaluate((e) => e.getBoundingClientRect().width);
    expect(width).toBeGreaterThan(600);
    await shot('wide.png');
  });
});
