/**
 * Where everything lives. One data dir ($SPRITELY_HOME, default the platform data dir) holds
 * images, sprites, keys and the daemon's socket. Unix socket paths are limited to ~108 bytes, so
 * the sockets of running VMs go to a short run dir when the data dir's path is long.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import envPaths from 'env-paths';

export interface Layout {
  home: string;
  imagesDir: string;
  spritesDir: string;
  runDir: string;
  keysDir: string;
  apiSocket: string;
  apiTokenFile: string;
  apiPortFile: string;
  daemonPidFile: string;
  daemonLog: string;
  configFile: string;
  accelCacheFile: string;
}

export function defaultHome(): string {
  return process.env.SPRITELY_HOME ? path.resolve(process.env.SPRITELY_HOME) : envPaths('spritely', { suffix: '' }).data;
}

/** Longest socket path we create: runDir + '/' + 12-char id + '.serial'. */
const MAX_SOCKET_PATH = 100;

export function layout(home = defaultHome()): Layout {
  const imagesDir = process.env.SPRITELY_IMAGES_DIR ? path.resolve(process.env.SPRITELY_IMAGES_DIR) : path.join(home, 'images');
  let runDir = path.join(home, 'run');
  if (runDir.length + 21 > MAX_SOCKET_PATH) {
    const tag = crypto.createHash('sha256').update(home).digest('hex').slice(0, 10);
    runDir = path.join(os.tmpdir(), `spritely-${process.getuid?.() ?? 0}-${tag}`);
  }
  return {
    home,
    imagesDir,
    spritesDir: path.join(home, 'sprites'),
    runDir,
    keysDir: path.join(home, 'keys'),
    apiSocket: path.join(runDir, 'api.sock'),
    apiTokenFile: path.join(home, 'api-token'),
    apiPortFile: path.join(home, 'api-port'),
    daemonPidFile: path.join(home, 'daemon.pid'),
    daemonLog: path.join(home, 'daemon.log'),
    configFile: path.join(home, 'config.json'),
    accelCacheFile: path.join(home, 'accel.json'),
  };
}

/** Creates the data dir tree owner-only (0700): other local users must not reach sockets or keys. */
export function ensureLayout(l: Layout): void {
  for (const dir of [l.home, l.spritesDir, l.runDir, l.keysDir]) {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    fs.chmodSync(dir, 0o700);
  }
  fs.mkdirSync(l.imagesDir, { recursive: true, mode: 0o755 });
}

export interface SpritePaths {
  dir: string;
  manifest: string;
  disk: string;
  runtime: string;
  /** The daemon's egress proxy for this sprite (the driver delivers the guest's proxy connections here). */
  egressSocket: string;
}

export function spritePaths(l: Layout, name: string): SpritePaths {
  const dir = path.join(l.spritesDir, name);
  const id = crypto.createHash('sha256').update(name).digest('hex').slice(0, 12);
  return {
    dir,
    manifest: path.join(dir, 'sprite.json'),
    disk: path.join(dir, 'disk.qcow2'),
    runtime: path.join(dir, 'runtime.json'),
    egressSocket: path.join(l.runDir, `${id}.egress`),
  };
}
