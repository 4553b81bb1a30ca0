/**
 * Finds or starts the daemon for Electron main. Inside Electron `process.execPath` is the
 * Electron binary, so a daemon spawned the CLI's way would start a second app: when the daemon is
 * not up we start it with ELECTRON_RUN_AS_NODE (Electron's own Node), detached so it outlives the
 * app, and then attach with vm/daemon/autostart.ts like every other client.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ApiClient } from '../vm/api/client.ts';
import { daemonIsUp, ensureDaemon } from '../vm/daemon/autostart.ts';
import { ensureLayout, layout, type Layout } from '../vm/paths.ts';

/** bin/spritely.js, from electron/ (source) or dist/electron/ (bundle). */
export function cliPath(here = path.dirname(fileURLToPath(import.meta.url))): string {
  for (const up of ['..', '../..']) {
    const p = path.resolve(here, up, 'bin/spritely.js');
    if (fs.existsSync(p)) return p;
  }
  return path.resolve(here, '../../bin/spritely.js');
}

export async function connectDaemon(l: Layout = layout(), timeoutMs = 30_000): Promise<ApiClient> {
  const client = new ApiClient(l.apiSocket);
  if (await daemonIsUp(client)) return client;
  if (process.versions.electron) {
    ensureLayout(l);
    const log = fs.openSync(l.daemonLog, 'a', 0o600);
    const child = spawn(process.execPath, [cliPath(), 'daemon', 'run'], {
      detached: true,
      stdio: ['ignore', log, log],
      env: { ...process.env, ELECTRON_RUN_AS_NODE: '1', SPRITELY_HOME: l.home },
    });
    fs.closeSync(log);
    child.unref();
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline && !(await daemonIsUp(client))) await new Promise((r) => setTimeout(r, 100));
  }
  return ensureDaemon(l, { timeoutMs });
}
