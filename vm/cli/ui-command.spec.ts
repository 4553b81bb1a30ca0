import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { UiAuth } from '../api/ui-auth.ts';
import { browserOpener, openerArgv, openInBrowser, registerUiCommand, type Opener } from './ui-command.ts';

const home = fs.mkdtempSync(path.join(os.tmpdir(), 'uicmd-'));
fs.chmodSync(home, 0o700);
const auth = new UiAuth({ sessionsFile: path.join(home, 'ui-sessions.json') });
afterAll(() => {
  auth.close();
  fs.rmSync(home, { recursive: true, force: true });
});

/** A login page exactly as the daemon writes one for `spritely ui`; returns its path and code. */
function loginPage(): { file: string; code: string } {
  let code = '';
  const { path: file } = auth.loginFile((c) => ((code = c), `http://127.0.0.1:4567/#login=${c}`));
  return { file, code };
}

/** A spawn that records what it was asked to run and exits with `exitCode`. */
function recordingSpawn(exitCode = 0) {
  const calls: { cmd: string; args: string[]; opts: unknown }[] = [];
  const spawnFn = (cmd: string, args: string[], opts: unknown) => {
    calls.push({ cmd, args, opts });
    return {
      once: (ev: string, fn: (a: unknown) => void) => ev === 'exit' && setImmediate(() => fn(exitCode)),
      unref: () => {},
    };
  };
  return { calls, spawnFn };
}

describe('spritely ui', () => {
  it('registers `ui` with --no-open and --logout-all', () => {
    const program = new Command();
    registerUiCommand(program);
    const ui = program.commands.find((c) => c.name() === 'ui')!;
    expect(ui.options.map((o) => o.long)).toEqual(['--no-open', '--logout-all']);
  });

  it('opens with xdg-open only when there is a display, with open on macOS, with $BROWSER when set', () => {
    expect(browserOpener('linux', {})).toBeNull();
    expect(browserOpener('linux', { DISPLAY: ':0' })).toEqual({ cmd: 'xdg-open', args: [] });
    expect(browserOpener('linux', { WAYLAND_DISPLAY: 'wayland-0' })).toEqual({ cmd: 'xdg-open', args: [] });
    expect(browserOpener('darwin', {})).toEqual({ cmd: 'open', args: [] });
    expect(browserOpener('win32', {})).toBeNull();
    expect(browserOpener('linux', { BROWSER: 'firefox --new-window %s:chromium' })).toEqual({ cmd: 'firefox', args: ['--new-window', '%s'] });
    expect(browserOpener('win32', { BROWSER: '/opt/b' })).toEqual({ cmd: '/opt/b', args: [] });
    expect(browserOpener('linux', { BROWSER: '  ', DISPLAY: ':0' })).toEqual({ cmd: 'xdg-open', args: [] });
  });

  it('puts the login page in a 0600 file and only its path on the opener\'s command line', async () => {
    const { file, code } = loginPage();
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(fs.statSync(path.dirname(file)).mode & 0o777).toBe(0o700);
    expect(path.dirname(file).startsWith(home)).toBe(true);
    expect(fs.readFileSync(file, 'utf8')).toContain(`#login=${code}`);
    for (const opener of [{ cmd: 'xdg-open', args: [] }, { cmd: 'open', args: [] }, { cmd: 'firefox', args: ['--new-window', '%s'] }] as Opener[]) {
      const { calls, spawnFn } = recordingSpawn();
      expect(await openInBrowser(file, opener, spawnFn)).toBe(true);
      expect(calls).toHaveLength(1);
      const argv = [calls[0].cmd, ...calls[0].args];
      expect(argv).toEqual([opener.cmd, ...openerArgv(opener, file)]);
      expect(argv).toContain(file);
      expect(argv.join(' ')).not.toContain(code);
      expect(argv.join(' ')).not.toMatch(/login=|code=/);
      expect(calls[0].opts).toEqual({ detached: true, stdio: 'ignore' });
    }
    expect(openerArgv({ cmd: 'b', args: ['--x', '%s', '--y'] }, '/p')).toEqual(['--x', '/p', '--y']);
    expect(openerArgv({ cmd: 'b', args: ['--x'] }, '/p')).toEqual(['--x', '/p']);
  });

  it('keeps the CLI alive until the opener has answered (a detached child alone would let it exit first)', () => {
    const script = path.join(home, 'open.mts');
    const here = path.dirname(fileURLToPath(import.meta.url));
    fs.writeFileSync(script, `import { openInBrowser } from ${JSON.stringify(path.join(here, 'ui-command.ts'))};\nconst ok = await openInBrowser('/x', { cmd: 'sh', args: ['-c', 'sleep 0.2; exit 3'] });\nprocess.stdout.write('opened: ' + ok);\n`);
    const out = execFileSync(process.execPath, [path.join(here, '../../bin/run-ts.js'), script], { encoding: 'utf8', timeout: 20_000 });
    expect(out).toBe('opened: false');
  });

  it('reports an opener that fails or cannot start', async () => {
    const { file } = loginPage();
    expect(await openInBrowser(file, { cmd: 'x', args: [] }, recordingSpawn(3).spawnFn)).toBe(false);
    expect(await openInBrowser(file, { cmd: path.join(home, 'no-such-opener'), args: [] })).toBe(false);
    expect(await openInBrowser(file, { cmd: 'false', args: [] })).toBe(false);
    expect(await openInBrowser(file, { cmd: 'true', args: [] })).toBe(true);
  });
});
