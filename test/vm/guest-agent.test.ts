/**
 * The Spritely guest agent in a real sprite (TCG): the daemon's client talks to the agent in the
 * guest's RAM straight over the sprite's virtio-serial socket (found through vm/paths.ts; the
 * engine does not use the agent yet). Exec and pty round trips against today's SSH exec, identity
 * in one request, throughput, reconnecting with a new epoch after sleep/wake, time from `cont`
 * to the first ping after a restore, and a guest that kills its agent.
 */
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentClient } from '../../vm/guest/agent-client.ts';
import type { AgentChannel } from '../../vm/guest/agent-channel.ts';
import { freeLoopbackPort } from '../../vm/net/free-port.ts';
import { spritePaths } from '../../vm/paths.ts';
import { readRuntime } from '../../vm/store/sprite-manifest.ts';
import { QemuDriver, qemuSockets } from '../../vm/qemu/qemu-driver.ts';
import { startDaemon, testImagesDir, waitFor, type TestDaemon } from './harness.ts';

let d: TestDaemon;
let client: AgentClient;
const logs: string[] = [];
const NAME = 'ga';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const report = (what: string, value: unknown) => process.stderr.write(`[guest-agent] ${what}: ${typeof value === 'string' ? value : JSON.stringify(value)}\n`);

async function run(ch: AgentChannel): Promise<{ out: string; err: string; code: number | null; signal: string | null }> {
  let out = '';
  let err = '';
  ch.on('data', (b) => (out += b));
  ch.stderr.on('data', (b) => (err += b));
  const e = await ch.done;
  return { out, err, code: e.code, signal: e.signal };
}
const sh = async (script: string) => run(await client.exec({ argv: ['sh', '-c', script] }));

/** The sprite's agent socket, from the QEMU driver's handle in its runtime file. */
function agentSocketOf(name: string): string {
  const rt = readRuntime(path.join(spritePaths(d.layout, name).dir, 'runtime.json'));
  const socket = (rt?.machine as { spritelyAgentSocket?: string } | undefined)?.spritelyAgentSocket;
  if (!socket) throw new Error(`no agent socket in the runtime file of ${name}`);
  return socket;
}

beforeAll(async () => {
  d = await startDaemon();
  await d.api.call('sprites.create', { name: NAME }, { timeoutMs: 600_000 });
  client = new AgentClient({ socketPath: agentSocketOf(NAME), name: NAME, log: (m) => logs.push(m) });
});

afterAll(async () => {
  client?.close();
  await d?.cleanup();
});

describe('guest agent in a sprite', () => {
  it('answers at once: handshake, exec `true` round trip vs SSH exec', async () => {
    const t0 = performance.now();
    const info = await client.ready(30_000);
    report('handshake on a running sprite (ms)', +(performance.now() - t0).toFixed(1));
    expect(info.agent).toBe('spritely-agent');
    const agentMs: number[] = [];
    for (let i = 0; i < 20; i++) {
      const t = performance.now();
      expect((await run(await client.exec({ argv: ['true'] }))).code).toBe(0);
      agentMs.push(performance.now() - t);
    }
    const sshMs: number[] = [];
    for (let i = 0; i < 10; i++) {
      const t = performance.now();
      expect((await d.api.call('sprites.exec', { name: NAME, argv: ['true'] })).exitCode).toBe(0);
      sshMs.push(performance.now() - t);
    }
    const pings: number[] = [];
    for (let i = 0; i < 20; i++) pings.push(await client.ping());
    report('exec true over the agent, median of 20 (ms)', +median(agentMs).toFixed(1));
    report('exec true over the API + SSH, median of 10 (ms)', +median(sshMs).toFixed(1));
    report('ping, median of 20 (ms)', +median(pings).toFixed(2));
    expect(median(agentMs)).toBeLessThan(median(sshMs));
  });

  it('runs commands with separate streams, env, cwd and exit codes', async () => {
    const r = await run(await client.exec({ argv: ['sh', '-c', 'echo "$A $(pwd) $(id -un)"; echo e >&2; exit 4'], env: { A: 'x' }, cwd: '/tmp' }));
    expect(r).toEqual({ out: 'x /tmp root\n', err: 'e\n', code: 4, signal: null });
    const env = await sh('echo "$http_proxy|$LANG|$HOME"');
    expect(env.out).toBe('http://10.0.2.100:3128|C.UTF-8|/root\n');
  });

  it('a pty: login shell, keystroke echo, resize', async () => {
    const ch = await client.pty({ cols: 80, rows: 24 });
    let out = '';
    ch.on('data', (b) => (out += b));
    const seen = (s: string, from = 0) => waitFor(`"${s}" on the terminal`, () => out.indexOf(s, from) >= 0, 30_000, 2);
    ch.write('stty size; echo "[$((6*7))]"\n');
    await seen('24 80');
    await seen('[42]');
    const echo: number[] = [];
    for (let i = 0; i < 20; i++) {
      const mark = String.fromCharCode(97 + i);
      const from = out.length;
      const t = performance.now();
      ch.write(mark);
      await seen(mark, from);
      echo.push(performance.now() - t);
    }
    report('pty keystroke echo round trip, median of 20 (ms)', +median(echo).toFixed(2));
    ch.write('\x15'); // ^U: drop the typed line
    ch.resize(120, 40);
    ch.write('stty size\n');
    await seen('40 120');
    ch.write('exit\n');
    expect((await ch.done).code).toBe(0);
  });

  it('gives the machine an identity in one request, in milliseconds', async () => {
    const machineId = crypto.randomBytes(16).toString('hex');
    const t = performance.now();
    const r = await client.identity({ hostname: 'ga-renamed', machineId, seed: crypto.randomBytes(64), timeNs: BigInt(Date.now()) * 1_000_000n });
    report('identity: in the guest / round trip (ms)', [r.ms, +(performance.now() - t).toFixed(1)]);
    report('identity steps (ms)', r.steps);
    expect(r.ok).toBe(true);
    expect(r.ms).toBeLessThan(100);
    const check = await sh('hostname; cat /etc/machine-id; grep 127.0.1.1 /etc/hosts');
    expect(check.out).toBe(`ga-renamed\n${machineId}\n127.0.1.1\tga-renamed\n`);
  });

  it('streams 50 MB of stdout and 20 MiB of stdin', async () => {
    let t = performance.now();
    const down = await client.exec({ argv: ['head', '-c', '50000000', '/dev/zero'], window: 1 << 20 });
    let n = 0;
    down.on('data', (b: Buffer) => (n += b.length));
    expect((await down.done).code).toBe(0);
    expect(n).toBe(50_000_000);
    report('50 MB stdout (MB/s)', +(50 / ((performance.now() - t) / 1000)).toFixed(1));
    t = performance.now();
    const up = await client.exec({ argv: ['sh', '-c', 'cat > /dev/null; echo done'] });
    let upOut = '';
    up.on('data', (b) => (upOut += b));
    const chunk = Buffer.alloc(1 << 20, 7);
    for (let i = 0; i < 20; i++) if (!up.write(chunk)) await new Promise((r) => up.once('drain', r));
    up.end();
    await up.done;
    expect(upOut).toBe('done\n');
    report('20 MiB stdin (MiB/s)', +(20 / ((performance.now() - t) / 1000)).toFixed(1));
  });

  it('a client that goes away: its sessions are killed after the grace; the agent serves the next one', async () => {
    const ch = await client.exec({ argv: ['sh', '-c', 'yes > /dev/null & sleep 1000'] });
    ch.resume();
    client.reset('test: the daemon goes away');
    expect((await ch.done).lost).toBeTruthy();
    await new Promise((r) => setTimeout(r, 3000));
    const left = await sh('pgrep -x yes; pgrep -x -f "sleep 1000"; echo end');
    expect(left.out).toBe('end\n');
  });

  it('sleep and wake: the old epoch ends, the client reconnects to the agent in the woken RAM', async () => {
    const ch = await client.exec({ argv: ['sleep', '1000'] });
    ch.resume();
    const lost = ch.done;
    await d.api.call('sprites.sleep', { name: NAME }, { timeoutMs: 120_000 });
    expect((await lost).lost).toBeTruthy();
    const t0 = performance.now();
    const woke = d.api.call('sprites.wake', { name: NAME }, { timeoutMs: 120_000 });
    const firstPing = (async () => {
      await client.ready(60_000);
      await client.ping();
      return performance.now() - t0;
    })();
    const [w, pingMs] = await Promise.all([woke, firstPing]);
    report('wake call (ms) / wake timings', [+(performance.now() - t0).toFixed(0), w.timings]);
    report('wake call start -> first agent ping (ms)', +pingMs.toFixed(0));
    const left = await sh('pgrep -x sleep; echo end');
    expect(left.out).toBe('end\n');
  });

  it('a guest that kills its agent: systemd restarts it, the client reconnects', async () => {
    await client.ready();
    const lost = new Promise<Error>((r) => client.once('lost', r));
    const t0 = performance.now();
    const r = await d.api.call('sprites.exec', { name: NAME, argv: ['systemctl', 'kill', 'spritely-agent'] });
    expect(r.exitCode).toBe(0);
    expect((await lost).message).toMatch(/restarted/);
    await client.ready(30_000);
    expect(await client.ping()).toBeGreaterThanOrEqual(0);
    report('agent killed -> restarted and answering (ms)', +(performance.now() - t0).toFixed(0));
    const restarts = await d.api.call('sprites.exec', { name: NAME, argv: ['systemctl', 'show', '-p', 'NRestarts', '--value', 'spritely-agent'] });
    expect(Number(restarts.stdout.trim())).toBeGreaterThanOrEqual(1);
  });
});

describe('guest agent after a restore', () => {
  it('answers a ping right after `cont` on a machine restored from the golden state', async () => {
    const sprite = await d.api.call('sprites.get', { name: NAME });
    const imageDir = path.join(testImagesDir(), sprite.image);
    const goldens = fs.readdirSync(imageDir).filter((f) => /^golden-[0-9a-f]+$/.test(f)).map((f) => JSON.parse(fs.readFileSync(path.join(imageDir, f, 'golden.json'), 'utf8')));
    const golden = goldens.sort((a, b) => (a.createdAt < b.createdAt ? 1 : -1))[0];
    const image = JSON.parse(fs.readFileSync(path.join(imageDir, 'image.json'), 'utf8'));
    const dir = fs.mkdtempSync(path.join(d.home, 'r-'));
    const disk = path.join(dir, 'disk.qcow2');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', golden.disk, '-F', 'qcow2', disk, String(golden.diskVirtualBytes)]);
    const driver = new QemuDriver({ runDir: dir, accelCacheFile: path.join(dir, 'accel.json') });
    const vm = await driver.launch({
      id: 'restore-probe', dir, disk, shape: { memoryMiB: sprite.memoryMiB, cpus: sprite.cpus },
      boot: { kernel: path.join(imageDir, 'vmlinuz'), initrd: path.join(imageDir, 'initrd.img'), cmdline: image.kernelCmdline },
      forwards: [{ hostPort: await freeLoopbackPort(), guestPort: 22 }], egressSocket: path.join(dir, 'x'), restoreFrom: golden.stateFile,
    });
    const probe = new AgentClient({ socketPath: qemuSockets(dir, 'restore-probe').spritelyAgent });
    try {
      while ((await vm.state()) === 'starting') await new Promise((r) => setTimeout(r, 5));
      const t0 = performance.now();
      await vm.waitRunning(30_000);
      await probe.ready(30_000);
      await probe.ping();
      const ms = performance.now() - t0;
      report('restore: cont -> first agent ping (ms)', +ms.toFixed(0));
      const r = await run(await probe.exec({ argv: ['true'] }));
      report('restore: cont -> first exec true done (ms)', +(performance.now() - t0).toFixed(0));
      expect(r.code).toBe(0);
    } finally {
      probe.close();
      await vm.quit().catch(() => vm.kill());
      driver.release('restore-probe');
    }
  });
});
