/**
 * The engine end to end through the real CLI and daemon, on real QEMU with the real Debian image:
 * create (a restore, not a boot), exec through the guest agent (exit codes, signals, stdin EOF,
 * separate streams, binary output, env/cwd, timeouts, a command that outlives its client, flow
 * control both ways), console, stop/start, destroy, and two sprites side by side.
 */
import fs from 'node:fs';
import path from 'node:path';
import * as pty from 'node-pty';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, daemonLog, startDaemon, waitFor, type TestDaemon } from './harness.ts';

let d: TestDaemon;

beforeAll(async () => {
  d = await startDaemon();
});

afterAll(async () => {
  await d?.cleanup();
});

async function ok(args: string[], input?: string) {
  const r = await d.cli(args, { input });
  if (r.code !== 0) throw new Error(`spritely ${args.join(' ')} exited ${r.code}: ${r.stderr}\n${daemonLog(d)}`);
  return r.stdout;
}

describe('a sprite through its life', () => {
  it('create → exec → write a file → stop → start → the file is intact → destroy', async () => {
    const created = JSON.parse(await ok(['create', 'dev', '--json']));
    expect(created).toMatchObject({ name: 'dev', state: 'running' });
    expect(created.timings.totalMs).toBeGreaterThan(0);
    expect(created.timings.runningMs).toBeLessThan(created.timings.totalMs + 1);

    expect((await ok(['exec', 'dev', '--', 'uname', '-s'])).trim()).toBe('Linux');
    await ok(['exec', 'dev', '--', 'sh', '-c', 'echo kept-across-stop > /root/marker']);

    const list = JSON.parse(await ok(['list', '--json']));
    expect(list).toEqual([expect.objectContaining({ name: 'dev', state: 'running', image: expect.stringMatching(/^debian-12-/) })]);

    await ok(['stop', 'dev']);
    expect(JSON.parse(await ok(['list', '--json']))[0].state).toBe('stopped');
    await expect(d.api.call('sprites.get', { name: 'dev' })).resolves.toMatchObject({ pid: null });

    await ok(['start', 'dev']);
    expect((await ok(['exec', 'dev', '--', 'cat', '/root/marker'])).trim()).toBe('kept-across-stop');

    const dir = path.join(d.home, 'sprites', 'dev');
    expect(fs.existsSync(dir)).toBe(true);
    await ok(['destroy', 'dev', '--force']);
    expect(fs.existsSync(dir)).toBe(false);
    expect(JSON.parse(await ok(['list', '--json']))).toEqual([]);
  });

  it('destroy without --force refuses when nobody can confirm', async () => {
    await ok(['create', 'keep']);
    const r = await d.cli(['destroy', 'keep']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('Not destroyed');
    expect((await d.api.call('sprites.get', { name: 'keep' })).state).toBe('running');
  });

  it('exec passes exit codes, stderr, stdin and signals through', async () => {
    const r1 = await d.cli(['exec', 'keep', '--', 'sh', '-c', 'echo to-out; echo to-err >&2; exit 7']);
    expect(r1).toMatchObject({ code: 7, stdout: 'to-out\n', stderr: 'to-err\n' });
    expect((await d.cli(['exec', 'keep', '--', 'false'])).code).toBe(1);
    expect((await d.cli(['exec', 'keep', '--', 'cat'], { input: 'piped in\n' })).stdout).toBe('piped in\n');
    expect((await d.cli(['exec', 'keep', '--', 'sh', '-c', 'kill -9 $$'])).code).toBe(137);
    const missing = await d.cli(['exec', 'keep', '--', 'no-such-command-xyz']);
    expect(missing.code).toBe(127);
    expect(missing.stderr).toContain('no-such-command-xyz');
    const env = await d.cli(['exec', 'keep', '-e', 'GREETING=hi there', '-w', '/tmp', '--', 'sh', '-c', 'echo "$GREETING in $(pwd)"']);
    expect(env.stdout).toBe('hi there in /tmp\n');
  });

  it('exec output is binary-safe, stdout and stderr apart; a command never outlives the client that started it', async () => {
    const ws = d.api.socket('/v1/sprites/keep/exec');
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let exit: { code: number | null } | null = null;
    ws.on('message', (raw, isBinary) => {
      const data = raw as Buffer;
      if (!isBinary) {
        const msg = JSON.parse(data.toString());
        if (msg.type === 'exit') exit = msg;
        return;
      }
      (data[0] === 1 ? out : err).push(data.subarray(1));
      ws.send(JSON.stringify({ type: 'ack', bytes: data.length - 1 }));
    });
    await new Promise((r) => ws.once('open', r));
    ws.send(JSON.stringify({ type: 'start', argv: ['perl', '-e', 'binmode STDOUT; binmode STDERR; print map chr, 0..255; print STDERR map chr, reverse 0..255'], stdin: false }));
    await waitFor('exit', () => exit !== null, 60_000, 20);
    expect(exit).toMatchObject({ code: 0 });
    expect(Buffer.concat(out).equals(Buffer.from(Array.from({ length: 256 }, (_, i) => i)))).toBe(true);
    expect(Buffer.concat(err).equals(Buffer.from(Array.from({ length: 256 }, (_, i) => 255 - i)))).toBe(true);
    // a command whose client goes away is killed (its whole process group)
    const gone = d.api.socket('/v1/sprites/keep/exec');
    let started = false;
    gone.on('message', (raw, isBinary) => {
      if (!isBinary && JSON.parse((raw as Buffer).toString()).type === 'started') started = true;
    });
    await new Promise((r) => gone.once('open', r));
    gone.send(JSON.stringify({ type: 'start', argv: ['sh', '-c', 'echo $$ > /tmp/outlive.pid; sleep 301 & exec sleep 300'], stdin: false }));
    await waitFor('started', () => started, 60_000, 20);
    await waitFor('the pid file', async () => (await d.api.call('sprites.exec', { name: 'keep', argv: ['cat', '/tmp/outlive.pid'] })).exitCode === 0, 30_000, 100);
    gone.close();
    await waitFor('the command and its child to be killed', async () => (await d.api.call('sprites.exec', { name: 'keep', argv: ['sh', '-c', 'pgrep -f "sleep 30[01]" || echo none'] })).stdout === 'none\n', 30_000, 200);
  });

  it('an API exec that times out ends the command in the guest too (process group), and says so', async () => {
    const t0 = Date.now();
    const r = await d.api.call('sprites.exec', { name: 'keep', argv: ['sh', '-c', 'echo started; sleep 300 & sleep 301; echo late > /tmp/late'], timeoutMs: 1500 }, { timeoutMs: 60_000 });
    // the guest agent enforced it: KILL to the group, reported as a timeout
    expect(r).toMatchObject({ timedOut: true, stdout: 'started\n', signal: 'KILL', exitCode: null });
    expect(Date.now() - t0).toBeLessThan(15_000);
    const left = await d.api.call('sprites.exec', { name: 'keep', argv: ['sh', '-c', 'sleep 2; pgrep -f "sleep 30[01]" || echo none; ls /tmp/late 2>&1 || true'] });
    expect(left.stdout).toMatch(/^none\n.*No such file/s);
    const quick = await d.api.call('sprites.exec', { name: 'keep', argv: ['sh', '-c', 'exit 3'], timeoutMs: 30_000 });
    expect(quick).toMatchObject({ timedOut: false, exitCode: 3 });
  });

  it('two sprites at once are separate machines', async () => {
    await ok(['create', 'twin']);
    const facts = async (name: string) => ({
      hostname: (await ok(['exec', name, '--', 'hostname'])).trim(),
      machineId: (await ok(['exec', name, '--', 'cat', '/etc/machine-id'])).trim(),
      hostKey: (await ok(['exec', name, '--', 'cat', '/etc/ssh/ssh_host_ed25519_key.pub'])).trim().split(' ')[1],
      bootRandom: (await ok(['exec', name, '--', 'sh', '-c', 'head -c 16 /dev/urandom | od -An -tx1'])).trim(),
    });
    const a = await facts('keep');
    const b = await facts('twin');
    expect(a.hostname).toBe('keep');
    expect(b.hostname).toBe('twin');
    expect(a.machineId).toMatch(/^[0-9a-f]{32}$/);
    expect(a.machineId).not.toBe(b.machineId);
    expect(a.hostKey).not.toBe(b.hostKey);
    expect(a.bootRandom).not.toBe(b.bootRandom);
    // The host key each guest presents is the one the daemon pinned for it.
    const manifest = JSON.parse(fs.readFileSync(path.join(d.home, 'sprites/keep/sprite.json'), 'utf8'));
    expect(manifest.hostKeyPub.split(' ')[1]).toBe(a.hostKey);

    await ok(['exec', 'keep', '--', 'sh', '-c', 'echo only-in-keep > /root/who']);
    expect((await d.cli(['exec', 'twin', '--', 'cat', '/root/who'])).code).not.toBe(0);

    // The filesystem was grown to the 100 GiB overlay; the clock was set from the host.
    const df = await ok(['exec', 'twin', '--', 'df', '-B1', '--output=size', '/']);
    expect(Number(df.trim().split('\n')[1])).toBeGreaterThan(90 * 2 ** 30);
    const guestNow = Number((await ok(['exec', 'twin', '--', 'date', '+%s'])).trim());
    expect(Math.abs(guestNow - Date.now() / 1000)).toBeLessThan(10);
    // The guest reaches the internet through user networking (apt works).
    const apt = await d.cli(['exec', 'twin', '--', 'apt-get', 'update'], { timeoutMs: 240_000 });
    expect(apt.code, apt.stderr).toBe(0);
  });

  it('100 MB of output is flow-controlled: a client that does not ack holds the guest back, daemon memory stays bounded', async () => {
    const rss = () => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${d.pid}/status`, 'utf8'))![1]) * 1024;
    const rssBefore = rss();
    const ws = d.api.socket('/v1/sprites/twin/exec');
    let received = 0;
    let exit: { code: number } | null = null;
    let acking = false;
    ws.on('message', (raw, isBinary) => {
      const data = raw as Buffer;
      if (!isBinary) {
        const msg = JSON.parse(data.toString());
        if (msg.type === 'exit') exit = msg;
        return;
      }
      received += data.length - 1;
      if (acking) ws.send(JSON.stringify({ type: 'ack', bytes: data.length - 1 }));
    });
    await new Promise((r) => ws.once('open', r));
    ws.send(JSON.stringify({ type: 'start', argv: ['head', '-c', '100000000', '/dev/zero'], stdin: false }));
    await new Promise((r) => setTimeout(r, 4000));
    // Without acks the daemon stops reading after ~1 MiB (plus the guest agent's window in flight).
    expect(received).toBeGreaterThan(0);
    expect(received).toBeLessThan(8 * 1024 * 1024);
    const paused = received;
    await new Promise((r) => setTimeout(r, 1000));
    expect(received).toBe(paused);
    acking = true;
    ws.send(JSON.stringify({ type: 'ack', bytes: received }));
    await waitFor('all 100 MB', () => exit !== null, 240_000, 50);
    expect(received).toBe(100_000_000);
    expect(exit).toMatchObject({ code: 0 });
    expect(rss() - rssBefore).toBeLessThan(64 * 1024 * 1024);
  });

  it('stdin is flow-controlled too: a command that does not read holds the client back, daemon memory stays bounded', async () => {
    const rss = () => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${d.pid}/status`, 'utf8'))![1]) * 1024;
    const rssBefore = rss();
    const ws = d.api.socket('/v1/sprites/twin/exec');
    let exit: { code: number } | null = null;
    let started = false;
    ws.on('message', (raw, isBinary) => {
      if (isBinary) return;
      const msg = JSON.parse((raw as Buffer).toString());
      if (msg.type === 'started') started = true;
      if (msg.type === 'exit') exit = msg;
    });
    await new Promise((r) => ws.once('open', r));
    // reads nothing for 6 s, then counts what arrives
    ws.send(JSON.stringify({ type: 'start', argv: ['sh', '-c', 'sleep 6; wc -c'] }));
    await waitFor('started', () => started, 60_000, 20);
    const chunk = Buffer.alloc(1024 * 1024, 120);
    for (let i = 0; i < 100; i++) ws.send(chunk);
    await new Promise((r) => setTimeout(r, 3000));
    // the client still holds most of it: the daemon stopped reading once the agent's stdin credit ran out
    expect(ws.bufferedAmount).toBeGreaterThan(50 * 1024 * 1024);
    expect(rss() - rssBefore).toBeLessThan(48 * 1024 * 1024);
    let out = '';
    ws.on('message', (raw, isBinary) => {
      if (isBinary) out += (raw as Buffer).subarray(1).toString();
    });
    await waitFor('all sent', () => ws.bufferedAmount === 0, 240_000, 50);
    ws.send(JSON.stringify({ type: 'eof' }));
    await waitFor('exit', () => exit !== null, 240_000, 50);
    expect(out.trim()).toBe(String(100 * 1024 * 1024));
    ws.close();
  });

  it('console gives an interactive root shell on a real PTY; resize works; Ctrl-D leaves', async () => {
    const term = pty.spawn(process.execPath, [BIN, 'console', 'twin'], { cols: 100, rows: 30, env: d.env as Record<string, string> });
    let screen = '';
    term.onData((s) => (screen += s));
    const exited = new Promise<number>((r) => term.onExit(({ exitCode }) => r(exitCode)));
    try {
      await waitFor('a root prompt', () => /root@twin[^\n]*# ?$/m.test(screen), 60_000);
      term.write('stty size; echo "sum=$((6*7))"\r');
      await waitFor('stty size', () => /30 100/.test(screen) && /sum=42/.test(screen), 30_000);
      term.resize(120, 40);
      await new Promise((r) => setTimeout(r, 300));
      term.write('stty size\r');
      await waitFor('resized', () => /40 120/.test(screen), 30_000);
      term.write('\x04');
      expect(await Promise.race([exited, new Promise<number>((_, rej) => setTimeout(() => rej(new Error(`console did not exit: ${screen.slice(-300)}`)), 30_000))])).toBe(0);
    } finally {
      term.kill();
    }
  });
});
