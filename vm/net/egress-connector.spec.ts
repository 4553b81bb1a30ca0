/**
 * The connector against real servers on this machine. Loopback is never reachable, so the servers
 * listen on this machine's first non-loopback IPv4 address, and the connector is told this machine
 * has no interfaces and that address is public (treatAsPublic): to the decision it is then an
 * internet host, the way github.com would be, and every policy can be exercised against it.
 */
import net from 'node:net';
import os from 'node:os';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { range } from './address.ts';
import { spellings } from './address-spellings.ts';
import { decideTransparent, EgressConnector, readTreatAsPublic, suggestionFor, type EgressConnectorOptions, type EgressResult } from './egress-connector.ts';
import { parseNetworkPolicy, type NetworkPolicy } from './egress-policy.ts';
import { hostNetworks } from './host-networks.ts';
import { ResolvedNames } from './resolved-names.ts';

const lan = Object.values(os.networkInterfaces()).flatMap((l) => l ?? []).find((i) => i.family === 'IPv4' && !i.internal)?.address;

let echo: net.Server;
let echoPort: number;
let closedPort: number;
const accepted: net.Socket[] = [];

beforeAll(async () => {
  if (!lan) throw new Error('this test needs one non-loopback IPv4 address on the machine');
  echo = net.createServer((s) => {
    accepted.push(s);
    s.on('error', () => {});
    s.pipe(s);
  });
  await new Promise<void>((r) => echo.listen(0, lan, r));
  echoPort = (echo.address() as net.AddressInfo).port;
  const closed = net.createServer();
  await new Promise<void>((r) => closed.listen(0, lan, r));
  closedPort = (closed.address() as net.AddressInfo).port;
  await new Promise<void>((r) => closed.close(() => r()));
});

afterAll(() => {
  for (const s of accepted) s.destroy();
  echo.close();
});

const open: net.Socket[] = [];
afterEach(() => {
  for (const s of open.splice(0)) s.destroy();
  vi.useRealTimers();
});

let policy: NetworkPolicy;
function connector(extra: Partial<EgressConnectorOptions> = {}) {
  const lines: string[] = [];
  const lookups: string[] = [];
  const c = new EgressConnector({
    sprite: 'dev',
    policy: () => policy,
    hostNetworks: () => [],
    treatAsPublic: [range(`${lan}/32`)],
    log: (l) => lines.push(l),
    lookup: async (name) => {
      lookups.push(name);
      if (name === 'app.example' || name === 'git.example') return [lan!];
      if (name === 'mixed.example') return [lan!, '10.9.8.7'];
      throw Object.assign(new Error('not found'), { code: 'ENOTFOUND' });
    },
    ...extra,
  });
  return { c, lines, lookups };
}

function ok(r: EgressResult) {
  if (!r.ok) throw new Error(`expected a connection, got ${r.kind}: ${r.message}`);
  open.push(r.socket);
  return r;
}

function refused(r: EgressResult) {
  if (r.ok) {
    r.socket.destroy();
    throw new Error(`expected a refusal, got a connection to ${r.address.text}`);
  }
  return r;
}

async function roundTrip(s: net.Socket, text: string): Promise<string> {
  s.write(text);
  let got = '';
  for await (const chunk of s) {
    got += chunk;
    if (got.length >= text.length) break;
  }
  return got;
}

describe('EgressConnector: by name or address as the guest wrote it (the HTTP proxy)', () => {
  it('resolves on the host once, decides, and connects to exactly the address decided', async () => {
    policy = parseNetworkPolicy('internet');
    const { c, lookups } = connector();
    const r = ok(await c.connect({ host: 'App.Example.', port: echoPort }));
    expect(r).toMatchObject({ name: 'app.example', address: { text: lan } });
    expect(r.socket.remoteAddress).toBe(lan);
    expect(r.socket.remotePort).toBe(echoPort);
    expect(lookups).toEqual(['app.example']);
    expect(await roundTrip(r.socket, 'ping')).toBe('ping');
  });

  it('reaches an address literal in every spelling of it, each deciding the same', async () => {
    policy = parseNetworkPolicy(`allow=${lan}`);
    const { c, lookups } = connector();
    for (const s of spellings(lan!).filter((x) => x.kind === 'canonical' || x.kind === 'same')) {
      const r = ok(await c.connect({ host: s.host, port: echoPort }));
      expect(r.address.text, s.host).toBe(lan);
      expect(r.name).toBeNull();
    }
    expect(lookups).toEqual([]);
  });

  it('refuses by name before any lookup, with the command that would allow it, and records it', async () => {
    policy = parseNetworkPolicy('allow=app.example');
    const { c, lookups, lines } = connector();
    const r = refused(await c.connect({ host: 'other.example', port: 443 }));
    expect(r).toEqual({
      ok: false,
      kind: 'refused',
      where: 'other.example:443',
      reason: "other.example is not in this sprite's allow list (allow=app.example)",
      suggestion: 'To let it out, on the host: spritely net set dev allow=app.example,other.example',
      message: "spritely: other.example:443 refused: other.example is not in this sprite's allow list (allow=app.example). To let it out, on the host: spritely net set dev allow=app.example,other.example",
    });
    expect(lookups).toEqual([]);
    expect(lines).toEqual(["egress refused: other.example:443: other.example is not in this sprite's allow list (allow=app.example)"]);
    expect(c.refusals.list()).toMatchObject([{ protocol: 'tcp', name: 'other.example', address: null, port: 443 }]);
  });

  it('refuses special-use names and addresses in disguise without a lookup', async () => {
    policy = parseNetworkPolicy('internet');
    const { c, lookups } = connector();
    for (const host of ['localhost', 'printer.local', 'db.internal', 'router', '0x7f.1']) {
      expect(refused(await c.connect({ host, port: 80 })).kind, host).toBe('refused');
    }
    expect(refused(await c.connect({ host: '2130706433', port: 80 })).kind).toBe('invalid'); // digits: an address, strictly read
    expect(lookups).toEqual([]);
  });

  it("refuses a name with one forbidden answer, naming it", async () => {
    policy = parseNetworkPolicy('internet');
    const { c } = connector();
    expect(refused(await c.connect({ host: 'mixed.example', port: echoPort })).reason).toBe('mixed.example resolves to one of its 2 addresses, 10.9.8.7, which is private-use (10.0.0.0/8, RFC 1918), not a public internet address');
  });

  it('none refuses everything and says how to give it a network', async () => {
    policy = parseNetworkPolicy('none');
    const { c } = connector();
    for (const req of [{ host: 'app.example' }, { host: lan! }, { address: lan! }]) {
      expect(refused(await c.connect({ ...req, port: echoPort }))).toMatchObject({ kind: 'refused', reason: 'this sprite has no network (network none)', suggestion: 'To give it a network, on the host: spritely net set dev internet' });
    }
  });

  it('answers what is not a destination as invalid, never recorded as a refusal', async () => {
    policy = parseNetworkPolicy('internet');
    const { c } = connector();
    const table: Array<[Parameters<EgressConnector['connect']>[0], RegExp]> = [
      [{ host: lan!, port: 0 }, /0 is not a port/],
      [{ host: lan!, port: 65536 }, /65536 is not a port/],
      [{ host: lan!, port: 1.5 }, /1\.5 is not a port/],
      [{ host: 'bad host!', port: 80 }, /is not a host name or IP address/],
      [{ host: '[fe80::1%eth0]', port: 80 }, /zone id/],
      [{ address: 'example.com', port: 80 }, /not an IP address/],
      [{ address: '1.2.3', port: 80 }, /not an IP address/],
    ];
    for (const [req, why] of table) expect(refused(await c.connect(req)), JSON.stringify(req)).toMatchObject({ kind: 'invalid', reason: expect.stringMatching(why) });
    expect(c.refusals.list()).toEqual([]);
    // a name beside an address would be the guest's claim: only the daemon's DNS binds them
    await expect(c.connect({ address: lan!, host: 'github.example', port: 80 })).rejects.toThrow(/a host or an address, not both/);
    await expect(c.connect({ port: 80 })).rejects.toThrow(/not both or neither/);
  });

  it('says what failed when the name does not resolve or nothing listens', async () => {
    policy = parseNetworkPolicy('internet');
    const { c } = connector();
    expect(refused(await c.connect({ host: 'missing.example', port: 80 }))).toMatchObject({ kind: 'unreachable', message: 'spritely: could not resolve missing.example (ENOTFOUND)' });
    expect(refused(await c.connect({ host: lan!, port: closedPort }))).toMatchObject({ kind: 'unreachable', message: expect.stringMatching(new RegExp(`^spritely: could not connect to ${lan!.replace(/\./g, '\\.')}:${closedPort}: connect ECONNREFUSED`)) });
    expect(c.active).toBe(0);
  });

  it('gives up on a destination that does not answer, and when the guest goes away', async () => {
    policy = parseNetworkPolicy('internet');
    // a socket that never connects: what a destination dropping SYNs looks like
    const silent = () => new net.Socket();
    const { c } = connector({ connectTimeoutMs: 50, dial: silent });
    expect(refused(await c.connect({ host: lan!, port: 9 }))).toMatchObject({ kind: 'unreachable', message: `spritely: could not connect to ${lan}:9: no answer from ${lan}:9 (${lan}) in 0.05 s` });
    const { c: c2 } = connector({ dial: silent });
    const abort = new AbortController();
    const pending = c2.connect({ host: lan!, port: 9, signal: abort.signal });
    expect(c2.active).toBe(1);
    abort.abort();
    expect(refused(await pending)).toMatchObject({ kind: 'unreachable', message: expect.stringMatching(/the guest closed the connection/) });
    expect(c2.active).toBe(0);
  });

  it('check() decides without connecting', async () => {
    policy = parseNetworkPolicy('allow=app.example');
    const before = accepted.length;
    const { c } = connector();
    expect(await c.check({ host: 'app.example', port: echoPort })).toBeNull();
    expect(await c.check({ host: 'other.example', port: echoPort })).toMatchObject({ kind: 'refused', reason: expect.stringMatching(/not in this sprite's allow list/) });
    expect(await c.check({ host: '010.1.1.1', port: echoPort })).toMatchObject({ kind: 'invalid' });
    expect(c.active).toBe(0);
    expect(accepted.length).toBe(before);
  });

  it('reads the policy for every request', async () => {
    const { c } = connector();
    policy = parseNetworkPolicy('none');
    refused(await c.connect({ host: lan!, port: echoPort }));
    policy = parseNetworkPolicy('internet');
    ok(await c.connect({ host: lan!, port: echoPort }));
  });
});

describe('EgressConnector: transparent connections (an address, the name from the guest DNS)', () => {
  it('allow=NAME lets out a connection to an address the daemon answered NAME with', async () => {
    policy = parseNetworkPolicy('allow=git.example');
    const names = new ResolvedNames();
    const { c, lookups } = connector({ names });
    const before = refused(await c.connect({ address: lan!, port: echoPort }));
    expect(before).toMatchObject({ kind: 'refused', reason: `${lan} is not in this sprite's allow list (allow=git.example)`, suggestion: `To let it out, on the host: spritely net set dev allow=git.example,${lan}` });
    names.record('git.example', [lan!], 60, Date.now());
    const r = ok(await c.connect({ address: lan!, port: echoPort }));
    expect(r).toMatchObject({ name: 'git.example', address: { text: lan } });
    expect(await roundTrip(r.socket, 'SSH-2.0-test\r\n')).toBe('SSH-2.0-test\r\n');
    expect(lookups).toEqual([]); // nothing resolved again
    // the IPv4-mapped spelling of the same destination is the same destination
    ok(await c.connect({ address: `::ffff:${lan}`, port: echoPort }));
  });

  it('a name that is not allowed gives its refusal; an expired name counts no more', async () => {
    policy = parseNetworkPolicy('allow=git.example');
    let now = 1_000_000;
    const names = new ResolvedNames({ graceMs: 0 });
    const { c, lines } = connector({ names, now: () => now });
    names.record('other.example', [lan!], 10, now);
    expect(refused(await c.connect({ address: lan!, port: 22 }))).toMatchObject({ reason: "other.example is not in this sprite's allow list (allow=git.example)" });
    expect(lines[0]).toBe(`egress refused: other.example:22 (${lan}): other.example is not in this sprite's allow list (allow=git.example)`);
    names.record('git.example', [lan!], 10, now);
    ok(await c.connect({ address: lan!, port: echoPort }));
    now += 10_000;
    expect(refused(await c.connect({ address: lan!, port: echoPort })).reason).toMatch(/^\S+ is not in this sprite's allow list/);
  });

  it('an address the user listed is reached whatever name led there', async () => {
    policy = parseNetworkPolicy(`allow=${lan}`);
    const names = new ResolvedNames();
    names.record('other.example', [lan!], 60, Date.now());
    const { c } = connector({ names });
    expect(ok(await c.connect({ address: lan!, port: echoPort })).name).toBeNull();
  });
});

describe('EgressConnector: limits and accounting', () => {
  it('caps the connections a sprite has open or opening, with a sentence, and frees a slot on close', async () => {
    policy = parseNetworkPolicy('internet');
    const { c, lines } = connector({ maxConnections: 3 });
    const conns: Array<Extract<EgressResult, { ok: true }>> = [];
    for (let i = 0; i < 3; i++) conns.push(ok(await c.connect({ host: lan!, port: echoPort })));
    expect(c.active).toBe(3);
    const busy = refused(await c.connect({ host: 'app.example', port: echoPort }));
    expect(busy).toEqual({
      ok: false,
      kind: 'busy',
      where: `app.example:${echoPort}`,
      reason: 'this sprite already has 3 connections open, the most it may have at once',
      suggestion: 'Close some and try again',
      message: `spritely: app.example:${echoPort} refused: this sprite already has 3 connections open, the most it may have at once. Close some and try again`,
    });
    expect(lines.at(-1)).toBe(`egress refused: app.example:${echoPort}: this sprite already has 3 connections open, the most it may have at once`);
    conns[0].socket.destroy();
    await new Promise((r) => conns[0].socket.once('close', r));
    expect(c.active).toBe(2);
    ok(await c.connect({ host: lan!, port: echoPort }));
  });

  it('counts connections still resolving against the cap', async () => {
    policy = parseNetworkPolicy('internet');
    const waiting: Array<() => void> = [];
    const { c } = connector({ maxConnections: 2, lookup: () => new Promise((r) => waiting.push(() => r([lan!]))) });
    const a = c.connect({ host: 'slow.example', port: echoPort });
    const b = c.connect({ host: 'slow.example', port: echoPort });
    expect(refused(await c.connect({ host: lan!, port: echoPort })).kind).toBe('busy');
    for (const w of waiting) w();
    ok(await a);
    ok(await b);
  });

  it('counts bytes both ways, open and closed, and reports activity while bytes move', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    policy = parseNetworkPolicy('internet');
    let activity = 0;
    const { c } = connector({ onActivity: () => activity++ });
    const r = ok(await c.connect({ host: lan!, port: echoPort }));
    expect(activity).toBe(1);
    const payload = 'x'.repeat(100_000);
    expect((await roundTrip(r.socket, payload)).length).toBe(payload.length);
    expect(c.bytesOut).toBe(payload.length);
    expect(c.bytesIn).toBe(payload.length);
    vi.advanceTimersByTime(1000);
    expect(activity).toBe(2);
    vi.advanceTimersByTime(1000); // nothing moved since
    expect(activity).toBe(2);
    r.socket.destroy();
    await new Promise((res) => r.socket.once('close', res));
    expect(c.bytesIn).toBe(payload.length);
    expect(c.bytesOut).toBe(payload.length);
    expect(vi.getTimerCount()).toBe(0); // no sampler without open connections
  });

  it('close() ends every open connection', async () => {
    policy = parseNetworkPolicy('internet');
    const { c } = connector();
    const r = ok(await c.connect({ host: lan!, port: echoPort }));
    c.close();
    await new Promise((res) => r.socket.once('close', res));
    expect(c.active).toBe(0);
  });
});

describe('decideTransparent and suggestionFor', () => {
  const host = hostNetworks({ eth0: [{ address: '192.168.1.23', netmask: '', family: 'IPv4', mac: '00:00:00:00:00:00', internal: false, cidr: '192.168.1.23/24' }] });
  const PUBLIC = '93.184.215.14';

  it('tries each name, most recent first, then the bare address', () => {
    const allow = parseNetworkPolicy('allow=b.example');
    expect(decideTransparent({ policy: allow, host }, PUBLIC, 443, ['a.example', 'b.example'])).toMatchObject({ name: 'b.example', decision: { ok: true } });
    expect(decideTransparent({ policy: allow, host }, PUBLIC, 443, ['a.example', 'c.example'])).toMatchObject({ name: 'a.example', decision: { ok: false, reason: expect.stringMatching(/^a\.example is not in/) } });
    expect(decideTransparent({ policy: allow, host }, PUBLIC, 443, [])).toMatchObject({ name: null, decision: { ok: false, reason: `${PUBLIC} is not in this sprite's allow list (allow=b.example)` } });
    expect(decideTransparent({ policy: parseNetworkPolicy(`allow=${PUBLIC}`), host }, PUBLIC, 443, ['a.example'])).toMatchObject({ name: null, decision: { ok: true } });
  });

  it('a name never makes this computer or its LAN reachable', () => {
    const internet = parseNetworkPolicy('internet');
    for (const a of ['192.168.1.23', '192.168.1.1', '127.0.0.1', '169.254.169.254', '10.0.0.1']) {
      expect(decideTransparent({ policy: internet, host }, a, 443, ['x.example']).decision.ok, a).toBe(false);
      expect(decideTransparent({ policy: parseNetworkPolicy('allow=x.example'), host }, a, 443, ['x.example']).decision.ok, a).toBe(false);
    }
  });

  it('an invalid address is invalid whatever the names', () => {
    expect(decideTransparent({ policy: parseNetworkPolicy('internet'), host }, 'nope', 443, ['x.example']).decision).toMatchObject({ ok: false, kind: 'invalid' });
  });

  it('suggests the allow entry, or a network, or nothing', () => {
    const refusal = { ok: false as const, kind: 'refused' as const, reason: 'r', allowEntry: 'x.example' };
    expect(suggestionFor('dev', parseNetworkPolicy('allow=a.example'), refusal)).toBe('To let it out, on the host: spritely net set dev allow=a.example,x.example');
    expect(suggestionFor('dev', parseNetworkPolicy('none'), refusal)).toBe('To give it a network, on the host: spritely net set dev internet');
    expect(suggestionFor('dev', parseNetworkPolicy('internet'), refusal)).toBeUndefined();
    expect(suggestionFor('dev', parseNetworkPolicy('allow=a.example'), { ...refusal, kind: 'invalid' })).toBeUndefined();
  });

  it('readTreatAsPublic reads addresses and ranges and reports the rest', () => {
    const lines: string[] = [];
    expect(readTreatAsPublic(['198.18.0.0/15', ' 192.0.2.1 ', '', '2001:db8::1', 'nope', '10.0.0.1/8'], (l) => lines.push(l)).map((r) => r.text)).toEqual(['198.18.0.0/15', '192.0.2.1/32', '2001:db8::1/128']);
    expect(lines).toHaveLength(2);
  });
});
