/**
 * Public URLs end to end: a real relay (self-signed wildcard cert, on loopback), the real daemon
 * connected to it through the CLI, and a real sprite serving HTTP on 8080. Private by default
 * (401 → bearer 200 → share link cookie 200), `--revoke-links` and destroy-then-re-create ending
 * links and cookies, public on request, a sleeping sprite woken by a public request, unpublished → 404.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Relay } from '../../relay/relay-server.ts';
import { addAccount, get, makeCerts, publicAgent, removeDir, startTestRelay, writeEmptyTokens, type Certs } from '../relay/harness.ts';
import { startDaemon, waitFor, type TestDaemon } from './harness.ts';

let d: TestDaemon;
let certs: Certs;
let relay: Relay;
let token: string;

const SERVER = `perl -MIO::Socket::INET -e '$s=IO::Socket::INET->new(LocalPort=>8080,Listen=>16,ReuseAddr=>1) or die; while($c=$s->accept){ while(<$c>){ last if $_ eq "\\r\\n" } $h=\`hostname\`; chomp $h; $b="public hello from $h\\n"; print $c "HTTP/1.1 200 OK\\r\\nContent-Length: ".length($b)."\\r\\nConnection: close\\r\\n\\r\\n$b"; close $c }'`;

beforeAll(async () => {
  certs = makeCerts();
  const tokensFile = path.join(certs.dir, 'tokens.json');
  writeEmptyTokens(tokensFile);
  token = addAccount(tokensFile, 'laptop').token;
  relay = await startTestRelay(certs, tokensFile);
  fs.writeFileSync(path.join(certs.dir, 'ca.pem'), certs.cert);
  d = await startDaemon();
  await d.api.call('sprites.create', { name: 'web' }, { timeoutMs: 600_000 });
  const r = await d.api.call('sprites.exec', { name: 'web', argv: ['sh', '-c', `setsid ${SERVER} >/dev/null 2>&1 </dev/null &`] });
  expect(r.exitCode).toBe(0);
});

afterAll(async () => {
  await d?.cleanup();
  await relay?.close();
  if (certs) removeDir(certs.dir);
});

describe('public URLs through the relay', () => {
  it('connects, publishes privately by default, and lets in only the token or a share link', async () => {
    const connect = await d.cli(['relay', 'connect', `https://127.0.0.1:${relay.port}`, '--ca', path.join(certs.dir, 'ca.pem'), '--json'], { input: `${token}\n` });
    expect(connect.code, connect.stderr).toBe(0);
    expect(JSON.parse(connect.stdout)).toMatchObject({ status: 'connected', configured: true });
    const bad = await d.cli(['relay', 'connect', `https://127.0.0.1:${relay.port}`, '--ca', path.join(certs.dir, 'ca.pem')], { input: 'srt_nope_0000000000000000\n' });
    expect(bad.code).toBe(1);
    const again = await d.cli(['relay', 'connect', `https://127.0.0.1:${relay.port}`, '--ca', path.join(certs.dir, 'ca.pem')], { input: token });
    expect(again.code).toBe(0);
    // A token on the command line would be readable by every local user: refused, nothing sent.
    const inArgv = await d.cli(['relay', 'connect', `https://127.0.0.1:${relay.port}`, '--token', token]);
    expect(inArgv.code).not.toBe(0);
    expect(inArgv.stderr).toMatch(/visible to every local user/);
    // Plain http:// to anything but loopback would send the token in the clear: refused, nothing dialled.
    const cleartext = await d.cli(['relay', 'connect', 'http://relay.invalid'], { input: token });
    expect(cleartext.code).not.toBe(0);
    expect(cleartext.stderr).toMatch(/unencrypted/);
    expect(JSON.parse((await d.cli(['relay', 'status', '--json'])).stdout)).toMatchObject({ url: `https://127.0.0.1:${relay.port}`, status: 'connected' });

    const pub = JSON.parse((await d.cli(['url', 'web', '--public', '--json'])).stdout);
    expect(pub.public).toMatch(new RegExp(`^https://web-[a-z0-9]+\\.relay\\.test:${relay.port}/?$`));
    expect(pub.auth).toBe('sprite');
    expect(pub.accessToken).toBeTruthy();
    expect(fs.statSync(path.join(d.home, 'relay.json')).mode & 0o777).toBe(0o600);
    const agent = publicAgent(certs.cert);
    const url = pub.public.endsWith('/') ? pub.public : `${pub.public}/`;
    expect((await get(agent, url)).status).toBe(401);
    const ok = await get(agent, url, { headers: { authorization: `Bearer ${pub.accessToken}` } });
    expect(ok).toMatchObject({ status: 200, body: 'public hello from web\n' });

    const share = JSON.parse((await d.cli(['url', 'web', '--share', '1h', '--json'])).stdout).share;
    const viaLink = await get(agent, share.link);
    const cookie = String(viaLink.headers['set-cookie'] ?? '').split(';')[0];
    expect(cookie).toMatch(/^__Host-spritely_share=/);
    expect((await get(agent, url, { headers: { cookie } })).status).toBe(200);
    await agent.close();
  });

  it('--revoke-links ends every share link and the cookies they set; the access token and new links still work', async () => {
    const agent = publicAgent(certs.cert);
    const pub = JSON.parse((await d.cli(['url', 'web', '--json'])).stdout);
    const url = pub.public.endsWith('/') ? pub.public : `${pub.public}/`;
    const link = JSON.parse((await d.cli(['url', 'web', '--share', '1h', '--json'])).stdout).share.link;
    const cookie = String((await get(agent, link)).headers['set-cookie'] ?? '').split(';')[0];
    expect((await get(agent, url, { headers: { cookie } })).status).toBe(200);

    const revoked = await d.cli(['url', 'web', '--revoke-links', '--json']);
    expect(revoked.code, revoked.stderr).toBe(0);
    expect(JSON.parse(revoked.stdout)).toMatchObject({ public: pub.public, linksRevoked: true, live: true });
    const deadLink = await get(agent, link);
    expect(deadLink.status).toBe(401);
    expect(deadLink.body).toContain('revoked');
    expect((await get(agent, url, { headers: { cookie } })).status).toBe(401);
    const accessToken = JSON.parse(fs.readFileSync(path.join(d.home, 'relay.json'), 'utf8')).published.web.accessToken;
    expect((await get(agent, url, { headers: { authorization: `Bearer ${accessToken}` } })).status).toBe(200);
    const fresh = JSON.parse((await d.cli(['url', 'web', '--share', '1h', '--json'])).stdout).share.link;
    const freshCookie = String((await get(agent, fresh)).headers['set-cookie'] ?? '').split(';')[0];
    expect((await get(agent, url, { headers: { cookie: freshCookie } })).status).toBe(200);
    await agent.close();
  });

  it('destroying a sprite ends its links: a sprite re-created under the name does not open with them', async () => {
    const agent = publicAgent(certs.cert);
    await d.api.call('sprites.create', { name: 'again' }, { timeoutMs: 600_000 });
    const pub = JSON.parse((await d.cli(['url', 'again', '--public', '--json'])).stdout);
    const url = pub.public.endsWith('/') ? pub.public : `${pub.public}/`;
    const link = JSON.parse((await d.cli(['url', 'again', '--share', '1h', '--json'])).stdout).share.link;
    const cookie = String((await get(agent, link)).headers['set-cookie'] ?? '').split(';')[0];
    expect(cookie).toMatch(/^__Host-spritely_share=/);

    await d.api.call('sprites.destroy', { name: 'again' });
    await waitFor('the URL to be gone', async () => (await get(agent, url)).status === 404, 10_000, 200);
    expect(JSON.parse(fs.readFileSync(path.join(d.home, 'relay.json'), 'utf8')).published.again).toBeUndefined();
    await d.api.call('sprites.create', { name: 'again' }, { timeoutMs: 600_000 });
    expect((await d.cli(['url', 'again', '--public'])).code).toBe(0);
    const oldLink = await get(agent, link);
    expect(oldLink.status).toBe(401);
    expect(oldLink.body).toContain('revoked');
    expect((await get(agent, url, { headers: { cookie } })).status).toBe(401);
    await d.api.call('sprites.destroy', { name: 'again' });
    await agent.close();
  });

  it('public mode lets anyone in, a sleeping sprite is woken by a public request, --off unpublishes', async () => {
    const pub = JSON.parse((await d.cli(['url', 'web', '--auth', 'public', '--json'])).stdout);
    expect(pub.auth).toBe('public');
    const url = pub.public.endsWith('/') ? pub.public : `${pub.public}/`;
    const agent = publicAgent(certs.cert);
    expect((await get(agent, url)).status).toBe(200);
    await d.api.call('sprites.sleep', { name: 'web' });
    const woke = await get(agent, url);
    expect(woke).toMatchObject({ status: 200, body: 'public hello from web\n' });
    expect((await d.api.call('sprites.get', { name: 'web' })).state).toBe('running');
    const status = JSON.parse((await d.cli(['relay', 'status', '--json'])).stdout);
    expect(status.published).toEqual([{ name: 'web', url: pub.public, auth: 'public' }]);
    expect((await d.cli(['url', 'web', '--off'])).code).toBe(0);
    await waitFor('the URL to be gone', async () => (await get(agent, url)).status === 404, 10_000, 200);
    await agent.close();
  });

  it("announces the tunnel's state on /v1/events: a relay restart shows as backoff, then connected, and the URL works again", async () => {
    const pub = JSON.parse((await d.cli(['url', 'web', '--public', '--auth', 'public', '--json'])).stdout);
    const url = pub.public.endsWith('/') ? pub.public : `${pub.public}/`;
    const seen: { status: string; reason: string | null; published: { name: string }[] }[] = [];
    const events = d.api.socket('/v1/events');
    events.on('message', (data) => {
      const event = JSON.parse(String(data));
      if (event.type === 'relay.changed') seen.push(event.relay);
    });
    await new Promise((resolve, reject) => events.once('open', resolve).once('error', reject));
    try {
      const port = relay.port;
      await relay.close();
      const down = await waitFor('backoff announced', async () => seen.find((s) => s.status === 'backoff') ?? null, 20_000, 50);
      expect(down.reason).toBeTruthy();
      relay = await startTestRelay(certs, path.join(certs.dir, 'tokens.json'), {}, { port });
      await waitFor('connected announced', async () => seen.slice(seen.indexOf(down)).find((s) => s.status === 'connected') ?? null, 60_000, 50);
      expect(seen.at(-1)?.published.map((p) => p.name)).toEqual(['web']);
      const agent = publicAgent(certs.cert);
      await waitFor('the URL to answer again', async () => (await get(agent, url)).status === 200, 10_000, 200);
      await agent.close();
    } finally {
      events.close();
    }
  });
});
