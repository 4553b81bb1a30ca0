/**
 * Isolation on real QEMU, proven from inside guests: a service on the host (bound to 0.0.0.0 and
 * ::) is out of reach via 10.0.2.2 and every address of this computer, in every spelling of each
 * (IPv4-mapped, expanded, upper-case, inet_aton numbers, zone ids, NAT64), directly and through
 * the egress proxy, under `internet` and under the widest `allow=` ranges; so are the daemon's TCP
 * port and another sprite's forwarded ports — while apt and curl to the Debian mirror work. `none`
 * has no egress at all; `allow=` with this machine's Debian mirror reaches that host and not another, and says so in
 * the guest. An agent (MCP) cannot widen a sprite's network. Policy changes apply without a
 * restart and survive sleep.
 */
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spellings, urlHost } from '../../vm/net/address-spellings.ts';
import { BIN, debianMirror, startDaemon, type TestDaemon } from './harness.ts';

/** This machine's Debian mirror (what its apt and the image's apt use): "the internet" for these tests. */
const MIRROR = debianMirror();
const MIRROR_HTTPS = MIRROR.url.replace(/^http:/, 'https:');

let d: TestDaemon;
/** "This computer": one port on 0.0.0.0 and on ::, counting every connection it accepts. */
let hostServer4: http.Server;
let hostServer6: http.Server;
let hostPort: number;
let hits = 0;

const exec = (name: string, script: string, timeoutMs = 180_000) => d.api.call('sprites.exec', { name, argv: ['sh', '-c', script] }, { timeoutMs });
/**
 * The daemon's HTTP proxy, which the image points HTTP tools at (the guest's own DNS and TCP, for
 * everything else, go through the agent: guest-network.test.ts); said explicitly where a test is
 * about the proxy.
 */
const PROXY = 'http://10.0.2.100:3128';
const viaProxy = (script: string) => `export http_proxy=${PROXY} https_proxy=${PROXY}; ${script}`;
/** curl in the guest; prints the HTTP code (000 when no response) and curl's error on stderr. */
/* HTTPS is fetched with -k: this workplace's network intercepts TLS with a CA that the host
 * trusts and a fresh guest does not; what is tested is that the CONNECT tunnel gets through. */
const curl = (name: string, args: string) => exec(name, `curl -sS --max-time 8 -o /dev/null -w '%{http_code}' ${args}`);

/** One exec that curls every URL through the proxy and directly; returns each HTTP code. */
async function curlAll(name: string, urls: string[]): Promise<{ url: string; mode: string; code: string }[]> {
  const script = urls
    .map((u) => `for m in proxy direct; do if [ $m = direct ]; then np="--noproxy *"; else np="-x ${PROXY}"; fi; c=$(curl -s --max-time 8 $np -o /dev/null -w '%{http_code}' '${u}'); echo "$m ${u} $c"; done`)
    .join('\n');
  const r = await exec(name, `set -f\n${script}`, 600_000);
  return r.stdout.trim().split('\n').map((l) => {
    const [mode, url, code] = l.split(' ');
    return { url, mode, code };
  });
}

/** Every address of this computer, zone ids dropped. */
function hostAddressList(): string[] {
  const all = Object.values(os.networkInterfaces()).flatMap((l) => l ?? []);
  return [...new Set(all.map((i) => i.address.split('%')[0]))];
}

/** Every address of this computer, as URLs' host parts. */
function hostAddresses(): string[] {
  return hostAddressList().map((a) => (a.includes(':') ? `[${a}]` : a));
}

function countingServer(): http.Server {
  const s = http.createServer((_req, res) => res.end('host secret\n'));
  s.on('connection', () => hits++);
  return s;
}

beforeAll(async () => {
  hostServer4 = countingServer();
  await new Promise<void>((r) => hostServer4.listen(0, '0.0.0.0', r));
  hostPort = (hostServer4.address() as net.AddressInfo).port;
  hostServer6 = countingServer();
  await new Promise<void>((r, j) => hostServer6.once('error', j).listen({ port: hostPort, host: '::', ipv6Only: true }, r));
  d = await startDaemon();
  await d.api.call('sprites.create', { name: 'iso-a' }, { timeoutMs: 600_000 });
  await d.api.call('sprites.create', { name: 'iso-b', network: `allow=${MIRROR.host}` }, { timeoutMs: 600_000 });
}, 900_000);

afterAll(async () => {
  await d?.cleanup();
  hostServer4?.close();
  hostServer6?.close();
});

describe('isolation from the host', () => {
  it("this computer is unreachable: 10.0.2.2 and every host address, directly and via the proxy", async () => {
    // the server answers on the host itself, on IPv4 and IPv6
    expect(await (await fetch(`http://127.0.0.1:${hostPort}/`)).text()).toBe('host secret\n');
    expect(await (await fetch(`http://[::1]:${hostPort}/`)).text()).toBe('host secret\n');
    hits = 0;
    const targets = ['10.0.2.2', '10.0.2.3', '10.0.2.100', ...hostAddresses()];
    expect(targets).toContain('127.0.0.1');
    const codes = await curlAll('iso-a', targets.map((t) => `http://${t}:${hostPort}/`));
    expect(codes.length).toBe(targets.length * 2);
    for (const c of codes) expect(c.code, `${c.url} ${c.mode}`).not.toBe('200');
    // through the proxy the guest learns why
    const refused = await exec('iso-a', viaProxy(`curl -sS --max-time 8 http://10.0.2.2:${hostPort}/`));
    expect(refused.stdout).toMatch(/spritely: 10\.0\.2\.2:\d+ refused: 10\.0\.2\.2 is private-use \(10\.0\.0\.0\/8, RFC 1918\), not a public internet address/);
    const loop = await exec('iso-a', `curl -sS --max-time 8 -x ${PROXY} http://127.0.0.1:${hostPort}/ ; curl -sS --max-time 8 --noproxy '' -x http://10.0.2.100:3128 'http://[::ffff:127.0.0.1]:${hostPort}/'`);
    expect(loop.stdout + loop.stderr).toMatch(/refused: 127\.0\.0\.1 is this computer's loopback/);
    expect(loop.stdout + loop.stderr).toMatch(/\[::ffff:7f00:1\]:\d+ refused: 127\.0\.0\.1 is this computer's loopback/);
    expect(hits).toBe(0);
  });

  it('every spelling of every host address, as CONNECT and absolute-form, under internet and the widest allow= (0 hits; the exact listed address: every spelling reaches it)', async () => {
    hits = 0;
    const CRLF = '\\r\\n'; // printf %b turns these into CR LF in the guest
    const requests: Array<{ label: string; bytes: string }> = [];
    for (const addr of hostAddressList()) {
      for (const s of spellings(addr)) {
        requests.push({ label: `CONNECT ${s.host}`, bytes: `CONNECT ${s.host}:${hostPort} HTTP/1.1${CRLF}Host: ${s.host}:${hostPort}${CRLF}${CRLF}GET / HTTP/1.1${CRLF}Host: x${CRLF}${CRLF}` });
        requests.push({ label: `GET http://${urlHost(s)}`, bytes: `GET http://${urlHost(s)}:${hostPort}/ HTTP/1.1${CRLF}Host: x${CRLF}Connection: close${CRLF}${CRLF}` });
      }
    }
    // raw bytes to the proxy from bash, so no client normalises a spelling first; one status line each
    const script = [
      // builtins only (no fork per probe: the guest is slow under TCG)
      `probe() { local line=; if exec 3<>/dev/tcp/10.0.2.100/3128; then printf '%b' "$1" >&3; IFS= read -r -t 5 line <&3; echo "\${line%$'\\r'} <- $2"; exec 3<&- 3>&-; else echo "no proxy <- $2"; fi; }`,
      ...requests.map((r) => `probe '${r.bytes}' '${r.label}'`),
    ].join('\n');
    const bash = (name: string, only?: (label: string) => boolean) => {
      const lines = script.split('\n').filter((l, i) => i === 0 || !only || only(requests[i - 1].label));
      return d.api.call('sprites.exec', { name, argv: ['bash', '-c', lines.join('\n')] }, { timeoutMs: 600_000 });
    };
    const wide = 'allow=0.0.0.0/0,[::]/0';
    expect((await d.cli(['net', 'set', 'iso-b', wide])).code).toBe(0);
    try {
      for (const name of ['iso-a', 'iso-b']) {
        const r = await bash(name);
        const lines = r.stdout.trim().split('\n');
        expect(lines.length, r.stderr).toBe(requests.length);
        for (const l of lines) expect(l, `${name}: ${l}`).toMatch(/^HTTP\/1\.1 (400|403) /);
      }
      expect(requests.length).toBeGreaterThan(100);
      expect(hits).toBe(0);
      // the probe does reach this computer when the user lists its exact address: every spelling of it
      const lan = hostAddressList().find((a) => !a.startsWith('127.') && !a.includes(':'))!;
      const same = new Set(spellings(lan).filter((x) => x.kind === 'canonical' || x.kind === 'same').flatMap((x) => [`CONNECT ${x.host}`, `GET http://${x.host}`]));
      expect((await d.cli(['net', 'set', 'iso-b', `allow=${lan}`])).code).toBe(0);
      const r = await bash('iso-b', (label) => same.has(label));
      const lines = r.stdout.trim().split('\n');
      expect(lines.length).toBe(same.size);
      for (const l of lines) expect(l).toMatch(/^HTTP\/1\.1 200 /);
      expect(hits).toBe(same.size);
    } finally {
      expect((await d.cli(['net', 'set', 'iso-b', `allow=${MIRROR.host}`])).code).toBe(0);
    }
  });

  it("the daemon's TCP port and another sprite's forwarded ports are unreachable", async () => {
    const apiPort = Number(fs.readFileSync(d.layout.apiPortFile, 'utf8'));
    const b = await d.api.call('sprites.get', { name: 'iso-b' });
    const rt = JSON.parse(fs.readFileSync(`${d.home}/sprites/iso-b/runtime.json`, 'utf8'));
    const urlPort = Number(fs.readFileSync(`${d.home}/url-port`, 'utf8'));
    const urls = [apiPort, urlPort, b.sshPort!, rt.urlHostPort].flatMap((port) => ['10.0.2.2', ...hostAddresses()].map((h) => `http://${h}:${port}/v1/info`));
    const codes = await curlAll('iso-a', urls);
    expect(codes.length).toBe(urls.length * 2);
    for (const c of codes) expect(c.code, `${c.url} ${c.mode}`).not.toBe('200');
    // sprite B's sshd from A: not even a banner
    const ssh = await exec('iso-a', `timeout 8 bash -c 'exec 3<>/dev/tcp/10.0.2.2/${b.sshPort}; head -c 20 <&3' 2>&1; echo " rc=$?"`);
    expect(ssh.stdout).not.toContain('SSH-2.0');
  });

  it("the network is restricted in QEMU too: a guest root who routes around the host network stack only loses its network", async () => {
    const before = await exec('iso-a', `getent hosts ${MIRROR.host} >/dev/null && echo dns-ok`);
    expect(before.stdout).toContain('dns-ok');
    // every destination out of the first NIC, QEMU's restricted user network, instead of the second
    const nic0 = `$(ip -o -4 addr show to 10.0.2.15/32 | awk '{print $2}')`;
    const r = await exec('iso-a', `ip -6 addr show scope global; echo ---; ip route replace default via 10.0.2.2 dev ${nic0} onlink; getent hosts ${MIRROR.host} || echo no-dns; curl -sS --max-time 8 --noproxy '*' http://203.0.113.80/ 2>&1 || true; echo ---; ip route replace default via 10.0.3.2 && getent hosts ${MIRROR.host} >/dev/null && echo dns-ok`, 240_000);
    const [v6, rest, after] = r.stdout.split('---\n');
    expect(v6.trim()).toBe('');
    expect(rest).toContain('no-dns');
    expect(rest).toMatch(/Network is unreachable|Couldn't connect|Failed to connect|timed out/);
    expect(after).toContain('dns-ok');
  });
});

describe('egress policies', () => {
  it('internet: apt-get update and curl to the Debian mirror work through the proxy', async () => {
    const apt = await exec('iso-a', 'apt-get update 2>&1; echo "rc=$?"', 240_000);
    expect(apt.stdout).toContain('rc=0');
    expect(apt.stdout).toContain(`${MIRROR.url}`);
    expect(apt.stdout).not.toMatch(/^(W|E): /m);
    expect((await curl('iso-a', `-k ${MIRROR_HTTPS}/dists/bookworm/Release`)).stdout).toBe('200');
    const stats = await d.api.call('sprites.get', { name: 'iso-a' });
    expect(stats.network).toBe('internet');
  });

  it('allow=<the mirror> reaches that host and not another, with a clear error in the guest', async () => {
    expect((await d.api.call('sprites.get', { name: 'iso-b' })).network).toBe(`allow=${MIRROR.host}`);
    expect((await curl('iso-b', `-k ${MIRROR_HTTPS}/dists/bookworm/Release`)).stdout).toBe('200');
    expect((await curl('iso-b', `${MIRROR.url}/dists/bookworm/Release`)).stdout).toBe('200');
    // the guest's own DNS refuses the name; the proxy, asked by hand, says why in words
    const own = await exec('iso-b', 'curl -sS --max-time 8 --noproxy "*" http://other.example.org/ 2>&1; getent hosts other.example.org; echo "rc=$?"');
    expect(own.stdout).toMatch(/Could not resolve host: other\.example\.org/);
    expect(own.stdout).toContain('rc=2');
    const other = await exec('iso-b', viaProxy('curl -sS --max-time 8 http://other.example.org/ ; curl -sS --max-time 8 -v https://other.example.org/ 2>&1 | grep -i "< HTTP\\|x-spritely"'));
    expect(other.stdout).toContain(`spritely: other.example.org:80 refused: other.example.org is not in this sprite's allow list (allow=${MIRROR.host})`);
    expect(other.stdout).toContain(`To let it out, on the host: spritely net set iso-b allow=${MIRROR.host},other.example.org`);
    expect(other.stdout).toMatch(/< HTTP\/1\.1 403 Forbidden by Spritely network policy/);
    expect(other.stdout).toMatch(/x-spritely-error: spritely: other\.example\.org:443 refused/i);
    // the host lists what was refused, newest first, in the words the guest got
    const shown = await d.cli(['net', 'show', 'iso-b', '--json']);
    expect(shown.code, shown.stderr).toBe(0);
    const view = JSON.parse(shown.stdout) as { name: string; network: string; refused: { at: string; protocol: string; name: string | null; address: string | null; port: number | null; reason: string; count: number }[] };
    expect(view.name).toBe('iso-b');
    expect(view.network).toBe(`allow=${MIRROR.host}`);
    const why = `other.example.org is not in this sprite's allow list (allow=${MIRROR.host})`;
    expect(view.refused.slice(0, 2)).toEqual([
      { at: expect.any(String), protocol: 'tcp', name: 'other.example.org', address: null, port: 443, reason: why, count: 1 },
      { at: expect.any(String), protocol: 'tcp', name: 'other.example.org', address: null, port: 80, reason: why, count: 1 },
    ]);
    expect(Date.now() - Date.parse(view.refused[0].at)).toBeLessThan(120_000);
    const human = await d.cli(['net', 'show', 'iso-b']);
    const lines = human.stdout.split('\n');
    expect(lines[0]).toBe(`iso-b: network allow=${MIRROR.host}`);
    expect(lines[1]).toBe('last refused, newest first:');
    expect(lines[2]).toMatch(new RegExp(`^  \\d\\d:\\d\\d:\\d\\d  other\\.example\\.org:443 +tcp  ${why.replace(/[.()]/g, '\\$&')}$`));
  });

  it('none has no egress at all; net set applies at once, without a restart, and survives sleep', async () => {
    const pid = (await d.api.call('sprites.get', { name: 'iso-b' })).pid;
    const set = await d.cli(['net', 'set', 'iso-b', 'none']);
    expect(set.code, set.stderr).toBe(0);
    expect(set.stdout.trim()).toBe('iso-b: network none');
    const r = await exec('iso-b', viaProxy(`curl -sS --max-time 8 https://${MIRROR.host}/ 2>&1; curl -sS --max-time 8 http://${MIRROR.host}/ 2>&1; apt-get update 2>&1 | tail -3; echo "rc=$?"`), 240_000);
    const own = await exec('iso-b', `getent hosts ${MIRROR.host}; echo "rc=$?"; curl -sS --max-time 8 --noproxy '*' http://203.0.113.80/ 2>&1; echo "curl=$?"`);
    expect(own.stdout).toContain('rc=2');
    expect(own.stdout).not.toContain('curl=0');
    expect(r.stdout).toMatch(/CONNECT tunnel failed, response 403/);
    expect(r.stdout).toContain(`spritely: ${MIRROR.host}:80 refused: this sprite has no network (network none). To give it a network, on the host: spritely net set iso-b internet`);
    expect(r.stdout).toMatch(/403\s+Forbidden by Spritely network policy|Failed to fetch/);
    expect((await d.api.call('sprites.get', { name: 'iso-b' })).pid).toBe(pid);

    await d.api.call('sprites.sleep', { name: 'iso-b' });
    // the policy, and what it refused before the sleep: the list outlives the machine
    const shown = (await d.cli(['net', 'show', 'iso-b'])).stdout;
    expect(shown.split('\n')[0]).toBe('iso-b: network none');
    expect(shown).toMatch(new RegExp(`  ${MIRROR.host.replace(/\./g, '\\.')}:80 +tcp  this sprite has no network \\(network none\\)(  ×\\d+)?\n`));
    expect((await curl('iso-b', `https://${MIRROR.host}/`)).stdout).toBe('000');
    expect((await d.cli(['net', 'set', 'iso-b', 'internet'])).code).toBe(0);
    expect((await curl('iso-b', `-k ${MIRROR_HTTPS}/dists/bookworm/Release`)).stdout).toBe('200');
  });

  it('bad policies are refused with a clear error and change nothing', async () => {
    for (const bad of ['open', 'allow=', 'allow=http://x.com', 'allow=a b']) {
      const r = await d.cli(['net', 'set', 'iso-b', bad]);
      expect(r.code, bad).not.toBe(0);
      expect(r.stderr, bad).toMatch(/network policy|host name|at least one/);
    }
    const c = await d.cli(['create', 'iso-c', '--network', 'everything']);
    expect(c.code).not.toBe(0);
    expect(c.stderr).toMatch(/"everything" is not a network policy/);
    expect(fs.existsSync(`${d.home}/sprites/iso-c`)).toBe(false);
    expect((await d.api.call('sprites.get', { name: 'iso-b' })).network).toBe('internet');
  });
});

describe('agents cannot widen the network', () => {
  it('MCP sprite_create refuses host, router and metadata addresses, and creates nothing', async () => {
    const env = Object.fromEntries(Object.entries(d.env).filter((e): e is [string, string] => e[1] !== undefined));
    const transport = new StdioClientTransport({ command: process.execPath, args: [BIN, 'mcp'], env, stderr: 'pipe' });
    const client = new Client({ name: 'network-test', version: '1.0.0' });
    await client.connect(transport, { timeout: 60_000 });
    try {
      const own = hostAddressList().filter((a) => !a.startsWith('127.') && a !== '::1');
      for (const network of [`allow=${own.map((a) => (a.includes(':') ? `[${a}]` : a)).join(',')},10.0.2.2,169.254.169.254`, `allow=${MIRROR.host},192.168.0.0/16`, 'allow=[::ffff:a9fe:a9fe]', 'allow=0x7f.1', 'allow=nas.local']) {
        const r = (await client.callTool({ name: 'sprite_create', arguments: { name: 'iso-wide', network } })) as { isError?: boolean; content: Array<{ text: string }> };
        expect(r.isError, network).toBe(true);
        expect(r.content[0].text, network).toMatch(/^Error \(invalid_argument\): Network policy refused: /);
      }
    } finally {
      await client.close().catch(() => {});
    }
    expect((await d.api.call('sprites.list')).map((s) => s.name)).not.toContain('iso-wide');
    expect(fs.existsSync(`${d.home}/sprites/iso-wide`)).toBe(false);
  });
});

describe('secrets', () => {
  it("the installation's SSH key and tokens are 0600 in a 0700 data dir and never inside a guest", async () => {
    expect(fs.statSync(d.home).mode & 0o777).toBe(0o700);
    expect(fs.statSync(d.layout.keysDir).mode & 0o777).toBe(0o700);
    for (const f of [`${d.layout.keysDir}/id_ed25519`, d.layout.apiTokenFile]) expect(fs.statSync(f).mode & 0o777, f).toBe(0o600);
    const privateKey = fs.readFileSync(`${d.layout.keysDir}/id_ed25519`, 'utf8');
    const body = privateKey.split('\n').filter((l) => l && !l.startsWith('-----'));
    const token = fs.readFileSync(d.layout.apiTokenFile, 'utf8').trim();
    // a distinctive slice of each secret, searched for wherever a guest keeps configuration and data
    const needles = [body[1].slice(0, 40), token.slice(0, 32)];
    const r = await exec('iso-a', `for n in ${needles.map((n) => `'${n}'`).join(' ')}; do grep -rlF -- "$n" /etc /root /home /var /tmp /run /opt /srv /usr/lib/spritely /usr/local 2>/dev/null; done; echo searched`, 600_000);
    expect(r.stdout.trim()).toBe('searched');
    // what the guest does hold: the installation's public key, for root's login
    const pub = fs.readFileSync(`${d.layout.keysDir}/id_ed25519.pub`, 'utf8').trim();
    expect((await exec('iso-a', 'cat /root/.ssh/authorized_keys')).stdout.trim()).toBe(pub);
  });
});

describe('resources', () => {
  it('refuses to overcommit host RAM past the limit, naming what to sleep; nothing is made or lost', async () => {
    const set = await d.cli(['config', 'set', 'memory-limit', '1200M']);
    expect(set.stdout.trim()).toBe('memory-limit = 1.2 GiB');
    try {
      const awake = (await d.api.call('sprites.list')).filter((s) => s.state === 'running').map((s) => s.name).sort();
      expect(awake).toEqual(['iso-a', 'iso-b']);
      const c = await d.cli(['create', 'iso-c']);
      expect(c.code).not.toBe(0);
      expect(c.stderr).toMatch(/Not enough memory for "iso-c": it needs 512 MiB and awake sprites already use 1024 MiB of the 1200 MiB limit; sleep iso-(a|b) first \(spritely sleep NAME\), or raise the limit/);
      expect(fs.existsSync(`${d.home}/sprites/iso-c`)).toBe(false);

      const big = await d.cli(['create', 'iso-c', '--memory', '2048']);
      expect(big.stderr).toMatch(/it alone needs more than the limit/);
      const cpus = await d.cli(['create', 'iso-c', '--cpus', '64']);
      expect(cpus.stderr).toMatch(new RegExp(`This computer has ${os.availableParallelism()} CPU cores`));
      expect(fs.existsSync(`${d.home}/sprites/iso-c`)).toBe(false);

      // a sleeping sprite that would not fit is not woken, and stays asleep intact
      await d.api.call('sprites.sleep', { name: 'iso-b' });
      await d.cli(['config', 'set', 'memory-limit', '700M']);
      const woke = await d.cli(['exec', 'iso-b', '--', 'true']);
      expect(woke.code).not.toBe(0);
      expect(woke.stderr).toMatch(/Not enough memory for "iso-b": it needs 512 MiB and awake sprites already use 512 MiB of the 700 MiB limit; sleep iso-a first/);
      expect((await d.api.call('sprites.get', { name: 'iso-b' })).state).toBe('sleeping');
      await d.api.call('sprites.sleep', { name: 'iso-a' });
      expect((await d.cli(['exec', 'iso-b', '--', 'echo', 'awake'])).stdout).toBe('awake\n');
    } finally {
      expect((await d.cli(['config', 'set', 'memory-limit', 'default'])).stdout).toMatch(/\(default\)/);
    }
    const bad = await d.cli(['config', 'set', 'memory-limit', '12 bananas']);
    expect(bad.stderr).toMatch(/"12 bananas" is not a size/);
  });
});
