#!/usr/bin/env node
// `npm start`: the desktop app when Electron can run here; otherwise one line saying why, and the
// same UI in a browser through `spritely ui`. Builds the CLI, renderer and Electron bundles first
// if they are missing or older than their sources.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureCliBuilt } from '../scripts/build-cli.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const args = process.argv.slice(2);

function electronBinary() {
  try {
    const p = require('electron');
    return typeof p === 'string' && fs.existsSync(p) ? p : null;
  } catch {
    return null;
  }
}

function hasDisplay() {
  if (process.platform !== 'linux' && process.platform !== 'freebsd') return true;
  return Boolean(process.env.DISPLAY || process.env.WAYLAND_DISPLAY);
}

/** Newest modification time (ms) of the files under `paths` (relative to the checkout); 0 if none. */
function newestSource(paths) {
  let newest = 0;
  const visit = (p) => {
    let st;
    try {
      st = fs.statSync(p);
    } catch {
      return;
    }
    if (st.isDirectory()) for (const entry of fs.readdirSync(p)) visit(path.join(p, entry));
    else newest = Math.max(newest, st.mtimeMs);
  };
  for (const p of paths) visit(path.join(root, p));
  return newest;
}

/** Builds `file` when it is missing or older than any of its sources (a pull that changed the UI). */
function ensureBuilt(file, what, cmd, sources) {
  const built = path.join(root, file);
  const exists = fs.existsSync(built);
  if (exists && fs.statSync(built).mtimeMs >= newestSource(sources)) return true;
  process.stderr.write(`spritely: building the ${what} (${exists ? 'its sources changed' : 'first run'})…\n`);
  const r = spawnSync(cmd[0], cmd.slice(1), { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
  return r.status === 0;
}

function run(cmd, argv, env = process.env) {
  const child = spawn(cmd, argv, { cwd: root, stdio: 'inherit', env });
  child.on('exit', (code, signal) => process.exit(signal ? 1 : (code ?? 1)));
  for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => child.kill(sig));
}

// The daemon both front ends start runs from the CLI bundle, built here up front rather than while
// a window or a browser waits on it. If it cannot be built, bin/spritely.js says so and runs tsx.
await ensureCliBuilt({ log: (m) => process.stderr.write(`spritely: ${m}\n`) }).catch(() => {});
const vite = path.join(root, 'node_modules/vite/bin/vite.js');
ensureBuilt('dist/renderer/index.html', 'UI', [process.execPath, vite, 'build', '--config', 'renderer/vite.config.ts', '--logLevel', 'warn'], ['renderer', 'vm/api/contract.ts']);

const electron = electronBinary();
let why = null;
if (!electron) why = "Electron's binary is not installed here (node_modules/electron has no dist/)";
else if (!hasDisplay()) why = 'there is no display (DISPLAY and WAYLAND_DISPLAY are unset)';
else if (!ensureBuilt('dist/electron/main.cjs', 'desktop shell', [process.execPath, 'scripts/build-electron.mjs'], ['electron', 'vm/api/contract.ts'])) why = 'the desktop shell did not build';

if (why) {
  process.stderr.write(`spritely: ${why}; opening the UI in a browser instead (spritely ui).\n`);
  run(process.execPath, [path.join(root, 'bin/spritely.js'), 'ui', ...args]);
} else {
  const env = { ...process.env };
  delete env.ELECTRON_RUN_AS_NODE;
  run(electron, [path.join(root, 'dist/electron/main.cjs'), ...args], env);
}
