/**
 * CLI start-up: how long `spritely …` takes from spawn to exit, the way a person or an agent pays
 * for it (a new Node process each time). Median / p90 / min of N runs each, interleaved run by run
 * so load from elsewhere hits every variant alike:
 *   - `node -e 0` (the floor: Node itself), `spritely --version`, `spritely --help`;
 *   - `spritely list` against a running daemon (a real one on a temp data dir);
 *   - `spritely exec bench -- true` on a running sprite (wall), and the CLI's own share of it: the
 *     time from spawn to the first byte it sends the daemon (through a pass-through unix socket the
 *     bench puts in front of the daemon's);
 *   - `spritely mcp` ready: spawn → the answer to an MCP `initialize` on stdout;
 *   - `spritely cp` of a 20 MiB file of random bytes here → sprite and sprite → here (wall, MiB/s).
 *   node bin/run-ts.js bench/cli.ts [N=15] [--no-vm] [--no-cp] [--only-cp]
 *   (--no-vm: skip the sprite, so no exec or cp rows; --only-cp: just the two cp rows)
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { BIN, makeHome, startDaemon } from '../test/vm/harness.ts';
import { ensureLayout, layout } from '../vm/paths.ts';
import { median } from './stats.ts';

const N = Number(process.argv.find((a) => /^\d+$/.test(a)) ?? 15);
const withVm = !process.argv.includes('--no-vm');
const withCp = withVm && !process.argv.includes('--no-cp');
const onlyCp = withCp && process.argv.includes('--only-cp');
const CP_BYTES = 20 * 1024 * 1024;

function p90(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.max(0, Math.ceil(0.9 * s.length) - 1)];
}

/** Spawn → exit of one process, in ms; throws if it failed (a bench of an error is no bench). */
function timeRun(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const p = spawn(process.execPath, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    p.stderr.on('data', (c) => (stderr += c));
    p.on('error', reject);
    p.on('exit', (code) => (code === 0 ? resolve(performance.now() - t0) : reject(new Error(`node ${args.join(' ')} exited ${code}: ${stderr}`))));
  });
}

/** Spawn → the answer to `initialize` from `spritely mcp`, in ms. */
function timeMcpReady(env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const p = spawn(process.execPath, [BIN, 'mcp'], { env, stdio: ['pipe', 'pipe', 'inherit'] });
    let out = '';
    let ms = 0;
    p.stdout.on('data', (c) => {
      out += c;
      if (!ms && out.includes('\n')) {
        ms = performance.now() - t0;
        if (!out.includes('"serverInfo"')) reject(new Error(`unexpected answer to initialize: ${out}`));
        p.stdin.end();
      }
    });
    p.on('error', reject);
    p.on('exit', () => (ms ? resolve(ms) : reject(new Error(`spritely mcp exited before answering: ${out}`))));
    p.stdin.write(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'bench', version: '1' } } }) + '\n');
  });
}

/**
 * A unix socket that stands where the daemon's would be for `home` and passes every connection
 * through to `target`, noting when the first byte of the most recent connection arrived.
 */
async function firstByteProxy(home: string, target: string): Promise<{ firstByteAt: () => number; reset: () => void; close: () => void }> {
  const l = layout(home);
  ensureLayout(l);
  let first = 0;
  const server = net.createServer((c) => {
    const up = net.connect(target);
    c.once('data', () => (first ||= performance.now()));
    c.pipe(up).pipe(c);
    const end = () => (c.destroy(), up.destroy());
    c.on('error', end).on('close', end);
    up.on('error', end).on('close', end);
  });
  await new Promise<void>((r) => server.listen(l.apiSocket, r));
  return { firstByteAt: () => first, reset: () => (first = 0), close: () => server.close() };
}

const rows: Record<string, number[]> = {};
const add = (k: string, ms: number): void => {
  (rows[k] ??= []).push(ms);
};

const d = await startDaemon(undefined, { SPRITELY_WARM_SPARE: 'off' });
const proxyHome = makeHome();
const cpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'spritely-bench-cp-'));
let proxy: Awaited<ReturnType<typeof firstByteProxy>> | null = null;
try {
  const proxyEnv = { ...d.env, SPRITELY_HOME: proxyHome };
  if (withVm) {
    await d.api.call('sprites.create', { name: 'bench' }, { timeoutMs: 900_000 });
    proxy = await firstByteProxy(proxyHome, d.layout.apiSocket);
  }
  const variants: Record<string, () => Promise<void>> = {
    'node -e 0': async () => add('node -e 0', await timeRun(['-e', '0'], d.env)),
    'spritely --version': async () => add('spritely --version', await timeRun([BIN, '--version'], d.env)),
    'spritely --help': async () => add('spritely --help', await timeRun([BIN, '--help'], d.env)),
    'spritely list': async () => add('spritely list', await timeRun([BIN, 'list'], d.env)),
    'spritely mcp (initialize answered)': async () => add('spritely mcp (initialize answered)', await timeMcpReady(d.env)),
  };
  if (onlyCp) for (const k of Object.keys(variants)) delete variants[k];
  if (proxy && !onlyCp) {
    const px = proxy;
    variants['spritely exec bench -- true'] = async () => add('spritely exec bench -- true', await timeRun([BIN, 'exec', 'bench', '--', 'true'], d.env));
    variants['exec: spawn → first byte to the daemon'] = async () => {
      px.reset();
      const t0 = performance.now();
      await timeRun([BIN, 'exec', 'bench', '--', 'true'], proxyEnv);
      add('exec: spawn → first byte to the daemon', px.firstByteAt() - t0);
    };
  }
  if (withCp) {
    fs.writeFileSync(path.join(cpDir, 'up.bin'), crypto.randomBytes(CP_BYTES));
    await d.api.call('sprites.exec', { name: 'bench', argv: ['sh', '-c', `head -c ${CP_BYTES} /dev/urandom > /root/down.bin`] });
    variants['spritely cp 20 MiB here → sprite'] = async () => {
      add('spritely cp 20 MiB here → sprite', await timeRun([BIN, 'cp', '-q', path.join(cpDir, 'up.bin'), 'bench:/root/up.bin'], d.env));
    };
    variants['spritely cp 20 MiB sprite → here'] = async () => {
      fs.rmSync(path.join(cpDir, 'down.bin'), { force: true });
      add('spritely cp 20 MiB sprite → here', await timeRun([BIN, 'cp', '-q', 'bench:/root/down.bin', path.join(cpDir, 'down.bin')], d.env));
      if (fs.statSync(path.join(cpDir, 'down.bin')).size !== CP_BYTES) throw new Error('cp from the sprite: wrong size');
    };
  }
  // Warm-up: the page cache, the first exec after a create (waits for the guest's sshd).
  for (let i = 0; i < 2; i++) for (const fn of Object.values(variants)) await fn();
  for (const k of Object.keys(rows)) rows[k] = [];
  for (let i = 0; i < N; i++) for (const fn of Object.values(variants)) await fn();

  const load = os.loadavg().map((x) => x.toFixed(2)).join(' ');
  console.log(`n=${N} per row, node ${process.version}, ${os.cpus().length} CPUs, load ${load}, bin ${fs.realpathSync(BIN)}`);
  console.log(`${'what'.padEnd(42)} ${'median'.padStart(8)} ${'p90'.padStart(8)} ${'min'.padStart(8)}`);
  for (const [k, xs] of Object.entries(rows)) {
    const rate = k.startsWith('spritely cp') ? `  ${(CP_BYTES / 2 ** 20 / (median(xs) / 1000)).toFixed(1)} MiB/s (wall, median)` : '';
    console.log(`${k.padEnd(42)} ${median(xs).toFixed(0).padStart(6)} ms ${p90(xs).toFixed(0).padStart(5)} ms ${Math.min(...xs).toFixed(0).padStart(5)} ms${rate}`);
  }
} finally {
  proxy?.close();
  await d.cleanup();
  fs.rmSync(proxyHome, { recursive: true, force: true });
  fs.rmSync(cpDir, { recursive: true, force: true });
}
