/**
 * A sprite whose root attacks the host through every channel it has, on real QEMU with the real
 * daemon (issue #13, items 7 and 8). Root in `evil`, on purpose:
 *   - spams `spritely-env checkpoint create` (refused past the rate, then past the count: `=ERR`
 *     sentences in the guest, a line in the host log; the user's own checkpoints are not limited);
 *   - stops qemu-guest-agent and writes garbage JSON and 64 MiB without a newline into the agent's
 *     port (the daemon closes the channel once, with why, and never rescans a growing buffer);
 *   - floods its serial console (the daemon's serial log stays under its cap per file, rotated;
 *     the cap is 16 KiB here instead of 1 MiB: a TCG guest's UART moves a few KB/s);
 *   - opens 2 000 connections to the egress proxy address and holds them (at most 128 reach the
 *     daemon; the rest get a 503 saying why, and their host `socat` processes end at once);
 *   - floods the spritely-env port with a line past its cap (closed once, reopened, works again).
 * Meanwhile the daemon answers `daemon.info` and `sprites.list` at its usual latency, and a second
 * sprite, `calm`, keeps running commands and reaching its allowed destination. Afterwards nothing
 * outside evil's own dir changed, and nothing of evil is lost: with its real agent restarted, the
 * same agent channel opens again (the stop goes through it), and the user's checkpoint restores it
 * with its files. Other hostile input is covered elsewhere: tar streams in hostile-cp.test.ts,
 * every spelling of this computer's addresses in network.test.ts, hostile API requests in
 * faults.test.ts; the decoders' timing and fuzz specs sit beside them (vm/line-splitter.spec.ts …).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spritePaths } from '../../vm/paths.ts';
import { daemonLog, snapshotTree, startDaemon, testImagesDir, waitFor, type TestDaemon } from './harness.ts';

/** serial.log's cap in this test (1 MiB by default). */
// The smallest cap the daemon takes: an emulated UART under TCG carries only a few hundred bytes
// to a few KB a second, so a bigger cap may not fill during the flood on a loaded machine.
const SERIAL_CAP = 4096;
const EVIL = 'evil';
const CALM = 'calm';
const STEP = 180_000;
let d: TestDaemon;

// --- the daemon's latency, sampled all along ---------------------------------------------------
type Phase = 'before' | 'checkpoints' | 'flood' | 'after';
let phase: Phase = 'before';
const samples: { phase: Phase; info: number; list: number }[] = [];
let probing = true;
let prober: Promise<void> = Promise.resolve();

async function probeLoop(): Promise<void> {
  while (probing) {
    const t0 = performance.now();
    await d.api.call('daemon.info', {}, { timeoutMs: 30_000 });
    const t1 = performance.now();
    await d.api.call('sprites.list', {}, { timeoutMs: 30_000 });
    samples.push({ phase, info: t1 - t0, list: performance.now() - t1 });
    await sleep(100);
  }
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
}

// --- helpers -------------------------------------------------------------------------------------
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function sh(name: string, script: string, timeoutMs = STEP): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  const r = await d.api.call('sprites.exec', { name, argv: ['bash', '-c', script] }, { timeoutMs });
  return { exitCode: r.exitCode ?? -1, stdout: r.stdout, stderr: r.stderr };
}

async function ok(name: string, script: string, timeoutMs = STEP): Promise<string> {
  const r = await sh(name, script, timeoutMs);
  if (r.exitCode !== 0) throw new Error(`${name}: ${script} exited ${r.exitCode}: ${r.stderr}\n${daemonLog(d)}`);
  return r.stdout;
}

/** Daemon log lines about one sprite that match `re`. */
function logLines(re: RegExp): string[] {
  const text = fs.readFileSync(path.join(d.home, 'daemon-test.log'), 'utf8');
  return text.split('\n').filter((l) => re.test(l));
}

/** Host `socat` processes carrying evil's egress connections (the guestfwd's, one per connection). */
function socatsOf(socketPath: string): number {
  let n = 0;
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmd = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (cmd.startsWith('socat\0') && cmd.includes(socketPath)) n++;
    } catch {
      /* raced */
    }
  }
  return n;
}

/** The host network stacks running now (spritely-net processes of this test's data dir). */
function netHelpers(): string[] {
  const out: string[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmd = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (cmd.includes('spritely-net') && cmd.includes(d.layout.runDir)) out.push(entry);
    } catch {
      /* gone */
    }
  }
  return out;
}

function sizeOf(file: string): number {
  return fs.existsSync(file) ? fs.statSync(file).size : 0;
}

/** Everything of the data dir and the image cache outside evil's own dir. */
function outsideEvil(): Record<string, string> {
  const home = snapshotTree(d.home);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(home)) if (!k.startsWith(`sprites/${EVIL}/`) && k !== 'daemon-test.log') out[k] = v;
  for (const [k, v] of Object.entries(snapshotTree(testImagesDir()))) out[`images:${k}`] = v;
  return out;
}

// --- the world ------------------------------------------------------------------------------------
const lanAddress = Object.values(os.networkInterfaces())
  .flatMap((l) => l ?? [])
  .find((i) => i.family === 'IPv4' && !i.internal)?.address;
/** calm's allowed destination: a server on this computer's own address (the user listed it in allow=). */
let origin: http.Server;
let originPort = 0;
let originHits = 0;
let before: Record<string, string>;
let marker: string;
let spamAt = 0;

beforeAll(async () => {
  if (!lanAddress) throw new Error('this test needs one non-loopback IPv4 address on the machine');
  origin = http.createServer((req, res) => {
    originHits++;
    res.end(`origin saw ${req.url}\n`);
  });
  await new Promise<void>((r) => origin.listen(0, lanAddress, r));
  originPort = (origin.address() as net.AddressInfo).port;
  // Small caps, so a TCG guest reaches them in seconds: its emulated UART moves a few KB/s at most.
  d = await startDaemon(undefined, { SPRITELY_GUEST_CHECKPOINTS_KEPT: '2', SPRITELY_GUEST_CHECKPOINTS_PER_MINUTE: '2', SPRITELY_SERIAL_LOG_BYTES: String(SERIAL_CAP) });
  await d.api.call('sprites.create', { name: EVIL }, { timeoutMs: 600_000 });
  await d.api.call('sprites.create', { name: CALM, network: `allow=${lanAddress}` }, { timeoutMs: 600_000 });
  marker = crypto.randomBytes(16).toString('hex');
  await ok(EVIL, `echo ${marker} > /root/keep.txt && sync`);
  const v1 = await d.api.call('checkpoints.create', { name: EVIL, comment: 'the user’s own' }, { timeoutMs: STEP });
  expect(v1.checkpoint.id).toBe('v1');
  expect(await ok(CALM, `curl -sS --max-time 20 http://${lanAddress}:${originPort}/hello`)).toBe('origin saw /hello\n');
  before = outsideEvil();
  prober = probeLoop();
  await sleep(3000);
}, 900_000);

afterAll(async () => {
  probing = false;
  await prober.catch(() => {});
  await d?.cleanup();
  origin?.close();
});

describe('a sprite whose root attacks the host', () => {
  it('spams checkpoints from inside: two are taken, the rest refused past the rate with a clear message (the user is not limited)', async () => {
    phase = 'checkpoints';
    spamAt = Date.now();
    const out = await ok(EVIL, 'for i in 1 2 3 4 5; do spritely-env checkpoint create -m "spam $i"; echo "rc=$?"; done 2>&1');
    const lines = out.trim().split('\n');
    expect(lines.slice(0, 4)).toEqual(['v2', 'rc=0', 'v3', 'rc=0']);
    for (const i of [4, 6, 8]) {
      expect(lines[i]).toMatch(/^spritely-env: too many checkpoints and restores asked from inside this sprite: 2 in the last minute, the limit is 2 a minute; try again in \d+ s$/);
      expect(lines[i + 1]).toBe('rc=1');
    }
    expect(logLines(/sprite evil: refused a checkpoint asked from inside: too many/)).toHaveLength(3);
    // the user's own checkpoints are never limited
    const mine = await d.api.call('checkpoints.create', { name: EVIL, comment: 'mine again' }, { timeoutMs: STEP });
    expect(mine.checkpoint.id).toBe('v4');
  });

  it('floods its agent port, its serial console and the egress proxy at once: each is closed or capped, once, with why', async () => {
    phase = 'flood';
    const egressSocket = spritePaths(d.layout, EVIL).egressSocket;
    const serialLog = path.join(d.home, 'sprites', EVIL, 'serial.log');
    const qemuLog = path.join(d.home, 'sprites', EVIL, 'qemu.log');
    const qemuLogBefore = sizeOf(qemuLog);
    const floodStarted = Date.now();
    // The guest agent: stopped, then its port written by root: garbage JSON, 64 MiB without a newline, more garbage.
    await ok(
      EVIL,
      [
        'systemctl stop qemu-guest-agent',
        'P=/dev/virtio-ports/org.qemu.guest_agent.0',
        `nohup setsid timeout 120 sh -c '{ printf "{\\"return\\": 1}\\n{garbage\\n[[[[\\n"; head -c 67108864 /dev/zero | tr "\\0" A; printf "{\\"return\\": 2}\\nnot json\\n"; } > '"$P" >/dev/null 2>&1 &`,
        'echo $! > /run/agent-flood.pid',
        // The serial console: as fast as it goes.
        `nohup setsid timeout 120 sh -c 'tr "\\0" S < /dev/zero > /dev/ttyS0' >/dev/null 2>&1 &`,
        'echo $! > /run/serial-flood.pid',
      ].join('\n'),
    );
    // The daemon opens that channel when it next needs it: a diff of "now" first asks the guest to
    // sync its disk through it (best effort) — and still answers.
    const diff = await d.api.call('checkpoints.diff', { name: EVIL, from: 'v1', to: 'now', paths: ['/root'] }, { timeoutMs: STEP });
    expect(diff).toMatchObject({ name: EVIL, from: 'v1', to: 'now' });
    const agentClosed = await waitFor('the agent channel to be closed', () => logLines(/sprite evil: guest agent channel closed/).length > 0, 60_000, 200);
    expect(agentClosed).toBe(true);

    // The egress proxy: 2 000 connections, held; one of them (past the cap) is read to see the answer.
    let peak = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        peak = Math.max(peak, socatsOf(egressSocket));
        await sleep(100);
      }
    })();
    // calm, meanwhile: commands and its allowed destination.
    const calm: { ms: number; ok: boolean }[] = [];
    let calming = true;
    const calmLoop = (async () => {
      for (let i = 0; calming; i++) {
        const t0 = performance.now();
        const r = await sh(CALM, `curl -sS --max-time 20 http://${lanAddress}:${originPort}/during-${i}`);
        calm.push({ ms: performance.now() - t0, ok: r.exitCode === 0 && r.stdout === `origin saw /during-${i}\n` });
        await sleep(500);
      }
    })();
    try {
      const flood = await sh(
        EVIL,
        [
          'ulimit -n 8192',
          'opened=0; failed=0',
          'for i in $(seq 2000); do',
          '  if exec {fd}<>/dev/tcp/10.0.2.100/3128; then opened=$((opened+1)); else failed=$((failed+1)); fi',
          '  if [ $i = 400 ]; then exec {probe}<>/dev/tcp/10.0.2.100/3128 && timeout 10 cat <&$probe > /tmp/over-cap.txt; fi',
          'done 2>/dev/null',
          'echo "opened=$opened failed=$failed"',
          'cat /tmp/over-cap.txt',
          'sleep 2',
        ].join('\n'),
        400_000,
      );
      const atTheEnd = socatsOf(egressSocket);
      expect(flood.exitCode, flood.stderr).toBe(0);
      process.stderr.write(`[hostile-guest] egress flood: ${flood.stdout.split('\n')[0]} in ${((Date.now() - floodStarted) / 1000).toFixed(0)} s; socat processes: peak ${peak}, at the end of the flood ${atTheEnd}\n`);
      expect(flood.stdout).toMatch(/^opened=\d+ failed=\d+\n/);
      expect(flood.stdout).toContain('HTTP/1.1 503 Too many connections');
      expect(flood.stdout).toContain('spritely: this sprite already has 128 connections open through its proxy, the most it may have at once; close some and try again.');
      // noted at most once a minute
      const notes = logLines(/sprite evil: egress: 128 connections open at once, the most a sprite may have; new ones are refused with a 503/);
      expect(notes.length).toBeGreaterThanOrEqual(1);
      expect(notes.length).toBeLessThanOrEqual(1 + Math.floor((Date.now() - floodStarted) / 60_000));
      // the guest has closed them all (its shell ended): their socat processes end too
      expect(await waitFor('every socat of the flood to end', () => socatsOf(egressSocket) === 0, 30_000, 200)).toBe(true);
    } finally {
      sampling = calming = false;
      await Promise.allSettled([sampler, calmLoop]);
    }
    await calmLoop; // its own failure, if it had one
    process.stderr.write(`[hostile-guest] qemu.log grew by ${sizeOf(qemuLog) - qemuLogBefore} bytes during the floods\n`);
    expect(peak).toBeGreaterThan(0);
    expect(peak).toBeLessThan(128 + 100);

    // the serial console, all this while
    const serial = { now: sizeOf(serialLog), previous: sizeOf(`${serialLog}.1`) };
    process.stderr.write(`[hostile-guest] serial log: ${serial.now} + ${serial.previous} bytes (cap ${SERIAL_CAP} each)\n`);
    expect(serial.now).toBeLessThanOrEqual(SERIAL_CAP);
    expect(serial.previous).toBeGreaterThan(0); // it was rotated: the guest wrote more than the cap
    expect(serial.previous).toBeLessThanOrEqual(SERIAL_CAP);
    expect(fs.readFileSync(serialLog, 'utf8')).toMatch(new RegExp(`^\\[spritely: \\S+ this log reached ${SERIAL_CAP} bytes; the previous part is in serial\\.log\\.1\\]\\n`));
    expect(fs.readdirSync(path.dirname(serialLog)).filter((f) => f.startsWith('serial.log')).sort()).toEqual(['serial.log', 'serial.log.1']);

    // the agent channel: closed once (nobody reopened it: no one needed it), with why
    expect(logLines(/sprite evil: guest agent channel closed/)).toEqual([
      expect.stringMatching(/sprite evil: guest agent channel closed: the guest agent sent more than 4194304 bytes (without a line end|in answer to one command|before answering a sync); it is reopened when next needed, in 1 s at the earliest$/),
    ]);

    // calm ran commands and reached its destination throughout
    process.stderr.write(`[hostile-guest] calm during the flood: ${calm.length} execs with curl, p50 ${pct(calm.map((c) => c.ms), 50).toFixed(0)} ms, max ${Math.max(...calm.map((c) => c.ms)).toFixed(0)} ms\n`);
    expect(calm.length).toBeGreaterThan(2);
    expect(calm.every((c) => c.ok)).toBe(true);
  });

  it('floods its own network (1 500 refused connections, 3 000 datagrams to closed ports): each is decided, the log stays bounded, and its network answers after', async () => {
    phase = 'flood';
    const started = Date.now();
    const helpers = () => netHelpers().length;
    expect(helpers()).toBe(2); // one host network stack per running sprite
    const hitsBefore = originHits;
    // `internet` refuses this computer's own address: every connection is asked of the daemon and refused
    const flood = await sh(
      EVIL,
      [
        'refused=0; opened=0',
        `for i in $(seq 1500); do if (exec 3<>/dev/tcp/${lanAddress}/${originPort}) 2>/dev/null; then opened=$((opened+1)); else refused=$((refused+1)); fi; done`,
        'echo "refused=$refused opened=$opened"',
      ].join('\n'),
      400_000,
    );
    expect(flood.exitCode, flood.stderr).toBe(0);
    expect(flood.stdout.trim()).toBe('refused=1500 opened=0');
    const shown = async () => JSON.parse((await d.cli(['net', 'show', EVIL, '--json'])).stdout) as { refused: { protocol: string; address: string | null; count: number }[] };
    const tcp = (await shown()).refused.find((x) => x.protocol === 'tcp' && x.address === lanAddress);
    expect(tcp?.count).toBeGreaterThan(1); // one row for the burst, with its count
    const datagrams = await sh(EVIL, `for p in $(seq 2000 4999); do echo x > /dev/udp/${lanAddress}/$p; done 2>/dev/null; echo sent`, 400_000);
    expect(datagrams.stdout.trim()).toBe('sent');
    process.stderr.write(`[hostile-guest] own-network flood: ${flood.stdout.trim()}, 3000 datagrams, in ${((Date.now() - started) / 1000).toFixed(0)} s\n`);
    expect(originHits).toBe(hitsBefore); // nothing of evil's reached this computer
    // the daemon log: one line per destination a minute, at most 60 a minute, then a summary
    const minutes = 1 + Math.floor((Date.now() - started) / 60_000);
    const lines = logLines(/sprite evil: .*refused/);
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.length).toBeLessThanOrEqual(62 * minutes + 10);
    expect((await shown()).refused.some((x) => x.protocol === 'udp')).toBe(true);
    // and its network still answers: a DNS query gets an answer (an address or a refusal), not a timeout
    const dns = await sh(EVIL, 'start=$(date +%s%N); getent hosts spritely-after-flood.example.org >/dev/null; echo "rc=$? ms=$(( ($(date +%s%N) - start) / 1000000 ))"');
    expect(dns.stdout).toMatch(/^rc=[02] ms=\d+$/m);
    expect(Number(/ms=(\d+)/.exec(dns.stdout)![1])).toBeLessThan(4000);
    expect(helpers()).toBe(2);
  });

  it('floods the spritely-env port past its line cap: closed (logged), reopened after a back-off, and spritely-env works again', async () => {
    await ok(EVIL, `timeout 3 sh -c 'head -c 1048576 /dev/zero | tr "\\0" A > /dev/virtio-ports/org.spritely.env.0'; true`);
    expect(logLines(/sprite evil: spritely-env channel closed: the guest sent a request line longer than 262144 bytes; reopening it in 1 s$/)).toHaveLength(1);
    const list = await waitFor('spritely-env to answer again', async () => {
      const r = await sh(EVIL, 'SPRITELY_ENV_TIMEOUT=5 spritely-env checkpoint list');
      return r.exitCode === 0 ? r.stdout : null;
    }, 60_000, 500);
    expect(list).toMatch(/v1 {2}the user’s own/);
  });

  it('past the count, a checkpoint from inside is refused saying how to make room', async () => {
    await sleep(Math.max(0, spamAt + 61_000 - Date.now()));
    const r = await sh(EVIL, 'spritely-env checkpoint create -m "one more"');
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toBe(
      'spritely-env: this sprite already keeps 2 checkpoints made from inside it, the limit is 2; delete some on the host (spritely checkpoint list evil, then spritely checkpoint delete evil ID)\n',
    );
    expect(logLines(/sprite evil: refused a checkpoint asked from inside: this sprite already keeps 2/)).toHaveLength(1);
    phase = 'after';
    await sleep(3000);
  });

  it('meanwhile and afterwards the daemon answered at its usual latency', async () => {
    probing = false;
    await prober;
    const report: string[] = [];
    for (const p of ['before', 'checkpoints', 'flood', 'after'] as Phase[]) {
      const s = samples.filter((x) => x.phase === p);
      const info = s.map((x) => x.info);
      const list = s.map((x) => x.list);
      report.push(`${p}: n=${s.length} daemon.info p50 ${pct(info, 50).toFixed(1)} p95 ${pct(info, 95).toFixed(1)} max ${Math.max(...info).toFixed(0)} ms; sprites.list p50 ${pct(list, 50).toFixed(1)} p95 ${pct(list, 95).toFixed(1)} max ${Math.max(...list).toFixed(0)} ms`);
      expect(s.length, p).toBeGreaterThan(5);
      expect(pct(info, 50), `${p} daemon.info p50`).toBeLessThan(50);
      expect(pct(list, 50), `${p} sprites.list p50`).toBeLessThan(50);
    }
    process.stderr.write(`[hostile-guest] latency\n  ${report.join('\n  ')}\n`);
    const flood = samples.filter((x) => x.phase === 'flood');
    // never stalled: not one round trip of the flood took seconds (the old decoder took minutes)
    expect(Math.max(...flood.map((x) => Math.max(x.info, x.list)))).toBeLessThan(2000);
  });

  it('nothing outside its dir changed; with its agent restarted the same channel opens again, and nothing of it is lost', async () => {
    expect(outsideEvil()).toEqual(before);
    // its disk: the file is there
    expect(await ok(EVIL, 'cat /root/keep.txt')).toBe(`${marker}\n`);
    // the floods end; the real agent comes back
    await ok(EVIL, 'for f in /run/agent-flood.pid /run/serial-flood.pid; do kill -- -$(cat $f) 2>/dev/null; done; sleep 1; systemctl start qemu-guest-agent && systemctl is-active qemu-guest-agent');
    // a stop asks the guest to power off through the same agent channel, which opens again
    const stopped = await d.api.call('sprites.stop', { name: EVIL }, { timeoutMs: STEP });
    expect(stopped.state).toBe('stopped');
    expect(logLines(/sprite evil: guest agent channel reopened: the agent answers again/)).toHaveLength(1);
    // the user's checkpoint brings the machine back, files and all
    const cps = (await d.api.call('checkpoints.list', { name: EVIL })).map((c) => `${c.id} ${c.comment}`);
    expect(cps.slice(0, 4)).toEqual(['v1 the user’s own', 'v2 spam 1', 'v3 spam 2', 'v4 mine again']);
    await d.api.call('checkpoints.restore', { name: EVIL, id: 'v1' }, { timeoutMs: STEP });
    expect(await ok(EVIL, 'cat /root/keep.txt; systemctl is-active qemu-guest-agent')).toBe(`${marker}\nactive\n`);
    expect((await d.api.call('sprites.get', { name: CALM })).state).toBe('running');
  });
});
