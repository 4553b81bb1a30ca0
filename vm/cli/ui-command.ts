/**
 * `spritely ui [--no-open] [--logout-all]`: the browser mode of the app. It makes sure the daemon
 * runs and has it write a one-time login page (0600, in the 0700 data dir; minted over the
 * owner-only unix socket, so only this user can get one), then opens that page's *path* in the
 * default browser. No command line — the opener's or the browser's — ever carries the login code:
 * other local users can read every process's argv. With `--no-open`, or with no browser to start,
 * the link itself is printed on this terminal. `--logout-all` ends every browser login.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Command } from 'commander';
import { ensureDaemon } from '../daemon/autostart.ts';
import { layout } from '../paths.ts';

const RENDERER_INDEX = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../dist/renderer/index.html');

export interface Opener {
  cmd: string;
  args: string[];
}

/**
 * The command that opens a file in the user's browser here, or null when there is none. `$BROWSER`
 * (the usual convention: commands separated by `:`, `%s` for the target) wins over the platform's.
 */
export function browserOpener(platform: NodeJS.Platform, env: NodeJS.ProcessEnv): Opener | null {
  const fromEnv = env.BROWSER?.split(':')[0]?.trim();
  if (fromEnv) {
    const [cmd, ...args] = fromEnv.split(/\s+/);
    return { cmd, args };
  }
  if (platform === 'darwin') return { cmd: 'open', args: [] };
  if (platform === 'linux' || platform === 'freebsd' || platform === 'openbsd') {
    if (!env.DISPLAY && !env.WAYLAND_DISPLAY) return null;
    return { cmd: 'xdg-open', args: [] };
  }
  return null;
}

/** The opener's argv for a target (the login page's path: no secret in it). */
export function openerArgv(opener: Opener, target: string): string[] {
  return opener.args.some((a) => a.includes('%s')) ? opener.args.map((a) => a.replaceAll('%s', target)) : [...opener.args, target];
}

type SpawnFn = (cmd: string, args: string[], opts: { detached: boolean; stdio: 'ignore' }) => { once(ev: 'error' | 'exit', fn: (arg: unknown) => void): unknown; unref(): void };

/**
 * Starts the opener detached; resolves false when it could not be started or failed at once. The
 * 1.5 s timer keeps this process alive until then (the child is unref'd so a browser that stays
 * open does not hold the CLI).
 */
export function openInBrowser(target: string, opener: Opener, spawnFn: SpawnFn = spawn as unknown as SpawnFn): Promise<boolean> {
  return new Promise((resolve) => {
    let timer: NodeJS.Timeout | undefined;
    const done = (ok: boolean) => {
      clearTimeout(timer);
      resolve(ok);
    };
    try {
      const child = spawnFn(opener.cmd, openerArgv(opener, target), { detached: true, stdio: 'ignore' });
      child.once('error', () => done(false));
      child.once('exit', (code) => done(code === 0));
      child.unref();
      timer = setTimeout(() => done(true), 1500);
    } catch {
      done(false);
    }
  });
}

const ONCE = 'it works once, for two minutes';

export function registerUiCommand(program: Command): void {
  program
    .command('ui')
    .description('Open the Spritely app in your browser (through a one-time login page)')
    .option('--no-open', 'print a one-time login link instead of opening a browser')
    .option('--logout-all', 'end every browser login; open windows say they are logged out')
    .action(async (opts: { open: boolean; logoutAll?: boolean }) => {
      const api = await ensureDaemon(layout());
      if (opts.logoutAll) {
        const { sessions } = await api.call('ui.logoutAll');
        process.stdout.write(`Logged out ${sessions} browser login${sessions === 1 ? '' : 's'}; open windows now say so. \`spritely ui\` logs in again.\n`);
        return;
      }
      if (!fs.existsSync(RENDERER_INDEX)) process.stderr.write('spritely: the UI is not built yet; run `bash scripts/setup.sh` (or `npm run build:renderer`) first.\n');
      const opener = opts.open ? browserOpener(process.platform, process.env) : null;
      const printLink = async (why: string) => {
        const { url } = await api.call('ui.loginUrl');
        process.stdout.write(`${url}\n`);
        process.stderr.write(`spritely: ${why}open the link above in a browser on this computer (${ONCE}; keep it to yourself).\n`);
      };
      if (!opener) return printLink(opts.open ? 'no browser to start here; ' : '');
      const { path: page } = await api.call('ui.loginFile');
      if (!(await openInBrowser(page, opener))) return printLink(`could not run ${opener.cmd}; `);
      process.stdout.write(`${pathToFileURL(page).href}\n`);
      process.stderr.write(
        `spritely: opened the login page above in your browser (${ONCE}). If the browser cannot open it — a snap-packaged browser cannot read ~/.local — run \`spritely ui --no-open\` and open the link it prints.\n`,
      );
    });
}
