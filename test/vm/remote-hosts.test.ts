/**
 * Remote hosts end to end: a second host on this machine (a network namespace with its own sshd
 * and its own Spritely data dir: test/vm/remote-host.ts), driven from the local daemon over real
 * OpenSSH. One sprite on the remote host (and one here, for the grouped list). Through it: the
 * host key and version checks of `host add`, create, exec (stdin too), a terminal, cp both ways,
 * a checkpoint and restore, sleep/wake, a local URL served here, MCP with --host; then the faults:
 * the SSH connection killed mid-exec, the remote daemon restarted, the host going dark while
 * `spritely list` runs, and coming back on its own.
 */
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HostStatus } from '../../vm/api/contract.ts';
import { BIN, daemonLog, runCli, startDaemon, waitFor, type TestDaemon } from './harness.ts';
import { startRemoteHost, type RemoteHost } from './remote-host.ts';

let d: TestDaemon;
let rh: RemoteHost;
const STEP = 180_000;

const SERVER = `perl -MIO::Socket::INET -e '$s=IO::Socket::INET->new(LocalPort=>8080,Listen=>16,ReuseAddr=>1) or die; while($c=$s->accept){ while(<$c>){ last if $_ eq "\\r\\n" } $h=\`hostname\`; chomp $h; $b="hello from $h\\n"; print $c "HTTP/1.1 200 OK\\r\\nContent-Length: ".length($b)."\\r\\nConnection: close\\r\\n\\r\\n$b"; close $c }'`;

beforeAll(async () => {
  rh = await startRemoteHost();
  d = await startDaemon();
}, 120_000);

afterAll(async () => {
  await d?.cleanup();
  await rh?.cleanup();
});

async function cli(args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv } = {}) {
  const r = await runCli(args, { ...d.env, ...opts.env }, { input: opts.input, timeoutMs: STEP });
  return r;
}

async function ok(args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv } = {}): Promise<string> {
  const r = await cli(args, opts);
  if (r.code !== 0) throw new Error(`spritely ${args.join(' ')} exited ${r.code}: ${r.stderr}\n--- local daemon\n${daemonLog(d)}\n--- remote daemon\n${daemonLog({ home: rh.home })}${remoteLog()}`);
  return r.stdout;
}

function remoteLog(): string {
  try {
    return fs.readFileSync(path.join(rh.home, 'daemon.log'), 'utf8').split('\n').slice(-30).join('\n');
  } catch {
    return '';
  }
}

const addArgs = (extra: string[] = []) => ['host', 'add', 'box', rh.url, '--ssh-config', rh.sshConfig, '--remote-command', rh.remoteCommand, ...extra];
const hosts = () => d.api.call('hosts.list');
const box = async (): Promise<HostStatus> => (await hosts()).find((h) => h.name === 'box')!;

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('remote hosts over SSH (a network namespace with its own sshd and Spritely)', () => {
  it('host add refuses an unknown host key (showing it), a wrong one, an incompatible or missing Spritely, and remembers nothing', async () => {
    rh.setKnownHost(null);
    let r = await cli(addArgs());
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('is not in your known_hosts');
    expect(r.stderr).toContain(rh.fingerprint);
    expect(r.stderr).toContain('--accept-new-host-key');
    expect(fs.readFileSync(rh.knownHosts, 'utf8')).toBe('');

    rh.setKnownHost('wrong');
    r = await cli(addArgs(['--accept-new-host-key']));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/is not the one your known_hosts has for it \(it now shows ssh-ed25519 SHA256:[^)]+\).*will not connect/);
    expect(r.stderr).toContain(rh.fingerprint);
    expect(fs.readFileSync(rh.knownHosts, 'utf8')).not.toContain(rh.hostKeyPub.split(' ')[1]);

    rh.setKnownHost('real');
    const old = path.join(rh.dir, 'old-spritely');
    fs.writeFileSync(old, '#!/bin/sh\ncase "$*" in\n  --version) echo 0.0.1;;\n  *) echo "error: unknown option \'--json\'" >&2; exit 1;;\nesac\n', { mode: 0o755 });
    r = await cli(['host', 'add', 'box', rh.url, '--ssh-config', rh.sshConfig, '--remote-command', old]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('"box" runs Spritely 0.0.1 and this computer runs 0.1.0');
    expect(r.stderr).toContain('Upgrade Spritely on the server to 0.1.0');
    expect(r.stderr).toContain('git pull && bash scripts/setup.sh');

    r = await cli(['host', 'add', 'box', rh.url, '--ssh-config', rh.sshConfig, '--remote-command', '/nonexistent/spritely']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('Spritely is not installed on host "box"');
    expect(r.stderr).toContain('--remote-command');

    expect(await hosts()).toEqual([]);
    expect(fs.existsSync(path.join(d.home, 'hosts.json'))).toBe(false);
  }, STEP);

  it('host add --accept-new-host-key shows and records the key, checks QEMU, the accelerator and the disk, and connects', async () => {
    rh.setKnownHost(null);
    const r = JSON.parse(await ok(addArgs(['--accept-new-host-key', '--json'])));
    expect(r.hostKey).toBe(`ssh-ed25519 ${rh.fingerprint}`);
    expect(r.hostKeyAdded).toBe(true);
    expect(fs.readFileSync(rh.knownHosts, 'utf8')).toContain(rh.hostKeyPub.split(' ')[1]);
    const names = r.checks.map((c: { name: string }) => c.name);
    expect(names).toEqual(expect.arrayContaining(['qemu', 'accelerator', 'free disk']));
    expect(r.checks.find((c: { name: string }) => c.name === 'qemu').ok).toBe(true);
    expect(r.host).toMatchObject({ name: 'box', url: rh.url, state: 'connected', version: '0.1.0' });
    expect(fs.statSync(path.join(d.home, 'hosts.json')).mode & 0o777).toBe(0o600);
    // one ssh process for the host, and the remote daemon runs inside the namespace
    expect(processAlive(r.host.sshPid)).toBe(true);
    const remotePid = rh.remoteDaemonPid();
    expect(remotePid).toBeTruthy();
    expect(fs.readlinkSync(`/proc/${remotePid}/ns/net`)).not.toBe(fs.readlinkSync('/proc/self/ns/net'));
    const list = await ok(['host', 'list']);
    expect(list).toMatch(/box\s+ssh:\/\/root@\S+\s+connected/);
    expect((await cli(addArgs())).stderr).toContain('already a host named "box"');
  }, STEP);

  it('create, exec (stdin too), a terminal, cp both ways and one list of both machines', async () => {
    const created = JSON.parse(await ok(['create', '--host', 'box', 'web', '--json']));
    expect(created.state).toBe('running');
    await ok(['create', 'here']);
    expect((await ok(['exec', '--host', 'box', 'web', '--', 'hostname'])).trim()).toBe('web');
    expect((await ok(['exec', 'web', '--', 'hostname'], { env: { SPRITELY_HOST: 'box' } })).trim()).toBe('web');
    expect((await ok(['exec', '--host', 'box', 'web', '--', 'sh', '-c', 'cat > /root/in.txt; wc -c < /root/in.txt'], { input: 'x'.repeat(100_000) })).trim()).toBe('100000');
    const fail = await cli(['exec', '--host', 'box', 'web', '--', 'sh', '-c', 'echo oops >&2; exit 3']);
    expect(fail.code).toBe(3);
    expect(fail.stderr).toBe('oops\n');

    // host use: the default for commands without --host
    await ok(['host', 'use', 'box']);
    expect((await ok(['exec', 'web', '--', 'hostname'])).trim()).toBe('web');
    expect((await ok(['exec', '--host', 'local', 'here', '--', 'hostname'])).trim()).toBe('here');
    await ok(['host', 'use', 'local']);
    expect((await cli(['exec', 'web', '--', 'true'])).stderr).toContain('No sprite named');

    // a terminal on the remote sprite, through the local daemon
    const ws = d.api.forHost('box').socket('/v1/sprites/web/terminal', { cols: 80, rows: 24 });
    let out = '';
    ws.on('message', (raw, isBinary) => {
      if (isBinary) out += raw.toString();
      else if (JSON.parse(raw.toString()).type === 'session') ws.send(Buffer.from('echo $((6*7))XY\r'));
    });
    await waitFor('the terminal echo', () => out.includes('42XY'), 60_000);
    ws.close();

    const src = path.join(d.home, 'to-remote.bin');
    const back = path.join(d.home, 'from-remote.bin');
    const bytes = Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 7) % 256));
    fs.writeFileSync(src, bytes);
    await ok(['cp', '--host', 'box', src, 'web:/root/blob']);
    expect((await ok(['exec', '--host', 'box', 'web', '--', 'sha256sum', '/root/blob'])).split(' ')[0]).toBe(crypto.createHash('sha256').update(bytes).digest('hex'));
    await ok(['cp', '--host', 'box', 'web:/root/blob', back]);
    expect(fs.readFileSync(back).equals(bytes)).toBe(true);

    const all = await ok(['list']);
    expect(all).toMatch(/^HOST\s+NAME\s+STATE/);
    expect(all).toMatch(/\nlocal\s+here\s+running/);
    expect(all).toMatch(/\nbox\s+web\s+running/);
    const json = JSON.parse(await ok(['list', '--json']));
    expect(json.map((s: { host: string; name: string }) => `${s.host}/${s.name}`).sort()).toEqual(['box/web', 'local/here']);
    expect((await ok(['list', '--host', 'box', '--json'])).includes('"here"')).toBe(false);
  }, STEP);

  it('checkpoint and restore, sleep and wake', async () => {
    await ok(['exec', '--host', 'box', 'web', '--', 'sh', '-c', 'echo one > /root/state']);
    const cp = JSON.parse(await ok(['checkpoint', 'create', '--host', 'box', 'web', '-m', 'one', '--json']));
    await ok(['exec', '--host', 'box', 'web', '--', 'sh', '-c', 'echo two > /root/state']);
    await ok(['checkpoint', 'restore', '--host', 'box', 'web', cp.id]);
    expect((await ok(['exec', '--host', 'box', 'web', '--', 'cat', '/root/state'])).trim()).toBe('one');
    expect(await ok(['checkpoint', 'list', '--host', 'box', 'web'])).toContain('one');

    await ok(['sleep', '--host', 'box', 'web']);
    expect((await d.api.forHost('box').call('sprites.get', { name: 'web' })).state).toBe('sleeping');
    expect((await ok(['exec', '--host', 'box', 'web', '--', 'cat', '/root/state'])).trim()).toBe('one');
    expect((await d.api.forHost('box').call('sprites.get', { name: 'web' })).state).toBe('running');
  }, STEP);

  it("serves the remote sprite's URL on this computer (http://web.box.localhost:PORT/) and re-emits its events", async () => {
    await ok(['exec', '--host', 'box', 'web', '--', 'sh', '-c', `nohup ${SERVER} >/dev/null 2>&1 &`]);
    const u = JSON.parse(await ok(['url', '--host', 'box', 'web', '--json']));
    const port = Number(fs.readFileSync(path.join(d.home, 'url-port'), 'utf8'));
    expect(u.local).toBe(`http://web.box.localhost:${port}/`);
    const body = await waitFor(
      'the URL answering',
      () =>
        new Promise<string | null>((resolve) => {
          const req = http.get({ host: '127.0.0.1', port, path: '/', headers: { host: `web.box.localhost:${port}` } }, (res) => {
            let b = '';
            res.on('data', (c) => (b += c));
            res.on('end', () => resolve(res.statusCode === 200 ? b : null));
          });
          req.on('error', () => resolve(null));
        }),
      60_000,
      300,
    );
    expect(body).toBe('hello from web\n');

    const ws = d.api.socket('/v1/events');
    const seen: any[] = [];
    ws.on('message', (raw) => seen.push(JSON.parse(raw.toString())));
    await waitFor('host events', () => seen.some((e) => e.type === 'host.event' && e.host === 'box' && e.event.type === 'hello' && e.event.sprites.some((s: any) => s.name === 'web')), 10_000);
    expect(seen.find((e) => e.type === 'hosts.changed').hosts[0]).toMatchObject({ name: 'box', state: 'connected' });
    await ok(['sleep', '--host', 'box', 'web']);
    await waitFor('the sleep, re-emitted', () => seen.some((e) => e.type === 'host.event' && e.event.type === 'sprite.changed' && e.event.sprite.state === 'sleeping'), 30_000);
    ws.close();
  }, STEP);

  it('spritely mcp --host box drives the remote sprite', async () => {
    const env = Object.fromEntries(Object.entries(d.env).filter((e): e is [string, string] => e[1] !== undefined));
    const transport = new StdioClientTransport({ command: process.execPath, args: [BIN, 'mcp', '--host', 'box'], env, stderr: 'pipe' });
    const client = new Client({ name: 'spritely-test', version: '1.0.0' });
    await client.connect(transport, { timeout: 60_000 });
    try {
      const list = (await client.callTool({ name: 'sprite_list', arguments: {} }, undefined, { timeout: STEP })) as any;
      expect(JSON.stringify(list.structuredContent)).toContain('"web"');
      expect(JSON.stringify(list.structuredContent)).not.toContain('"here"');
      const r = (await client.callTool({ name: 'exec', arguments: { name: 'web', command: 'hostname' } }, undefined, { timeout: STEP })) as any;
      expect(r.structuredContent.stdout.trim()).toBe('web');
    } finally {
      await client.close().catch(() => {});
    }
  }, STEP);

  it('the SSH connection killed mid-exec: a clear error, the command ends with its client there too, the sprite unaffected, the next command reconnects', async () => {
    const bootId = (await ok(['exec', '--host', 'box', 'web', '--', 'cat', '/proc/sys/kernel/random/boot_id'])).trim();
    const before = await box();
    const p = spawn(process.execPath, [BIN, 'exec', '--host', 'box', 'web', '--', 'sh', '-c', 'echo started; sleep 4; echo finished > /root/after'], { env: d.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (c) => (stdout += c));
    p.stderr.on('data', (c) => (stderr += c));
    await waitFor('the command to start', () => stdout.includes('started'), 30_000);
    process.kill(before.sshPid!, 'SIGKILL');
    const killedAt = Date.now();
    const code = await new Promise<number | null>((r) => p.on('exit', r));
    expect(code).not.toBe(0);
    expect(stderr).toContain('Lost the connection to host "box"');
    expect(stderr).toContain('it may still be running there');
    // the next command reconnects (one new ssh process) and finds the same running machine
    expect((await ok(['exec', '--host', 'box', 'web', '--', 'cat', '/proc/sys/kernel/random/boot_id'])).trim()).toBe(bootId);
    const after = await box();
    expect(after.state).toBe('connected');
    expect(after.sshPid).not.toBe(before.sshPid);
    // The server's sshd saw its client go, so the remote daemon saw the exec stream end: as for a
    // local client, the guest agent ended the command (docs/guest-agent.md) — nothing of it is left
    // to finish after its `sleep 4`.
    await new Promise((r) => setTimeout(r, Math.max(0, killedAt + 6_000 - Date.now())));
    expect((await ok(['exec', '--host', 'box', 'web', '--', 'sh', '-c', 'test -e /root/after && echo ran-on || echo ended'])).trim()).toBe('ended');
  }, STEP);

  it('the remote daemon restarted: the next command starts it again over the same connection, the sprite still running', async () => {
    const bootId = (await ok(['exec', '--host', 'box', 'web', '--', 'cat', '/proc/sys/kernel/random/boot_id'])).trim();
    const sshPid = (await box()).sshPid;
    const oldPid = rh.remoteDaemonPid()!;
    const stop = await runCli(['daemon', 'stop', '--leave-running'], { ...process.env, SPRITELY_HOME: rh.home, SPRITELY_IMAGES_DIR: d.env.SPRITELY_IMAGES_DIR });
    expect(stop.code).toBe(0);
    expect(processAlive(oldPid)).toBe(false);
    expect((await ok(['exec', '--host', 'box', 'web', '--', 'cat', '/proc/sys/kernel/random/boot_id'])).trim()).toBe(bootId);
    const newPid = rh.remoteDaemonPid()!;
    expect(newPid).not.toBe(oldPid);
    expect(processAlive(newPid)).toBe(true);
    expect((await box()).sshPid).toBe(sshPid);
  }, STEP);

  it('a host gone dark does not hold up `spritely list` (≤ 2 s), shows as such, and comes back on its own', async () => {
    const t0 = Date.now();
    await ok(['list']);
    const normalMs = Date.now() - t0;
    rh.setLink(false); // packets dropped: the connection is up but nothing answers
    const t1 = Date.now();
    const dark = await ok(['list']);
    const darkMs = Date.now() - t1;
    expect(dark).toMatch(/\nlocal\s+here\s+running/);
    expect(dark).toMatch(/\nbox\s+-\s+no answer/);
    expect(dark).toContain('box: no answer within 2 s');
    expect(darkMs - normalMs).toBeLessThan(2500);
    // Once ssh gives up on it (ServerAliveInterval 5 s × 3), it is unreachable and costs nothing.
    await waitFor('the host to be unreachable', async () => (await box()).state === 'unreachable', 40_000, 250);
    const t2 = Date.now();
    const known = await ok(['list']);
    expect(Date.now() - t2 - normalMs).toBeLessThan(1000);
    expect(known).toMatch(/\nbox\s+-\s+unreachable/);
    const refused = await cli(['exec', '--host', 'box', 'web', '--', 'true']);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/Host "box" \(ssh:\/\/root@[\d.]+\) is unreachable/);
    rh.setLink(true);
    await waitFor('the host to reconnect on its own', async () => (await box()).state === 'connected', 60_000, 250);
    expect((await ok(['exec', '--host', 'box', 'web', '--', 'hostname'])).trim()).toBe('web');
  }, STEP);

  it('host remove closes the connection and forgets the host; its sprite keeps running there', async () => {
    const sshPid = (await box()).sshPid!;
    await ok(['host', 'remove', 'box']);
    await waitFor('the ssh process to end', () => !processAlive(sshPid), 10_000);
    expect(await hosts()).toEqual([]);
    const remote = await runCli(['list', '--json'], { ...process.env, SPRITELY_HOME: rh.home, SPRITELY_IMAGES_DIR: d.env.SPRITELY_IMAGES_DIR });
    expect(JSON.parse(remote.stdout).map((s: { name: string; state: string }) => `${s.name}:${s.state}`)).toEqual(['web:running']);
  }, STEP);
});
