/**
 * A sprite's own network on real QEMU (docs/network.md, "DNS and transparent TCP"): the guest
 * resolves names and opens TCP connections itself — no proxy variables anywhere — and the daemon
 * decides each by the sprite's policy. "The internet" is a network namespace this file creates
 * (createNetns: two addresses, a DNS server that the test daemon uses as its upstream, an echo
 * server, an HTTP server, a UDP sink and an OpenSSH server); no test traffic goes anywhere else.
 *
 * Tried from inside guests: getent, nc, ssh and Node's fetch to the namespace's servers by name;
 * an `allow=` list by name admitting one server and refusing the other (REFUSED in DNS, the
 * connection reset, a line in the daemon's log, the refusal listed by `net show`); `none`; this
 * computer's loopback and interface addresses (several spellings), the veth address, QEMU's host
 * address, link-local and another sprite's forwarded port; UDP other than DNS; a policy change
 * applied to the next connection with no restart; sleep/wake and checkpoint restore.
 */
import { execFileSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDaemon, treatAsPublicHere, waitFor, type TestDaemon } from './harness.ts';
import { createNetns, runNode, startDnsServer, type TestNetns } from './netns.ts';

const ONE = 'one.spritely.test';
const TWO = 'two.spritely.test';

let d: TestDaemon;
let ns: TestNetns;
let dir: string;
let sshd: ChildProcess | null = null;
/** A port on this computer (0.0.0.0 and ::), counting the connections it accepts: none may. */
let hostServer4: net.Server;
let hostServer6: net.Server;
let hostPort = 0;
let hostHits = 0;

/** The proxy variables the image sets for HTTP tools are unset: nothing here may depend on them. */
const NO_PROXY_VARS = 'unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY no_proxy NO_PROXY; ';
const exec = async (name: string, script: string, opts: { stdin?: string; timeoutMs?: number } = {}) =>
  d.api.call('sprites.exec', { name, argv: ['sh', '-c', NO_PROXY_VARS + script], ...(opts.stdin !== undefined ? { stdin: opts.stdin } : {}) }, { timeoutMs: opts.timeoutMs ?? 120_000 });
const daemonLogText = () => {
  try {
    return fs.readFileSync(path.join(d.home, 'daemon-test.log'), 'utf8');
  } catch {
    return '';
  }
};
/** `nc` to host:port, sending a line; prints what came back, then `rc=N`. */
const nc = (name: string, host: string, port: number) => exec(name, `printf 'ping\\n' | nc -N -w 6 ${host} ${port}; echo "rc=$?"`);

/** On each address: TCP echo on 7000, HTTP on 8080 (GET /udp: datagrams seen), a UDP sink on 9999. */
const SERVERS = `
import net from 'node:net';
import http from 'node:http';
import dgram from 'node:dgram';
let udp = 0;
let up = 0;
const addrs = process.argv.slice(1);
const ready = () => { if (++up === addrs.length * 3) console.log('listening'); };
for (const a of addrs) {
  net.createServer((c) => c.pipe(c)).listen(7000, a, ready);
  http.createServer((q, r) => r.end(q.url === '/udp' ? String(udp) : 'hello from ' + a + '\\n')).listen(8080, a, ready);
  const u = dgram.createSocket('udp4');
  u.on('message', () => udp++);
  u.bind(9999, a, ready);
}
`;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'guest-net-'));
  ns = createNetns({ addresses: 2 });
  const [a1, a2] = ns.addresses;
  await startDnsServer(ns, a1, { [ONE]: a1, [TWO]: a2 });
  await runNode(ns, SERVERS, [a1, a2]);

  // an OpenSSH server on the first address, with a key the guest will be given
  const hostKey = path.join(dir, 'host_key');
  const clientKey = path.join(dir, 'client_key');
  for (const k of [hostKey, clientKey]) execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'spritely-test', '-f', k]);
  fs.copyFileSync(`${clientKey}.pub`, path.join(dir, 'authorized_keys'));
  fs.mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const config = path.join(dir, 'sshd_config');
  fs.writeFileSync(config, [
    `ListenAddress ${a1}:22`, `HostKey ${hostKey}`, `AuthorizedKeysFile ${path.join(dir, 'authorized_keys')}`,
    'StrictModes no', 'UsePAM no', 'PasswordAuthentication no', 'KbdInteractiveAuthentication no',
    'PermitRootLogin prohibit-password', 'PidFile none', 'ForceCommand echo ssh-session-ok', '',
  ].join('\n'));
  sshd = ns.run(['/usr/sbin/sshd', '-D', '-e', '-f', config]);

  hostServer4 = net.createServer((c) => (hostHits++, c.end('host secret\n')));
  await new Promise<void>((r) => hostServer4.listen(0, '0.0.0.0', r));
  hostPort = (hostServer4.address() as net.AddressInfo).port;
  hostServer6 = net.createServer((c) => (hostHits++, c.end('host secret\n')));
  await new Promise<void>((r, j) => hostServer6.once('error', j).listen({ port: hostPort, host: '::', ipv6Only: true }, r));

  const here = await treatAsPublicHere();
  d = await startDaemon(undefined, {
    SPRITELY_DNS_SERVERS: a1,
    SPRITELY_EGRESS_TREAT_AS_PUBLIC: [here, `${a1}/32`, `${a2}/32`].filter(Boolean).join(','),
  });
  await d.api.call('sprites.create', { name: 'net-a' }, { timeoutMs: 600_000 });
  await d.api.call('sprites.create', { name: 'net-b', network: `allow=${ONE}` }, { timeoutMs: 600_000 });
  await waitFor('sshd in the namespace', () => {
    try {
      return ns.exec(['sh', '-c', `ss -Hltn 'sport = :22'`]).includes(':22');
    } catch {
      return false;
    }
  }, 10_000);
}, 900_000);

afterAll(async () => {
  await d?.cleanup();
  if (sshd && sshd.exitCode === null) sshd.kill('SIGKILL');
  ns?.close();
  hostServer4?.close();
  hostServer6?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe('a sprite with `internet`', () => {
  it('resolves names through the daemon and reaches servers by name with no proxy variables (getent, nc)', async () => {
    const env = await exec('net-a', 'env | grep -i _proxy || echo none');
    expect(env.stdout).toMatch(/^none$/m);
    const r = await exec('net-a', `getent hosts ${ONE} ${TWO}; echo "rc=$?"`);
    expect(r.stdout).toMatch(new RegExp(`^${ns.addresses[0].replace(/\./g, '\\.')}\\s+${ONE.replace(/\./g, '\\.')}$`, 'm'));
    expect(r.stdout).toMatch(new RegExp(`^${ns.addresses[1].replace(/\./g, '\\.')}\\s+${TWO.replace(/\./g, '\\.')}$`, 'm'));
    expect(r.stdout).toContain('rc=0');
    const missing = await exec('net-a', `getent hosts nowhere.spritely.test; echo "rc=$?"`);
    expect(missing.stdout).toContain('rc=2');
    const echo = await nc('net-a', ONE, 7000);
    expect(echo.stdout).toBe('ping\nrc=0\n');
    const byAddress = await nc('net-a', ns.addresses[1], 7000);
    expect(byAddress.stdout).toBe('ping\nrc=0\n');
  });

  it('opens an SSH session to a server by name', async () => {
    const key = fs.readFileSync(path.join(dir, 'client_key'), 'utf8');
    await exec('net-a', 'umask 077; cat > /root/test_key', { stdin: key });
    const r = await exec('net-a', `ssh -i /root/test_key -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o ConnectTimeout=20 root@${ONE} hello 2>&1; echo "rc=$?"`, { timeoutMs: 180_000 });
    expect(r.stdout).toContain('ssh-session-ok');
    expect(r.stdout).toContain('rc=0');
  }, 240_000);

  it("runs Node's fetch with no proxy variables", async () => {
    const cp = await d.cli(['cp', process.execPath, 'net-a:/usr/local/bin/node'], { timeoutMs: 300_000 });
    expect(cp.code, cp.stderr).toBe(0);
    const r = await exec('net-a', `env -i PATH=/usr/local/bin:/usr/bin:/bin node -e "fetch('http://${ONE}:8080/').then((r) => r.text()).then((t) => console.log('fetched:', t.trim()), (e) => { console.log('failed', e.cause ?? e); process.exit(1); })"`, { timeoutMs: 240_000 });
    expect(r.stdout).toContain(`fetched: hello from ${ns.addresses[0]}`);
  }, 600_000);

  it("never reaches this computer, link-local or another sprite's forwards", async () => {
    const forward = (await d.api.call('sprites.get', { name: 'net-b' })).sshPort!;
    const own = Object.values(os.networkInterfaces()).flatMap((l) => l ?? []).map((i) => i.address.split('%')[0]).filter((a) => !a.includes(':'));
    const targets = [
      ...new Set(['10.0.2.2', ns.hostAddress, '127.0.0.1', ...own]),
      // other spellings of this computer's loopback: the guest's kernel sends them to its own
      // loopback, never out — they must not reach the host either way
      '0x7f.1', '2130706433',
    ];
    const script = [
      ...targets.map((t) => `echo "${t} [$(printf 'x' | nc -N -w 4 ${t} ${hostPort} 2>&1)]"`),
      ...[...new Set(['10.0.2.2', ...own])].map((t) => `echo "forward-${t} [$(printf 'SSH-2.0-x\\r\\n' | nc -N -w 4 ${t} ${forward} 2>&1)]"`),
      `echo "link-local [$(printf 'x' | nc -N -w 4 169.254.169.254 80 2>&1)]"`,
    ].join('\n');
    const r = await exec('net-a', script, { timeoutMs: 300_000 });
    const lines = r.stdout.trim().split('\n');
    expect(lines.length).toBe(targets.length + new Set(['10.0.2.2', ...own]).size + 1);
    // a refused connection is accepted in the guest, then reset: nothing of the server comes back
    for (const line of lines) expect(line, line).not.toMatch(/secret|SSH-2\.0-OpenSSH/);
    expect(hostHits).toBe(0);
    const log = daemonLogText();
    expect(log).toMatch(/refused/);
    const shown = await d.cli(['net', 'show', 'net-a', '--json']);
    const view = JSON.parse(shown.stdout) as { refused: { address: string | null; port: number | null; reason: string }[] };
    expect(view.refused.some((x) => x.address === '169.254.169.254' && x.port === 80)).toBe(true);
    // this computer's own addresses reach the daemon and are refused there (10.0.2.2 never leaves
    // QEMU's restricted user network, so it is not listed)
    expect(view.refused.some((x) => own.includes(x.address ?? '') && x.port === hostPort)).toBe(true);
  }, 360_000);

  it('refuses UDP other than DNS, with a line in the daemon log', async () => {
    const r = await exec('net-a', `for i in 1 2 3; do printf 'x' | nc -u -w 1 ${ONE} 9999; done; echo done`);
    expect(r.stdout).toContain('done');
    const seen = await exec('net-a', `printf 'GET /udp HTTP/1.0\\r\\n\\r\\n' | nc -w 6 ${ONE} 8080 | tail -1`);
    expect(seen.stdout.trim()).toBe('0');
    await waitFor('the UDP refusal in the daemon log', () => /udp/i.test(daemonLogText()) && new RegExp(`${ns.addresses[0].replace(/\./g, '\\.')}:9999`).test(daemonLogText()), 15_000);
  });
});

describe('a sprite with `allow=` by name', () => {
  it('admits the allowed name and refuses the other (REFUSED in DNS, the connection reset, the daemon log)', async () => {
    const ok = await exec('net-b', `getent hosts ${ONE}; echo "rc=$?"`);
    expect(ok.stdout).toMatch(new RegExp(`^${ns.addresses[0].replace(/\./g, '\\.')}\\s+${ONE.replace(/\./g, '\\.')}$`, 'm'));
    expect((await nc('net-b', ONE, 7000)).stdout).toBe('ping\nrc=0\n');
    const refused = await exec('net-b', `getent hosts ${TWO}; echo "rc=$?"`);
    expect(refused.stdout).toContain('rc=2');
    const t0 = Date.now();
    const direct = await nc('net-b', ns.addresses[1], 7000);
    expect(direct.stdout).not.toContain('ping'); // accepted in the guest, then reset
    expect(direct.stdout).toMatch(/rc=\d/);
    expect(Date.now() - t0).toBeLessThan(10_000); // refused at once, not a timeout
    const log = daemonLogText();
    expect(log).toMatch(new RegExp(`${TWO.replace(/\./g, '\\.')}.*(refused|REFUSED)|refused.*${TWO.replace(/\./g, '\\.')}`));
    expect(log).toContain(`${ns.addresses[1]}:7000`);
    const shown = await d.cli(['net', 'show', 'net-b', '--json']);
    const view = JSON.parse(shown.stdout) as { refused: { name: string | null; address: string | null; port: number | null }[] };
    expect(view.refused.some((x) => x.address === ns.addresses[1] && x.port === 7000)).toBe(true);
  });

  it('applies a policy change to the next connection, without a restart', async () => {
    const pid0 = await d.api.call('sprites.get', { name: 'net-b' });
    await d.api.call('sprites.network', { name: 'net-b', policy: `allow=${ONE},${TWO}` });
    expect((await nc('net-b', TWO, 7000)).stdout).toBe('ping\nrc=0\n');
    await d.api.call('sprites.network', { name: 'net-b', policy: 'none' });
    const none = await exec('net-b', `getent hosts ${ONE}; echo "rc=$?"; printf 'ping\\n' | nc -N -w 6 ${ns.addresses[0]} 7000; echo "nc=$?"`);
    expect(none.stdout).toContain('rc=2');
    expect(none.stdout).not.toContain('ping');
    expect(none.stdout).toMatch(/nc=\d/);
    const pid1 = await d.api.call('sprites.get', { name: 'net-b' });
    expect(pid1.pid).toBe(pid0.pid);
    await d.api.call('sprites.network', { name: 'net-b', policy: `allow=${ONE}` });
  });
});

describe('across sleep, wake and restore', () => {
  it('keeps the network working after sleep/wake and after a restore', async () => {
    await d.api.call('checkpoints.create', { name: 'net-a', comment: 'before sleep' }, { timeoutMs: 300_000 });
    await d.api.call('sprites.sleep', { name: 'net-a' }, { timeoutMs: 300_000 });
    const woke = await exec('net-a', `getent hosts ${TWO} && printf 'ping\\n' | nc -N -w 6 ${TWO} 7000`);
    expect(woke.stdout).toContain('ping');
    const list = await d.api.call('checkpoints.list', { name: 'net-a' });
    await d.api.call('checkpoints.restore', { name: 'net-a', id: list.find((c) => c.comment === 'before sleep')!.id }, { timeoutMs: 300_000 });
    const restored = await exec('net-a', `getent hosts ${ONE} && printf 'ping\\n' | nc -N -w 6 ${ONE} 7000`);
    expect(restored.stdout).toContain('ping');
  }, 600_000);
});
