/**
 * What happens when things go wrong: a daemon killed -9 (QEMU lives on and is re-attached), a
 * QEMU killed -9 (crashed, then start boots it from disk), bad input of every kind (clear errors,
 * nothing on disk changes), and a guest that replaces its agent with an impostor.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { methods } from '../../vm/api/contract.ts';
import { daemonLog, qemuPidsOf, snapshotTree, startDaemon, testImagesDir, waitFor, type TestDaemon } from './harness.ts';

let d: TestDaemon;

beforeAll(async () => {
  d = await startDaemon();
  await d.api.call('sprites.create', { name: 'victim' }, { timeoutMs: 300_000 });
});

afterAll(async () => {
  await d?.cleanup();
});

const exec = (name: string, argv: string[]) => d.api.call('sprites.exec', { name, argv }, { timeoutMs: 120_000 });

describe('faults', () => {
  it('a daemon killed with -9 leaves the sprite running; a new daemon re-attaches and exec works', async () => {
    await exec('victim', ['sh', '-c', 'echo before > /dev/shm/mark']);
    const pidBefore = (await d.api.call('sprites.get', { name: 'victim' })).pid;
    d.kill9();
    await waitFor('the daemon to die', () => d.proc.exitCode !== null || d.proc.signalCode !== null, 10_000);
    expect(qemuPidsOf(d.home)).toContain(pidBefore);
    await d.restart();
    const s = await d.api.call('sprites.get', { name: 'victim' });
    expect(s).toMatchObject({ state: 'running', pid: pidBefore });
    const r = await exec('victim', ['cat', '/dev/shm/mark']);
    expect(r.stdout, daemonLog(d)).toBe('before\n');
  });

  it('a QEMU killed with -9 shows as crashed, and start boots it again from its disk', async () => {
    await exec('victim', ['sh', '-c', 'echo on-disk > /root/persist; sync']);
    const { pid } = await d.api.call('sprites.get', { name: 'victim' });
    process.kill(pid!, 'SIGKILL');
    const crashed = await waitFor('crashed', async () => {
      const s = await d.api.call('sprites.get', { name: 'victim' });
      return s.state === 'crashed' ? s : null;
    }, 20_000);
    expect(crashed.lastError).toMatch(/exited unexpectedly/);
    expect((await d.cli(['list'])).stdout).toMatch(/victim\s+crashed/);
    const started = await d.api.call('sprites.start', { name: 'victim' }, { timeoutMs: 300_000 });
    expect(started.sprite.state).toBe('running');
    expect((await exec('victim', ['cat', '/root/persist'])).stdout).toBe('on-disk\n');
  });

  it('bad names, duplicates, unknown sprites and malformed payloads get clear errors and change nothing', async () => {
    const before = snapshotTree(path.join(d.home, 'sprites'));
    for (const bad of ['Dev', '-x', 'a_b', 'a'.repeat(64), '../../etc', 'x.y']) {
      const r = await d.cli(['create', '--', bad]);
      expect(r.code, bad).toBe(2);
      expect(r.stderr, bad).toMatch(/Invalid sprite name/);
    }
    const dup = await d.cli(['create', 'victim']);
    expect(dup.code).toBe(1);
    expect(dup.stderr).toContain('already exists');
    for (const args of [['exec', 'ghost', '--', 'true'], ['start', 'ghost'], ['stop', 'ghost'], ['destroy', 'ghost', '--force'], ['console', 'ghost']]) {
      const r = await d.cli(args);
      expect(r.code, args.join(' ')).not.toBe(0);
      expect(r.stderr, args.join(' ')).toContain('No sprite named "ghost"');
    }
    const raw = async (method: string, p: string, body?: string) => {
      const r = await d.api.request(method, p, body);
      return { status: r.status, body: JSON.parse(r.text) };
    };
    const cases: [string, string, string | undefined, number, RegExp][] = [
      ['POST', '/v1/sprites', '{not json', 400, /not valid JSON/],
      ['POST', '/v1/sprites', '[]', 400, /JSON object/],
      ['POST', '/v1/sprites', '{"name": 42}', 400, /name/],
      ['POST', '/v1/sprites', '{"name": "ok", "memoryMiB": "lots"}', 400, /memoryMiB/],
      ['POST', '/v1/sprites', '{"name": "ok", "evil": true}', 400, /evil|Unrecognized/i],
      ['POST', '/v1/sprites', '{"name": "ok", "memoryMiB": -5}', 400, /memoryMiB/],
      ['POST', '/v1/sprites', JSON.stringify({ name: 'x'.repeat(100000) }), 400, /name/],
      ['GET', '/v1/sprites/..%2F..%2Fetc', undefined, 400, /Invalid sprite name/],
      ['GET', '/v1/sprites/ghost', undefined, 404, /No sprite named/],
      ['DELETE', '/v1/sprites', undefined, 405, /not allowed/],
      ['GET', '/v1/nope', undefined, 404, /No such API endpoint/],
      ['POST', '/v1/sprites/victim/exec', '{"argv": []}', 400, /argv/],
      ['POST', '/v1/sprites/victim/stop', '{"force": "yes"}', 400, /force/],
    ];
    for (const [m, p, body, status, re] of cases) {
      const r = await raw(m, p, body);
      expect(r.status, `${m} ${p} ${body}`).toBe(status);
      expect(r.body.error.message, `${m} ${p}`).toMatch(re);
    }
    const huge = await d.api.request('POST', '/v1/sprites', 'x'.repeat(17 * 1024 * 1024)).catch((e) => ({ status: -1, text: String(e) }));
    expect(huge.status).toBe(413);
    const foreign = await d.api.request('GET', '/v1/sprites', undefined, undefined, { Origin: 'https://evil.example' });
    expect(foreign.status).toBe(403);
    expect(snapshotTree(path.join(d.home, 'sprites'))).toEqual(before);
    expect((await d.api.call('sprites.get', { name: 'victim' })).state).toBe('running');
  });

  it('a barrage of 10 000 random hostile requests: each gets a clear 4xx error, the daemon stays up, nothing changes', async () => {
    const seed = Number(process.env.SPRITELY_FUZZ_SEED ?? Date.now() % 1_000_000);
    const rand = mulberry32(seed);
    const pick = <T,>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
    const before = snapshotTree(path.join(d.home, 'sprites'));
    const spritesBefore = (await d.api.call('sprites.list')).map((s) => `${s.name}:${s.state}:${s.pid}`);
    const imagesBefore = fs.readdirSync(testImagesDir()).sort();
    const routes = [...new Set(Object.values(methods).map((m) => m.path))];
    // names that are invalid, traversal, or a valid name that does not exist (never "victim" in the path)
    const badNames = ['..', '../..', '..%2F..%2Fetc%2Fpasswd', '%2e%2e', 'a%00b', '%ff', 'x'.repeat(300), 'VICTIM', '%20victim', 'victim%2F..%2Fx', 'v%C3%ADctim', '-', 'ghost', '', '%2F', '.victim'];
    const badIds = ['..', '..%2F..%2Fsprite.json', 'v0', 'v99999999999999999999999', 'V1', '%00', 'v1%2F..', 'x'.repeat(500)];
    const junk = (depth: number): unknown => {
      const k = Math.floor(rand() * (depth > 3 ? 6 : 9));
      switch (k) {
        case 0: return null;
        case 1: return rand() < 0.5;
        case 2: return pick([0, -1, 1e308, -1e-308, 2 ** 53 + 1, 0.5, 65536, 4097]);
        case 3: return pick(['', '../../etc/passwd', '\u0000', 'x'.repeat(Math.floor(rand() * 70_000)), '\ud800', '<script>', 'v1', 'victim', '/root/../../..', 'A'.repeat(10)]);
        case 4: return 'victim';
        case 5: return pick(['internet', 'allow=', 'none', 'allow=*.*', 'ssh://x']);
        case 6: return Array.from({ length: Math.floor(rand() * 5) }, () => junk(depth + 1));
        default: {
          const o: Record<string, unknown> = {};
          for (let i = Math.floor(rand() * 5); i > 0; i--) o[pick(['name', 'argv', 'stdin', 'cwd', 'env', 'timeoutMs', 'memoryMiB', 'cpus', 'diskGiB', 'network', 'policy', 'id', 'backup', 'checkpoint', 'newName', 'comment', 'port', 'force', 'url', 'token', 'ca', 'idleTimeoutSec', 'memoryLimitMiB', 'sprite', 'ttlSec', 'auth', 'off', '__proto__', 'constructor'])] = junk(depth + 1);
          return o;
        }
      }
    };
    /**
     * Every request is malformed or hostile, with two harmless exceptions that are allowed to
     * succeed: GETs (reads). Nothing may change anything: a request that names the real sprite or
     * no sprite at all is a POST whose body is invalid (an unknown key: every input is strict; or
     * not a JSON object), because a DELETE or an empty POST there would be a valid request.
     */
    const request = (): { method: string; path: string; body?: string | Buffer } => {
      if (rand() < 0.1) return { method: pick(['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']), path: pick(['/v1/nope', '/v2/sprites', '/', '/v1/sprites/victim/secret', '/v1/../../etc/passwd', '/%2e%2e/%2e%2e', '/v1/sprites/victim/checkpoints/v1/restore/x']) };
      const route = pick(routes);
      const hostileName = route.includes(':name') && rand() < 0.7;
      const p = hostileName
        ? route.replace(':name', () => pick(badNames)).replace(':id', () => pick(badIds))
        : route.replace(':name', 'victim').replace(':id', () => pick(badIds.concat(['v1'])));
      const method = hostileName ? pick(['GET', 'POST', 'DELETE', 'PUT']) : rand() < 0.2 ? 'GET' : 'POST';
      let body: string | Buffer;
      const shape = rand();
      if (shape < 0.1) body = Buffer.from([0xff, ...Array.from({ length: Math.floor(rand() * 200) }, () => Math.floor(rand() * 256))]);
      else if (shape < 0.2) body = pick(['{', '{"a":', 'null', '[]', '"str"', '12', 'true', '{"name":"victim"}}', '\ufeff{}']);
      else {
        const o = junk(0);
        body = JSON.stringify(o && typeof o === 'object' && !Array.isArray(o) ? { ...o, [`fuzz${Math.floor(rand() * 1e6)}`]: 1 } : o);
      }
      return { method, path: p, body };
    };
    const N = 10_000;
    const statuses = new Map<number, number>();
    const failures: string[] = [];
    let reads = 0;
    let next = 0;
    const t0 = Date.now();
    const worker = async () => {
      while (next < N) {
        next++;
        const r = request();
        const res = await d.api.request(r.method, r.path, r.body).catch((e) => ({ status: -1, text: String(e) }));
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        let msg = '';
        try {
          msg = JSON.parse(res.text).error?.message ?? '';
        } catch {
          /* not JSON */
        }
        const harmlessRead = r.method === 'GET' && res.status === 200;
        if (harmlessRead) reads++;
        else if (res.status < 400 || res.status >= 500 || !msg || /\n\s+at /.test(msg)) {
          if (failures.length < 10) failures.push(`${res.status} ${r.method} ${r.path} ${String(r.body).slice(0, 200)} → ${res.text.slice(0, 300)}`);
        }
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));
    const ms = Date.now() - t0;
    process.stderr.write(`[barrage] seed ${seed}: ${N} requests in ${ms} ms; statuses ${JSON.stringify(Object.fromEntries(statuses))} (${reads} harmless GETs)\n`);
    expect(reads).toBeLessThan(N * 0.2);
    expect(failures, `seed ${seed}`).toEqual([]);
    // the daemon is the same process, answers, and nothing moved
    expect(fs.readFileSync(d.layout.daemonPidFile, 'utf8').trim()).toBe(String(d.pid));
    expect((await d.api.call('daemon.info')).pid).toBe(d.pid);
    expect((await d.api.call('sprites.list')).map((s) => `${s.name}:${s.state}:${s.pid}`)).toEqual(spritesBefore);
    expect(snapshotTree(path.join(d.home, 'sprites'))).toEqual(before);
    expect(fs.readdirSync(testImagesDir()).sort()).toEqual(imagesBefore);
    expect((await d.api.call('checkpoints.list', { name: 'victim' }))).toEqual([]);
    expect((await exec('victim', ['echo', 'still here'])).stdout).toBe('still here\n');
  }, 600_000);

  it('the loopback port lets in only the token or a browser login, from our own origin and host', async () => {
    const port = Number(fs.readFileSync(path.join(d.home, 'api-port'), 'utf8'));
    const token = fs.readFileSync(path.join(d.home, 'api-token'), 'utf8').trim();
    expect(fs.statSync(path.join(d.home, 'api-token')).mode & 0o777).toBe(0o600);
    expect(fs.statSync(d.layout.apiSocket).mode & 0o777).toBe(0o600);
    const base = `http://127.0.0.1:${port}`;
    const get = (p: string, headers: Record<string, string> = {}) => fetch(base + p, { headers, redirect: 'manual' });
    expect((await get('/v1/sprites')).status).toBe(401);
    expect((await get('/v1/sprites', { Authorization: 'Bearer wrong' })).status).toBe(401);
    expect((await get('/v1/sprites', { Authorization: `Bearer ${token}` })).status).toBe(200);
    expect((await get('/v1/sprites', { Authorization: `Bearer ${token}`, Origin: 'https://evil.example' })).status).toBe(403);
    expect((await get('/ui/login?code=made-up')).status).toBe(410);
    // A browser login (docs/ui.md): the code from the URL's fragment and a P-256 public key.
    const { url } = await d.api.call('ui.loginUrl');
    const code = new URL(url).hash.replace('#login=', '');
    const login = () =>
      fetch(`${base}/ui/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', origin: base },
        body: JSON.stringify({ code, key: crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'der' }).toString('base64url'), nonce: crypto.randomBytes(24).toString('base64url') }),
      });
    const first = await login();
    expect(first.status).toBe(200);
    expect(first.headers.get('set-cookie')).toBeNull();
    const session = `Bearer ${((await first.json()) as { token: string }).token}`;
    expect((await get('/v1/sprites', { Authorization: session, Origin: base })).status).toBe(200);
    expect((await get('/v1/sprites', { Authorization: session, Origin: 'http://evil.example' })).status).toBe(403);
    expect((await login()).status).toBe(401);
    // DNS rebinding: a name that resolves to 127.0.0.1 but is not ours.
    const rebound = await new Promise<number>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, path: '/v1/sprites', headers: { Host: `evil.example:${port}`, Authorization: session } }, (res) => resolve(res.statusCode!));
      req.on('error', reject);
      req.end();
    });
    expect(rebound).toBe(403);
  });

  it('a guest that replaces its agent with an impostor (a valid-looking answer, then an oversized frame): a clear error, a repair attempt, the daemon and other sprites unaffected, and the real agent back later', async () => {
    await d.api.call('sprites.create', { name: 'bystander' }, { timeoutMs: 300_000 });
    // The impostor answers every HELLO with the right nonce, then a frame that claims 2 GiB; it
    // leaves after 45 s (the daemon's connection predates it: the exec waits ~20 s, a PING finds the
    // port silent, the channel is dropped, and the next HELLO meets the impostor). It runs in a unit of its own (stopping the agent ends the agent's sessions).
    const impostor = String.raw`
use strict; use Fcntl;
sysopen(my $p, "/dev/virtio-ports/org.spritely.agent.0", O_RDWR) or die "open: $!";
my $end = time + 45; my $buf = ''; my $i;
while (time < $end) {
  my $n = sysread($p, my $chunk, 65536);
  if (!$n) { select(undef, undef, undef, 0.05); next }
  $buf .= $chunk;
  while (($i = index($buf, "SPRITELY")) >= 0 && length($buf) >= $i + 26) {
    my $nonce = substr($buf, $i + 8, 16);
    $buf = substr($buf, $i + 26);
    my $payload = $nonce . pack("n", 2) . '{"agent":"impostor","protocol":2,"pid":1,"maxSessions":1,"maxPayload":65536}';
    syswrite($p, pack("N", 5 + length $payload) . chr(2) . pack("N", 0) . $payload);
    syswrite($p, pack("N", 0x7fffff00) . chr(0x13) . pack("N", 1) . ("\xff" x 1000));
  }
  $buf = substr($buf, -64) if length($buf) > 4096;
}
`;
    // (checked first: an impostor that does not compile would leave only a stopped agent to find)
    const setUp = await exec('victim', ['sh', '-c', `cat > /root/impostor.pl <<'EOF'\n${impostor}\nEOF\nperl -c /root/impostor.pl && systemd-run --unit=impostor --no-block sh -c 'sleep 1; systemctl stop spritely-agent; exec perl /root/impostor.pl'`]);
    expect(setUp.exitCode, setUp.stderr).toBe(0);
    await new Promise((r) => setTimeout(r, 3000));
    // the daemon answers at once all along
    let slowest = 0;
    const pings = setInterval(() => {
      const t0 = Date.now();
      void d.api.call('daemon.info').then(() => (slowest = Math.max(slowest, Date.now() - t0)));
    }, 200);
    try {
      const t0 = Date.now();
      const err = await exec('victim', ['true']).then(() => null, (e: Error & { code?: string }) => e);
      expect(err?.code).toBe('unavailable');
      expect(err?.message).toMatch(/^The guest agent in sprite "victim" (does not answer|could not start the command)/);
      // the exec waited at most its 20 s for the (gone) agent, then a PING found it gone
      expect(Date.now() - t0).toBeLessThan(40_000);
      // a repair was attempted through qemu-guest-agent, and the guest's answer logged
      const fullLog = () => fs.readFileSync(path.join(d.home, 'daemon-test.log'), 'utf8');
      await waitFor('the repair in the daemon log', () => /sprite victim: its guest agent did not answer for 10 s \(.*\); asked the guest to restart it: spritely-agent: /.test(fullLog()), 30_000, 200);
      await waitFor('the impostor\'s frame refused', () => /guest agent of victim: closing the (connection|channel): the guest sent a frame length of 2147483392 \(allowed: 5 to 65541\)/.test(fullLog()), 60_000, 200);
      // the other sprite never noticed
      expect((await exec('bystander', ['echo', 'fine'])).stdout).toBe('fine\n');
      expect(slowest).toBeLessThan(1000);
      // the impostor leaves; the next repair brings the real agent back
      const back = await waitFor('the real agent back', async () => ((await exec('victim', ['echo', 'back']).catch(() => null))?.stdout === 'back\n' ? true : null), 120_000, 1000);
      expect(back).toBe(true);
    } finally {
      clearInterval(pings);
      await d.api.call('sprites.destroy', { name: 'bystander' }).catch(() => {});
    }
  }, 300_000);

  it('two CLIs racing on one name never corrupt it: one wins, the other gets a clear error', async () => {
    const [a, b] = await Promise.all([d.cli(['create', 'race', '--json']), d.cli(['create', 'race', '--json'])]);
    const codes = [a.code, b.code].sort();
    expect(codes).toEqual([0, 1]);
    expect((a.code ? a : b).stderr).toMatch(/already exists|busy/);
    const [s1, s2] = await Promise.all([d.cli(['stop', 'race', '--force']), d.cli(['exec', 'race', '--', 'true'])]);
    expect(s1.code).toBe(0);
    // The exec either ran before the stop, found the sprite stopped or lost its session when the
    // stop ended the machine under it (1, with the reason), or lost its connection (255).
    expect([0, 1, 255]).toContain(s2.code);
    const manifest = JSON.parse(fs.readFileSync(path.join(d.home, 'sprites/race/sprite.json'), 'utf8'));
    expect(manifest.status).toBe('stopped');
    await d.api.call('sprites.destroy', { name: 'race' });
  });
});

/** A small seeded PRNG, so a failing barrage can be replayed with SPRITELY_FUZZ_SEED. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
