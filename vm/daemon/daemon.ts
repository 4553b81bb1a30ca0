/**
 * `spritely daemon run`: the one process that owns every sprite. It takes the data dir's pid lock
 * (one daemon per data dir), re-attaches to running QEMUs, serves the API on the owner-only unix
 * socket (plus an optional token-guarded loopback port), and on SIGTERM/SIGINT lets go of its VMs
 * without stopping them: QEMU outlives the daemon.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ApiServer } from '../api/server.ts';
import { UrlProxy } from '../net/url-proxy.ts';
import { RelayLink } from '../net/relay-link.ts';
import { Engine } from '../engine/engine.ts';
import { HostManager } from '../hosts/host-manager.ts';
import { HostedUrls } from '../hosts/host-url-proxy.ts';
import { ensureLayout, layout as makeLayout, type Layout } from '../paths.ts';
import { safeText } from '../safe-text.ts';
import { QemuDriver } from '../qemu/qemu-driver.ts';
import { VERSION } from '../version.ts';

const UI_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../dist/renderer');

export interface DaemonHandle {
  engine: Engine;
  api: ApiServer;
  proxy: UrlProxy;
  tcpPort: number | null;
  stop(opts?: { leaveRunning?: boolean }): Promise<void>;
}

/** One line per entry: whatever a message carries (a guest's text, a stack) cannot forge another line or drive a terminal. */
function log(msg: string): void {
  process.stderr.write(`${new Date().toISOString()} ${safeText(msg, { maxChars: 8000 })}\n`);
}

/** Takes the pid lock; a stale one (its process gone or not a daemon) is replaced. */
export function takePidLock(file: string): void {
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      fs.writeFileSync(file, `${process.pid}\n`, { flag: 'wx', mode: 0o600 });
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = Number(fs.readFileSync(file, 'utf8').trim());
      if (pid && pid !== process.pid && isDaemon(pid)) throw new Error(`a spritely daemon is already running for this data dir (pid ${pid})`);
      fs.rmSync(file, { force: true });
    }
  }
  throw new Error(`could not take the daemon lock ${file}`);
}

function isDaemon(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('daemon');
  } catch {
    return process.platform !== 'linux';
  }
}

export function apiToken(l: Layout): string {
  try {
    const t = fs.readFileSync(l.apiTokenFile, 'utf8').trim();
    if (t.length >= 32) return t;
  } catch {
    /* make one */
  }
  const token = crypto.randomBytes(32).toString('base64url');
  fs.writeFileSync(l.apiTokenFile, token + '\n', { mode: 0o600 });
  return token;
}

export async function startDaemon(opts: { layout?: Layout; tcpPort?: number } = {}): Promise<DaemonHandle> {
  const l = opts.layout ?? makeLayout();
  ensureLayout(l);
  takePidLock(l.daemonPidFile);
  const driver = new QemuDriver({ runDir: l.runDir, accelCacheFile: l.accelCacheFile, log });
  const engine = new Engine(l, { driver });
  engine.on('log', log);
  let handle!: DaemonHandle;
  try {
    await engine.init();
    const token = apiToken(l);
    let proxy: UrlProxy | null = null;
    const hosts = new HostManager(l, { log, version: VERSION, localUrl: (host, name) => (proxy?.port ? proxy.hostedUrl(host, name) : null) });
    proxy = new UrlProxy(engine, new HostedUrls(hosts));
    const relay = new RelayLink(engine, path.join(l.home, 'relay.json'), log);
    const api = new ApiServer({
      engine,
      version: VERSION,
      token,
      localUrl: (name) => proxy.localUrl(name),
      relay,
      hosts,
      uiSessionsFile: path.join(l.home, 'ui-sessions.json'),
      uiRoot: UI_ROOT,
      onShutdown: (leaveRunning) => void handle.stop({ leaveRunning }).then(() => process.exit(0)),
    });
    await api.listenUnix(l.apiSocket);
    const tcpPort = await listenLoopback(api, l, opts.tcpPort);
    const urlPort = await listenStable((p) => proxy.listen(p), path.join(l.home, 'url-port'), process.env.SPRITELY_URL_PORT ? Number(process.env.SPRITELY_URL_PORT) : undefined);
    engine.startIdleLoop();
    relay.start();
    hosts.start();
    let stopping: Promise<void> | null = null;
    handle = {
      engine,
      api,
      proxy,
      tcpPort,
      stop: (stopOpts = {}) => {
        stopping ??= (async () => {
          await api.close();
          await proxy.close();
          await relay.close();
          await hosts.close();
          if (!stopOpts.leaveRunning) await engine.sleepAll();
          engine.detachAll();
          fs.rmSync(l.apiSocket, { force: true });
          fs.rmSync(l.daemonPidFile, { force: true });
        })();
        return stopping;
      },
    };
    log(`spritely daemon ${VERSION} (pid ${process.pid}) serving ${l.apiSocket} and 127.0.0.1:${tcpPort}; local URLs on http://NAME.localhost:${urlPort}/; data in ${l.home}`);
    return handle;
  } catch (err) {
    engine.detachAll();
    fs.rmSync(l.daemonPidFile, { force: true });
    throw err;
  }
}

/**
 * The loopback port for the browser UI: SPRITELY_API_PORT if set, else the port used last time
 * (so an open window reconnects after a daemon restart), else any free one.
 */
async function listenLoopback(api: ApiServer, l: Layout, wanted?: number): Promise<number> {
  const fromEnv = process.env.SPRITELY_API_PORT ? Number(process.env.SPRITELY_API_PORT) : undefined;
  return listenStable((p) => api.listenTcp(p), l.apiPortFile, wanted ?? fromEnv);
}

/** Listens on `wanted`, else on the port recorded in `file` last time, else any; records it. */
async function listenStable(listen: (port: number) => Promise<number>, file: string, wanted?: number): Promise<number> {
  let previous: number | undefined;
  try {
    previous = Number(fs.readFileSync(file, 'utf8').trim()) || undefined;
  } catch {
    /* first run */
  }
  const bound = wanted !== undefined ? await listen(wanted) : await listen(previous ?? 0).catch(() => listen(0));
  fs.writeFileSync(file, `${bound}\n`, { mode: 0o600 });
  return bound;
}

/** Entry point of `spritely daemon run`: serve until a signal, then let go of the VMs and exit. */
export async function runDaemon(): Promise<void> {
  const handle = await startDaemon();
  const onSignal = (sig: string) => {
    log(`${sig}: stopping the daemon; putting awake sprites to sleep`);
    handle.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));
}
