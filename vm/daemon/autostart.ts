/**
 * Finds the daemon for a data dir, starting it in the background when it is not running, so every
 * CLI command works on a fresh machine with no separate "start the daemon" step.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ApiClient } from '../api/client.ts';
import { checkRunDir, ensureLayout, type Layout } from '../paths.ts';

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/spritely.js');

export async function daemonIsUp(client: ApiClient): Promise<boolean> {
  try {
    await client.call('daemon.info', {}, { timeoutMs: 5000 });
    return true;
  } catch {
    return false;
  }
}

export async function ensureDaemon(l: Layout, opts: { timeoutMs?: number } = {}): Promise<ApiClient> {
  checkRunDir(l.runDir); // a socket in someone else's dir is not our daemon's: say so, never talk to it
  const client = new ApiClient(l.apiSocket);
  if (await daemonIsUp(client)) return client;
  ensureLayout(l);
  const logFd = fs.openSync(l.daemonLog, 'a', 0o600);
  const child = spawn(process.execPath, [BIN, 'daemon', 'run'], {
    detached: true,
    stdio: ['ignore', logFd, logFd],
    env: { ...process.env, SPRITELY_HOME: l.home },
  });
  fs.closeSync(logFd);
  let exitCode: number | null = null;
  child.on('exit', (code) => (exitCode = code ?? -1));
  child.unref();
  const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
  while (Date.now() < deadline) {
    if (await daemonIsUp(client)) return client;
    // Another CLI may have won the race to start it; its daemon serves us just as well.
    if (exitCode !== null && !(await daemonIsUp(client))) {
      await new Promise((r) => setTimeout(r, 300));
      if (await daemonIsUp(client)) return client;
      throw new Error(`the spritely daemon failed to start (exit ${exitCode}); see ${l.daemonLog}:\n${tail(l.daemonLog)}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`the spritely daemon did not answer within ${(opts.timeoutMs ?? 30_000) / 1000} s; see ${l.daemonLog}`);
}

function tail(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8').trim().split('\n').slice(-5).join('\n');
  } catch {
    return '';
  }
}
