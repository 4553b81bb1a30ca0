/**
 * The Spritely guest agent in a real sprite (TCG), as the daemon uses it: exec and terminal round
 * trips through the API, throughput both ways over the exec stream, a guest that kills its agent
 * (systemd restarts it, the daemon reconnects), and — on a machine of its own, outside the daemon
 * — the time from `cont` to the first answer after a restore from the golden state.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentClient, unixSocket } from '../../vm/guest/agent-client.ts';
import type { AgentChannel } from '../../vm/guest/agent-channel.ts';
import { freeLoopbackPort } from '../../vm/net/free-port.ts';
import { QemuDriver, qemuSockets } from '../../vm/qemu/qemu-driver.ts';
import { startDaemon, testImagesDir, waitFor, type TestDaemon } from './harness.ts';

let d: TestDaemon;
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

/** One command over the exec stream: bytes in, bytes counted out (acked at once), the exit. */
async function execStream(argv: string[], stdin?: (send: (b: Buffer) => Promise<void>) => Promise<void>): Promise<{ outBytes: number; out: string; code: number | null }> {
  const ws = d.api.socket(`/v1/sprites/${NAME}/exec`);
  let outBytes = 0;
  let out = '';
  let exit: { code: number | null } | null = null;
  let started = false;
  ws.on('message', (raw, isBinary) => {
    const data = raw as Buffer;
    if (!isBinary) {
      const msg = JSON.parse(data.toString());
      if (msg.type === 'started') started = true;
      if (msg.type === 'exit' || msg.type === 'error') exit = msg;
      return;
    }
    outBytes += data.length - 1;
    if (out.length < 1000) out += data.subarray(1).toString();
    ws.send(JSON.stringify({ type: 'ack', bytes: data.length - 1 }));
  });
  await new Promise((r) => ws.once('open', r));
  ws.send(JSON.stringify({ type: 'start', argv, stdin: !!stdin }));
  if (stdin) {
    await waitFor('started', () => started, 60_000, 5);
    await stdin((b) => new Promise((resolve, reject) => ws.send(b, (e) => (e ? reject(e) : resolve()))));
    ws.send(JSON.stringify({ type: 'eof' }));
  }
  await waitFor('exit', () => exit !== null, 240_000, 5);
  return { outBytes, out, code: exit!.code };
}

beforeAll(async () => {
  d = await startDaemon();
  await d.api.call('sprites.create', { name: NAME }, { timeoutMs: 600_000 });
});

afterAll(async () => {
  await d?.cleanup();
});

describe('guest agent in a sprite', () => {
  it('exec `true` through the API, round trip', async () => {
    const ms: number[] = [];
    for (let i = 0; i < 20; i++) {
      const t = performance.now();
      expect((await d.api.call('sprites.exec', { name: NAME, argv: ['true'] })).exitCode).toBe(0);
      ms.push(performance.now() - t);
    }
    report('exec true through the API (guest agent), median of 20 (ms)', +median(ms).toFixed(1));
    const env = await d.api.call('sprites.exec', { name: NAME, argv: ['sh', '-c', 'echo "$http_proxy|$LANG|$HOME|$(id -un)"'] });
    // /etc/environment (the proxy for HTTP tools) and /etc/default/locale, as an SSH login has them
    expect(env.stdout).toBe('http://10.0.2.100:3128|C.UTF-8|/root|root\n');
  });

  it('a terminal: login shell, keystroke echo, resize', async () => {
    const ws = d.api.socket(`/v1/sprites/${NAME}/terminal`, { cols: 80, rows: 24 });
    let out = '';
    ws.on('message', (m, bin) => {
      if (!bin) return;
      out += (m as Buffer).toString();
      ws.send(JSON.stringify({ type: 'ack', bytes: (m as Buffer).length }));
    });
    const seen = (s: string, from = 0) => waitFor(`"${s}" on the terminal`, () => out.indexOf(s, from) >= 0, 30_000, 1);
    await seen('# ');
    ws.send(Buffer.from('stty size; echo "[$((6*7))]"\r'));
    await seen('24 80');
    await seen('[42]');
    const echo: number[] = [];
    for (let i = 0; i < 20; i++) {
      const mark = String.fromCharCode(97 + i);
      const from = out.length;
      const t = performance.now();
      ws.send(Buffer.from(mark));
      await seen(mark, from);
      echo.push(performance.now() - t);
    }
    report('terminal keystroke echo through the WebSocket, median of 20 (ms)', +median(echo).toFixed(2));
    ws.send(Buffer.from('\x15'));
    ws.send(JSON.stringify({ type: 'resize', cols: 120, rows: 40 }));
    await new Promise((r) => setTimeout(r, 200));
    const from = out.length;
    ws.send(Buffer.from('stty size\r'));
    await seen('40 120', from);
    ws.send(JSON.stringify({ type: 'close' }));
  });

  it('streams 50 MB of stdout and 20 MiB of stdin over the exec stream', async () => {
    let t = performance.now();
    const down = await execStream(['head', '-c', '50000000', '/dev/zero']);
    expect(down).toMatchObject({ outBytes: 50_000_000, code: 0 });
    report('50 MB stdout over the exec stream (MB/s)', +(50 / ((performance.now() - t) / 1000)).toFixed(1));
    t = performance.now();
    const up = await execStream(['sh', '-c', 'wc -c'], async (send) => {
      const chunk = Buffer.alloc(1 << 20, 7);
      for (let i = 0; i < 20; i++) await send(chunk);
    });
    expect(up.out.trim()).toBe(String(20 << 20));
    report('20 MiB stdin over the exec stream (MiB/s)', +(20 / ((performance.now() - t) / 1000)).toFixed(1));
  });

  it('a guest that kills its agent: systemd restarts it, the daemon reconnects (a new epoch)', async () => {
    const t0 = performance.now();
    // the command dies with the agent that runs it: its answer may be lost
    await d.api.call('sprites.exec', { name: NAME, argv: ['systemctl', 'kill', 'spritely-agent'] }).catch(() => null);
    const back = await waitFor('exec to work again', async () => ((await d.api.call('sprites.exec', { name: NAME, argv: ['echo', 'back'] }).catch(() => null))?.stdout === 'back\n' ? true : null), 60_000, 200);
    expect(back).toBe(true);
    report('agent killed -> restarted and answering exec (ms)', +(performance.now() - t0).toFixed(0));
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
      boot: { kernel: path.join(imageDir, 'vmlinuz'), initrd: path.join(imageDir, 'initrd.img'), cmdline: image.kernelCmdline, netstack: image.network === 'netstack' },
      forwards: [{ hostPort: await freeLoopbackPort(), guestPort: 22 }], egressSocket: path.join(dir, 'x'), netSocket: path.join(dir, 'n'), restoreFrom: golden.stateFile,
    });
    const probe = new AgentClient({ connect: unixSocket(qemuSockets(dir, 'restore-probe').spritelyAgent) });
    try {
      while ((await vm.state()) === 'starting') await new Promise((r) => setTimeout(r, 5));
      // as the engine does it: the HELLO is in the port before the guest runs
      let ran!: () => void;
      const running = new Promise<void>((r) => (ran = r));
      const ready = probe.ready(30_000, { after: running });
      await new Promise<void>((r) => probe.once('hello', () => r()));
      const t0 = performance.now();
      await vm.waitRunning(30_000);
      ran();
      await ready;
      report('restore: cont -> HELLO answered (ms)', +(performance.now() - t0).toFixed(0));
      const r = await run(await probe.exec({ argv: ['true'] }));
      report('restore: cont -> first exec true done (ms)', +(performance.now() - t0).toFixed(0));
      expect(r.code).toBe(0);
      const shell = await probe.pty({ cols: 80, rows: 24 });
      let screen = '';
      shell.on('data', (b) => (screen += b));
      await waitFor('a prompt', () => /# $/.test(screen), 30_000, 2);
      report('restore: cont -> first login shell prompt (ms)', +(performance.now() - t0).toFixed(0));
      shell.close();
    } finally {
      probe.close();
      await vm.quit().catch(() => vm.kill());
      driver.release('restore-probe');
    }
  });
});
