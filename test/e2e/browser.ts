/**
 * What every browser end-to-end file needs: Debian's Chromium (SPRITELY_CHROMIUM to use another)
 * launched headless on a throw-away profile, one page that reports its errors, and where
 * screenshots go — a scratch dir removed afterwards, or the docs' pictures with
 * `SPRITELY_SHOTS=docs/screenshots`.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { ROOT } from '../vm/harness.ts';

export const CHROMIUM = process.env.SPRITELY_CHROMIUM ?? '/usr/bin/chromium';

const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

export interface E2eBrowser {
  ctx: BrowserContext;
  page: Page;
  /** Ends Chromium and removes the profile it made (a profile the caller gave stays). */
  close(): Promise<void>;
}

export async function openBrowser(opts: { profile?: string; viewport?: { width: number; height: number } } = {}): Promise<E2eBrowser> {
  const profile = opts.profile ?? fs.mkdtempSync(path.join(os.tmpdir(), 'spritely-chromium-'));
  const ctx = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, viewport: opts.viewport ?? { width: 1280, height: 800 }, args: ARGS });
  const page = ctx.pages()[0] ?? (await ctx.newPage());
  page.on('pageerror', (e) => process.stderr.write(`[page error] ${e.message}\n`));
  return {
    ctx,
    page,
    close: async () => {
      await ctx.close().catch(() => {});
      if (!opts.profile) fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** Where this file's screenshots go. */
export function screenshotsDir(): string {
  return process.env.SPRITELY_SHOTS ? path.resolve(ROOT, process.env.SPRITELY_SHOTS) : fs.mkdtempSync(path.join(os.tmpdir(), 'spritely-e2e-shots-'));
}

/** Removes a scratch screenshots dir (never the docs' one). */
export function dropScreenshots(dir: string): void {
  if (!process.env.SPRITELY_SHOTS) fs.rmSync(dir, { recursive: true, force: true });
}
