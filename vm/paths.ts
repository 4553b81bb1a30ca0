/**
 * Where everything lives. One data dir ($SPRITELY_HOME, default the platform data dir) holds
 * images, sprites, keys and the daemon's socket. Unix socket paths are limited to ~108 bytes, so
 * the sockets of running VMs go to a short run dir when the data dir's path is long: in
 * $XDG_RUNTIME_DIR (the user's own 0700 dir) when it is set, else in the temp dir. A name in the
 * temp dir can be guessed, and another local user could make it first (and listen on its sockets),
 * so a run dir is used only when it is a real directory, ours, and open to nobody else (0700).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import envPaths from 'env-paths';
import { SpritelyError } from './errors.ts';

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

/** Room a run dir must leave for the longest socket name in it. */
const SOCKET_NAME_ROOM = 21;

/** The run dir for a data dir whose own `run/` would make socket paths too long. */
export function shortRunDir(home: string, env: NodeJS.ProcessEnv = process.env): string {
  const tag = crypto.createHash('sha256').update(home).digest('hex').slice(0, 10);
  const xdg = env.XDG_RUNTIME_DIR;
  if (xdg && path.isAbsolute(xdg)) {
    const dir = path.join(xdg, `spritely-${tag}`);
    if (dir.length + SOCKET_NAME_ROOM <= MAX_SOCKET_PATH) return dir;
  }
  return path.join(os.tmpdir(), `spritely-${process.getuid?.() ?? 0}-${tag}`);
}

export function layout(home = defaultHome(), env: NodeJS.ProcessEnv = process.env): Layout {
  const imagesDir = env.SPRITELY_IMAGES_DIR ? path.resolve(env.SPRITELY_IMAGES_DIR) : path.join(home, 'images');
  let runDir = path.join(home, 'run');
  if (runDir.length + SOCKET_NAME_ROOM > MAX_SOCKET_PATH) runDir = shortRunDir(home, env);
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
  for (const dir of [l.home, l.spritesDir, l.keysDir]) {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    fs.chmodSync(dir, 0o700);
  }
  ensureRunDir(l);
  fs.mkdirSync(l.imagesDir, { recursive: true, mode: 0o755 });
}

/**
 * Makes the run dir, or checks the one that is there. Inside the (0700) data dir it is simply made
 * owner-only, as everything there; elsewhere it is made without `recursive` (its parent, the temp
 * dir or $XDG_RUNTIME_DIR, exists) and then checked, since someone else may have made it first.
 */
export function ensureRunDir(l: Layout): void {
  const inHome = path.dirname(l.runDir) === l.home;
  try {
    fs.mkdirSync(l.runDir, { recursive: inHome, mode: 0o700 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  if (inHome && !fs.lstatSync(l.runDir).isSymbolicLink()) fs.chmodSync(l.runDir, 0o700);
  checkRunDir(l.runDir);
}

/**
 * Whether the run dir exists, after checking it is ours alone: a real directory (not a symlink),
 * owned by this user, open to nobody else. Anything else is refused with what to do: the daemon's
 * socket and the sprites' sockets must never be somewhere another user controls (they could listen
 * there first, and a CLI would talk to them).
 */
export function checkRunDir(dir: string, uid = process.getuid?.()): boolean {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
  const fix = `Remove it if it is not yours to keep (another local user may have made it to catch Spritely's sockets), or use a shorter SPRITELY_HOME (its sockets then live in SPRITELY_HOME/run).`;
  if (st.isSymbolicLink()) throw new SpritelyError('failed_precondition', `The run dir ${dir} is a symbolic link, not a directory. ${fix}`);
  if (!st.isDirectory()) throw new SpritelyError('failed_precondition', `The run dir ${dir} is not a directory. ${fix}`);
  if (uid !== undefined && st.uid !== uid) throw new SpritelyError('failed_precondition', `The run dir ${dir} belongs to user ${st.uid}, not to you (${uid}). ${fix}`);
  if ((st.mode & 0o077) !== 0) throw new SpritelyError('failed_precondition', `The run dir ${dir} is open to other users (mode ${(st.mode & 0o777).toString(8)}; it must be 700). ${fix}`);
  return true;
}

export interface SpritePaths {
  dir: string;
  manifest: string;
  disk: string;
  runtime: string;
  /** The daemon's egress proxy for this sprite (the driver delivers the guest's proxy connections here). */
  egressSocket: string;
  /** The daemon's side of this sprite's host network stack (vm/net/netstack-link.ts). */
  netSocket: string;
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
    netSocket: path.join(l.runDir, `${id}.net`),
  };
}
