/**
 * `spritely ui [--no-open]`: the browser mode of the app. It makes sure the daemon runs, asks it
 * for a one-time login URL (minted over the owner-only unix socket, so only this user can get
 * one), prints it, and opens it in the default browser when there is one. The page then holds an
 * HttpOnly session cookie for the daemon's 127.0.0.1 origin; nothing else is shared.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import type { ApiClient } from '../api/client.ts';
import { ensureDaemon } from '../daemon/autostart.ts';
import { layout } from '../paths.ts';

const RENDERER_INDEX = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../dist/renderer/index.html');

/** The command that opens a URL in the user's browser here, or null when there is none. */
export function browserOpener(platform: NodeJS.Platform, env: NodeJS.ProcessEnv): { cmd: string; args: string[] } | null {
  if (platform === 'darwin') return { cmd: 'open', args: [] };
  if (platform === 'linux' || platform === 'freebsd' || platform === 'openbsd') {
    if (!env.DISPLAY && !env.WAYLAND_DISPLAY) return null;
    return { cmd: 'xdg-open', args: [] };
  }
  return null;
}

export async function loginUrl(api: ApiClient): Promise<string> {
  const { url } = await api.call('ui.loginUrl');
  return url;
}

/** Starts the opener detached; resolves false when it could not be started or failed at once. */
export function openInBrowser(url: string, opener: { cmd: string; args: string[] }): Promise<boolean> {
  return new Promise((resolve) => {
    let settled = false;
    const done = (ok: boolean) => {
      if (!settled) {
        settled = true;
        resolve(ok);
      }
    };
    try {
      const child = spawn(opener.cmd, [...opener.args, url], { detached: true, stdio: 'ignore' });
      child.once('error', () => done(false));
      child.once('exit', (code) => done(code === 0));
      child.unref();
      setTimeout(() => done(true), 1500).unref();
    } catch {
      done(false);
    }
  });
}

export function registerUiCommand(program: Command): void {
  program
    .command('ui')
    .description('Open the Spritely app in your browser (prints a one-time login link)')
    .option('--no-open', 'only print the link')
    .action(async (opts: { open: boolean }) => {
      const api = await ensureDaemon(layout());
      if (!fs.existsSync(RENDERER_INDEX)) process.stderr.write('spritely: the UI is not built yet; run `npm run build:renderer` first.\n');
      const url = await loginUrl(api);
      process.stdout.write(`${url}\n`);
      if (!opts.open) return;
      const opener = browserOpener(process.platform, process.env);
      if (!opener) {
        process.stderr.write('spritely: no browser to open here; open the link above (it works once, for two minutes).\n');
        return;
      }
      if (!(await openInBrowser(url, opener))) process.stderr.write(`spritely: could not run ${opener.cmd}; open the link above in a browser.\n`);
    });
}
