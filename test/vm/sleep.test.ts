/**
 * Sleep, wake, idle and local URLs on real QEMU: a sleeping sprite has no process; waking resumes
 * the exact moment; exec, terminals and HTTP requests wake it; the idle timeout sleeps idle
 * sprites but not ones with a terminal open; the daemon sleeps its sprites on SIGTERM; a kill -9
 * during sleep loses nothing.
 */
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { daemonLog, qemuPidsOf, startDaemon, waitFor, type TestDaemon } from './harness.ts';

let d: TestDaemon;

/** A tiny HTTP server in the guest (perl-base is in every Debian), with a raw upgrade echo. */
const SERVER = String.raw`
use IO::Socket::INET;
my $s = IO::Socket::INET->new(LocalPort => 8080, Listen => 10, ReuseAddr => 1) or die "listen: $!";
while (my $c = $s->accept) {
  my $req = ''; while (my $l = <$c>) { $req .= $l; last if $l eq "\r\n"; }
  if ($req =~ /^Upgrade: websocket/mi) {
    print $c "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";
    $c->autoflush(1);
    while (sysread($c, my $buf, 4096)) { syswrite($c, $buf) }
  } else {
    my $host = ($req =~ /^X-Forwarded-Host: (\S+)/mi) ? $1 : "-";
    my $hn = ` + '`hostname`' + String.raw`; chomp $hn;
    my $body = "hello from $hn via $host\n";
    print $c "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " . length($body) . "\r\nConnection: close\r\n\r\n$body";
  }
  close $c;
}
`;

const exec = (name: string, script: string) => d.api.call('sprites.exec', { name, argv: ['sh', '-c', script] }, { timeoutMs: 180_000 });
const state = async (name: string) => (await d.api.call('sprites.get', { name })).state;
const urlPort = () => Number(fs.readFileSync(path.join(d.home, 'url-port'), 'utf8'));

function get(name: string, p = '/'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: urlPort(), path: p, headers: { Host: `${name}.localhost:${urlPort()}` }, agent: false }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.setTimeout(120_000, () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.end();
  });
}

beforeAll(async () => {
  d = await startDaemon();
  await d.api.call('sprites.create', { name: 'web' }, { timeoutMs: 600_000 });
  const r = await exec('web', `cat > /root/srv.pl <<'EOF'\n${SERVER}\nEOF\nsetsid perl /root/srv.pl >/root/srv.log 2>&1 < /dev/null &`);
  expect(r.exitCode).toBe(0);
});

afterAll(async () => {
  await d?.cleanup();
});

describe('sleep and wake', () => {
  it('sleep leaves no process; wake resumes the exact moment (tmpfs and a running process intact)', async () => {
    await exec('web', "echo in-ram > /dev/shm/mark; setsid sh -c 'i=0; while :; do i=$((i+1)); echo $i > /dev/shm/n; sleep 0.2; done' >/dev/null 2>&1 < /dev/null &");
    await new Promise((r) => setTimeout(r, 1500));
    const pid = (await d.api.call('sprites.get', { name: 'web' })).pid!;
    const slept = JSON.parse((await d.cli(['sleep', 'web', '--json'])).stdout);
    expect(slept.sprite.state).toBe('sleeping');
    expect(qemuPidsOf(d.home)).not.toContain(pid);
    expect(qemuPidsOf(d.home)).toEqual([]);
    expect((await d.cli(['list'])).stdout).toMatch(/web\s+sleeping/);
    const before = (await d.api.call('sprites.usage')).find((u) => u.name === 'web')!;
    await new Promise((r) => setTimeout(r, 2000));
    const stillAsleep = (await d.api.call('sprites.usage')).find((u) => u.name === 'web')!;
    expect(stillAsleep.awakeSeconds).toBe(before.awakeSeconds);
    expect(stillAsleep.diskBytes).toBeGreaterThan(50 * 1024 * 1024);

    const woke = await d.api.call('sprites.wake', { name: 'web' });
    expect(woke.sprite.state).toBe('running');
    expect(woke.sprite.lastError).toBeNull();
    expect((await exec('web', 'cat /dev/shm/mark')).stdout).toBe('in-ram\n');
    const n1 = Number((await exec('web', 'cat /dev/shm/n')).stdout);
    const n2 = await waitFor('the counter to go on', async () => {
      const v = Number((await exec('web', 'cat /dev/shm/n')).stdout);
      return v > n1 ? v : null;
    }, 20_000);
    expect(n2).toBeGreaterThan(n1);
    expect(Math.abs(Number((await exec('web', 'date +%s')).stdout) - Date.now() / 1000)).toBeLessThan(10);
  });

  it('exec on a sleeping sprite wakes it first', async () => {
    await d.api.call('sprites.sleep', { name: 'web' });
    const r = await d.cli(['exec', 'web', '--', 'cat', '/dev/shm/mark']);
    expect(r).toMatchObject({ code: 0, stdout: 'in-ram\n' });
    expect(await state('web')).toBe('running');
  });

  it('an HTTP request to the local URL of a sleeping sprite wakes it and gets the page', async () => {
    const url = JSON.parse((await d.cli(['url', 'web', '--json'])).stdout);
    expect(url).toEqual({ local: `http://web.localhost:${urlPort()}/`, port: 8080 });
    expect(await get('web')).toEqual({ status: 200, body: `hello from web via web.localhost:${urlPort()}\n` });
    await d.api.call('sprites.sleep', { name: 'web' });
    expect(await state('web')).toBe('sleeping');
    const t0 = Date.now();
    const r = await get('web');
    expect(r).toEqual({ status: 200, body: `hello from web via web.localhost:${urlPort()}\n` });
    process.stderr.write(`[sleep test] first byte of a request that woke the sprite: ${Date.now() - t0} ms\n`);
    expect(await state('web')).toBe('running');
  });

  it('passes WebSocket upgrades through, both ways', async () => {
    const sock = net.connect(urlPort(), '127.0.0.1');
    let got = '';
    sock.on('data', (c) => (got += c.toString('latin1')));
    await new Promise((r) => sock.once('connect', r));
    sock.write(`GET /ws HTTP/1.1\r\nHost: web.localhost:${urlPort()}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`);
    await waitFor('101', () => got.includes('101 Switching Protocols') && got.includes('\r\n\r\n'), 30_000, 20);
    got = '';
    sock.write('ping through the proxy');
    await waitFor('the echo', () => got === 'ping through the proxy', 30_000, 20);
    sock.destroy();
  });

  it('unknown sprites get a 404 page, nothing listening a 502 page', async () => {
    const unknown = await get('ghost');
    expect(unknown.status).toBe(404);
    expect(unknown.body).toContain('There is no sprite named &#34;ghost&#34;');
    await d.cli(['url', 'web', '--port', '9999']);
    const down = await get('web');
    expect(down.status).toBe(502);
    expect(down.body).toContain('Nothing answers on port 9999 in web');
    await d.cli(['url', 'web', '--port', '8080']);
    expect((await get('web')).status).toBe(200);
  });

  it('the idle timeout sleeps an idle sprite, but not one with a terminal open', async () => {
    await d.api.call('sprites.create', { name: 'busy' }, { timeoutMs: 300_000 });
    const term = d.api.socket('/v1/sprites/busy/terminal', { cols: 80, rows: 24 });
    await new Promise((r, j) => {
      term.once('message', r);
      term.once('error', j);
    });
    expect((await d.cli(['config', 'set', 'idle-timeout', '3s', '--sprite', 'web'])).code).toBe(0);
    expect((await d.cli(['config', 'set', 'idle-timeout', '3s', '--sprite', 'busy'])).code).toBe(0);
    await waitFor('web to fall asleep', async () => (await state('web')) === 'sleeping', 30_000, 500);
    expect(await state('busy')).toBe('running');
    term.close();
    await waitFor('busy to fall asleep once its terminal closed', async () => (await state('busy')) === 'sleeping', 30_000, 500);
    await d.api.call('config.set', { idleTimeoutSec: 0, sprite: 'web' });
    await d.api.call('config.set', { idleTimeoutSec: 0, sprite: 'busy' });
    expect(JSON.parse((await d.cli(['config', 'get', '--json'])).stdout)).toEqual({ idleTimeoutSec: 300, memoryLimitMiB: expect.any(Number), memoryLimitDefault: true, memoryLimitDefaultMiB: expect.any(Number), warmSpare: false, checkpointMounts: expect.any(Number), spares: [] });
  });
});

/** A terminal WebSocket as a client sees it: output (acked), control messages, how it closed. */
function terminal(name: string, session?: string) {
  const ws = d.api.socket(`/v1/sprites/${name}/terminal`, { cols: 100, rows: 30, session });
  const t = { ws, text: '', messages: [] as { type: string; session?: string; code?: string }[], closed: null as number | null };
  ws.on('message', (m, bin) => {
    if (bin) {
      t.text += (m as Buffer).toString();
      ws.send(JSON.stringify({ type: 'ack', bytes: (m as Buffer).length }));
    } else t.messages.push(JSON.parse((m as Buffer).toString()));
  });
  ws.on('close', (code) => (t.closed = code));
  return t;
}

describe('terminals across sleep, wake and restore', () => {
  it('a shell open across sleep and wake goes on: the same socket and shell, what was typed while asleep arrives', async () => {
    await d.api.call('sprites.wake', { name: 'web' }).catch(() => {});
    const t = terminal('web');
    await waitFor('a prompt', () => /root@web[^\n]*# $/.test(t.text), 60_000, 20);
    t.ws.send(Buffer.from('KEPT=across-sleep; echo "[$((40+2))]"\r'));
    await waitFor('the shell to answer', () => t.text.includes('[42]'), 30_000, 20);
    await d.api.call('sprites.sleep', { name: 'web' });
    expect(await state('web')).toBe('sleeping');
    expect(t.closed).toBeNull();
    // typing into the sleeping sprite's terminal wakes it; the input waits for the resumed shell
    t.text = '';
    const t0 = Date.now();
    t.ws.send(Buffer.from('echo "still $KEPT"\r'));
    await waitFor('the resumed shell to answer', () => t.text.includes('still across-sleep'), 60_000, 20);
    process.stderr.write(`[sleep test] keystroke into a sleeping sprite's shell → its answer: ${Date.now() - t0} ms\n`);
    // (the resumed shell can answer before the wake has recorded itself: the clock is set after)
    await waitFor('the wake to finish', async () => (await state('web')) === 'running', 30_000, 50);
    expect(t.closed).toBeNull();
    expect(t.messages.filter((m) => m.type === 'session')).toHaveLength(1);
    expect(daemonLog(d)).toMatch(/guest agent of web: resumed \d+ session\(s\) after waking/);
    t.ws.send(JSON.stringify({ type: 'close' }));
  });

  it('a shell open across a restore is gone: one line says so, the socket ends (1012), the session is gone, a new shell opens', async () => {
    const { checkpoint } = await d.api.call('checkpoints.create', { name: 'web', comment: 'before the terminal' });
    const t = terminal('web');
    await waitFor('a prompt', () => /root@web[^\n]*# $/.test(t.text), 60_000, 20);
    const session = t.messages.find((m) => m.type === 'session')!.session!;
    await d.api.call('checkpoints.restore', { name: 'web', id: checkpoint.id }, { timeoutMs: 300_000 });
    await waitFor('the socket to end', () => t.closed !== null, 30_000, 20);
    expect(t.closed).toBe(1012);
    expect(t.text).toMatch(new RegExp(`This shell is gone: the sprite was restored to ${checkpoint.id}`));
    expect(t.messages.some((m) => m.type === 'exit')).toBe(false);
    // what the UI does: reconnect with the session id, find it gone, open a new shell
    const again = terminal('web', session);
    await waitFor('not_found', () => again.messages.some((m) => m.type === 'error'), 30_000, 20);
    expect(again.messages[0]).toMatchObject({ type: 'error', code: 'not_found' });
    const fresh = terminal('web');
    await waitFor('a prompt on the restored machine', () => /root@web[^\n]*# $/.test(fresh.text), 60_000, 20);
    fresh.ws.send(JSON.stringify({ type: 'close' }));
  });
});

describe('daemon shutdown and kills', () => {
  it('SIGTERM puts awake sprites to sleep; a new daemon wakes them; metering survives', async () => {
    await d.api.call('sprites.wake', { name: 'web' });
    await exec('web', 'echo before-shutdown > /dev/shm/s');
    const usageBefore = (await d.api.call('sprites.usage')).find((u) => u.name === 'web')!;
    expect(usageBefore.awakeSeconds).toBeGreaterThan(0);
    expect(usageBefore.cpuSeconds).toBeGreaterThan(0);
    d.proc.kill('SIGTERM');
    await waitFor('the daemon to exit', () => d.proc.exitCode !== null || d.proc.signalCode !== null, 60_000);
    expect(qemuPidsOf(d.home)).toEqual([]);
    await d.restart();
    expect(await state('web')).toBe('sleeping');
    const usageAfter = (await d.api.call('sprites.usage')).find((u) => u.name === 'web')!;
    expect(usageAfter.awakeSeconds).toBeGreaterThanOrEqual(usageBefore.awakeSeconds);
    expect(usageAfter.cpuSeconds).toBeGreaterThanOrEqual(usageBefore.cpuSeconds);
    expect((await exec('web', 'cat /dev/shm/s')).stdout).toBe('before-shutdown\n');
  });

  it('a RAM state that no longer fits this QEMU/device set is not used: the sprite boots from disk and says so', async () => {
    await exec('web', 'echo on-disk > /root/kept; sync');
    await d.api.call('sprites.sleep', { name: 'web' });
    await d.api.call('daemon.shutdown', { leaveRunning: true });
    await waitFor('the daemon to exit', () => d.proc.exitCode !== null || d.proc.signalCode !== null, 60_000);
    // Pretend the state was saved by another QEMU build / device set.
    const file = path.join(d.home, 'sprites/web/sprite.json');
    const m = JSON.parse(fs.readFileSync(file, 'utf8'));
    m.sleep.signature = 'saved-by-another-qemu';
    fs.writeFileSync(file, JSON.stringify(m));
    await d.restart();
    const woke = await d.api.call('sprites.wake', { name: 'web' }, { timeoutMs: 600_000 });
    expect(woke.sprite.state).toBe('running');
    expect(woke.sprite.lastError).toMatch(/Woke without its RAM: .*does not fit/);
    expect((await exec('web', 'cat /root/kept')).stdout).toBe('on-disk\n');
    expect((await exec('web', 'cat /dev/shm/s')).exitCode).not.toBe(0);
  });

  it('a daemon killed with -9 during sleep leaves the sprite running or cleanly asleep, never lost', async () => {
    await exec('web', 'echo survive > /dev/shm/k');
    const pending = d.api.call('sprites.sleep', { name: 'web' }).catch((e) => e);
    await new Promise((r) => setTimeout(r, 250));
    d.kill9();
    await pending;
    await d.restart();
    const s = await state('web');
    expect(['running', 'sleeping']).toContain(s);
    const r = await exec('web', 'cat /dev/shm/k');
    expect(r.stdout, daemonLog(d)).toBe('survive\n');
  });
});

describe('checkpoints of a sleeping sprite', () => {
  it('keep its RAM (the sleep state), and restoring one while asleep leaves no stale sleep state', async () => {
    await exec('web', 'echo asleep-moment > /dev/shm/ck');
    await d.api.call('sprites.sleep', { name: 'web' });
    const c = await d.api.call('checkpoints.create', { name: 'web', comment: 'while asleep' });
    expect(c.checkpoint).toMatchObject({ memory: true, comment: 'while asleep' });
    expect(c.checkpoint.ramBytes).toBeGreaterThan(10 * 2 ** 20);
    expect((await d.api.call('sprites.get', { name: 'web' })).state).toBe('sleeping');
    await exec('web', 'rm /dev/shm/ck; echo later > /dev/shm/later');
    // restore while asleep again: the backup is taken from the sleep state, then the checkpoint's RAM runs
    await d.api.call('sprites.sleep', { name: 'web' });
    const sleepFile = path.join(d.home, 'sprites/web/sleep.state');
    expect(fs.existsSync(sleepFile)).toBe(true);
    const r = await d.api.call('checkpoints.restore', { name: 'web', id: c.checkpoint.id }, { timeoutMs: 300_000 });
    expect(r.sprite.state).toBe('running');
    expect(fs.existsSync(sleepFile)).toBe(false);
    expect((await exec('web', 'cat /dev/shm/ck; ls /dev/shm/later 2>&1 || true')).stdout).toMatch(/^asleep-moment\n.*No such file/s);
    const backup = (await d.api.call('checkpoints.list', { name: 'web' })).find((x) => x.id === r.backup)!;
    expect(backup).toMatchObject({ auto: true, memory: true });
    // the backup has the later moment
    await d.api.call('checkpoints.restore', { name: 'web', id: backup.id, backup: false }, { timeoutMs: 300_000 });
    expect((await exec('web', 'cat /dev/shm/later; ls /dev/shm/ck 2>&1 || true')).stdout).toMatch(/^later\n.*No such file/s);
  });
});
