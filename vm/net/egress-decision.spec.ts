import type os from 'node:os';
import { describe, expect, it } from 'vitest';
import { inRange, lastAddress, range } from './address.ts';
import { spellings } from './address-spellings.ts';
import { decideEgress, parseTarget, refuseBeforeLookup, type EgressDecision } from './egress-decision.ts';
import { parseNetworkPolicy, type NetworkPolicy } from './egress-policy.ts';
import { hostNetworks } from './host-networks.ts';
import { IPV4_RANGES, IPV6_RANGES } from './ip-ranges.ts';

const v4 = (address: string, cidr: string, internal = false): os.NetworkInterfaceInfo => ({ address, netmask: '', family: 'IPv4', mac: '00:00:00:00:00:00', internal, cidr });
const v6 = (address: string, cidr: string): os.NetworkInterfaceInfo => ({ address, netmask: '', family: 'IPv6', mac: '00:00:00:00:00:00', internal: false, cidr, scopeid: 0 });

/** A laptop on a home LAN with global IPv6, docker, and a VPN address. */
const HOST = hostNetworks({
  lo: [v4('127.0.0.1', '127.0.0.1/8', true), v6('::1', '::1/128')],
  wlan0: [v4('192.168.1.23', '192.168.1.23/24'), v6('2a02:8071:5e1:9a00::17', '2a02:8071:5e1:9a00::17/64'), v6('fe80::1c2d:3e4f:5a6b:7c8d', 'fe80::1c2d:3e4f:5a6b:7c8d/64')],
  docker0: [v4('172.17.0.1', '172.17.0.1/16')],
  eth1: [v4('81.2.69.142', '81.2.69.142/28')], // a public address on this computer, on a public /28
});
const HOST_ADDRESSES = ['127.0.0.1', '::1', '192.168.1.23', '2a02:8071:5e1:9a00::17', 'fe80::1c2d:3e4f:5a6b:7c8d', '172.17.0.1', '81.2.69.142'];

const internet = parseNetworkPolicy('internet');
const none = parseNetworkPolicy('none');
const PUBLIC4 = '93.184.215.14';
const PUBLIC6 = '2606:2800:21f:cb07:6820:80da:af6b:8b2c';

/** Decides a host part the way the proxy does: an address literal, or a name and its answers. */
function decideHost(policy: NetworkPolicy, host: string, answers: Record<string, string[]> = {}, extra: { treatAsPublic?: string[] } = {}): EgressDecision {
  const treatAsPublic = extra.treatAsPublic?.map(range);
  const t = parseTarget(host);
  if (t.kind === 'invalid') return { ok: false, kind: 'invalid', reason: t.problem };
  if (t.kind === 'address') return decideEgress({ policy, name: null, candidates: [t.address.text], port: 443, host: HOST, treatAsPublic });
  const early = refuseBeforeLookup(policy, t.name);
  if (early) return early;
  const found = answers[t.name];
  if (!found) throw new Error(`the test looked up ${t.name}, which it should not have`);
  return decideEgress({ policy, name: t.name, candidates: found, port: 443, host: HOST, treatAsPublic });
}

const reasonOf = (d: EgressDecision) => (d.ok ? `ok ${d.address.text}` : d.reason);

describe('decideEgress: none', () => {
  it('refuses everything, names before any lookup', () => {
    expect(decideHost(none, PUBLIC4)).toMatchObject({ ok: false, reason: 'this sprite has no network (network none)' });
    expect(decideHost(none, 'example.com')).toMatchObject({ ok: false, reason: 'this sprite has no network (network none)' });
  });
});

describe('decideEgress: internet is globally routable unicast only', () => {
  it('every special-purpose row, both directions', () => {
    let tried = 0;
    for (const row of [...IPV4_RANGES, ...IPV6_RANGES]) {
      if (row.range.bits === 0 || row.range.text === '::ffff:0:0/96' || row.range.text === '::/96') continue;
      // the last address of the row, unless a more specific row holds it
      const last = lastAddress(row.range);
      if ([...IPV4_RANGES, ...IPV6_RANGES].some((r) => r.range.bits > row.range.bits && inRange(last, r.range))) continue;
      const probe = last.text;
      tried++;
      const d = decideEgress({ policy: internet, name: null, candidates: [probe], port: 443, host: [] });
      expect(d.ok, `${probe} (${row.range.text} ${row.name})`).toBe(row.publicInternet);
      if (!d.ok) expect(d.reason, probe).toMatch(/not a public internet address|loopback|link-local|multicast|cloud metadata/);
    }
    expect(tried).toBeGreaterThan(40);
  });

  it('public addresses pass; a name whose answers are all public passes', () => {
    for (const a of [PUBLIC4, `[${PUBLIC6}]`, `[::ffff:${PUBLIC4}]`, '192.31.196.1', '[2001:4:112::1]']) expect(decideHost(internet, a).ok, a).toBe(true);
    expect(decideHost(internet, 'Example.COM.', { 'example.com': [PUBLIC4] })).toMatchObject({ ok: true, address: { text: PUBLIC4 } });
  });

  it("never this computer, in any spelling of any of its addresses (hits: none)", () => {
    let checked = 0;
    for (const addr of HOST_ADDRESSES) {
      for (const s of spellings(addr)) {
        const d = decideHost(internet, s.host);
        checked++;
        expect(d.ok, s.host).toBe(false);
        if (d.ok) continue;
        if (s.kind === 'canonical' || s.kind === 'same') expect(d.reason, s.host).toMatch(/loopback|is this computer|local network/);
        else if (s.kind === 'disguised') expect(d.reason, s.host).toMatch(/not a host name and not an IPv4 address|not an IP address \(IPv4 is written a\.b\.c\.d/);
        else if (s.kind === 'zone') expect(d, s.host).toMatchObject({ kind: 'invalid', reason: expect.stringMatching(/zone id/) });
        else expect(d.reason, s.host).toMatch(/loopback|NAT64|6to4/);
      }
    }
    expect(checked).toBeGreaterThan(100);
  });

  it("never this computer's networks: LAN, docker, global IPv6 neighbours on its prefix, its public /28", () => {
    const table: Array<[string, RegExp]> = [
      ['192.168.1.1', /on this computer's local network \(192\.168\.1\.0\/24 on wlan0\)/],
      ['[::ffff:c0a8:101]', /local network \(192\.168\.1\.0\/24/],
      ['172.17.0.2', /local network \(172\.17\.0\.0\/16 on docker0\)/],
      ['[2a02:8071:5e1:9a00::1]', /local network \(2a02:8071:5e1:9a00::\/64 on wlan0\)/],
      ['[2A02:8071:05E1:9A00:FFFF:FFFF:FFFF:FFFF]', /local network/],
      ['81.2.69.129', /local network \(81\.2\.69\.128\/28 on eth1\)/],
      ['81.2.69.142', /is this computer \(an address of its interface eth1\)/],
      ['[fe80::1]', /local network \(fe80::\/64/],
      ['169.254.169.254', /cloud metadata/],
      ['[fd00:ec2::254]', /cloud metadata/],
      ['10.0.2.2', /private-use \(10\.0\.0\.0\/8, RFC 1918\), not a public internet address/],
    ];
    for (const [host, why] of table) expect(reasonOf(decideHost(internet, host)), host).toMatch(why);
    // the next prefix over is the internet
    expect(decideHost(internet, '[2a02:8071:5e1:9a01::1]').ok).toBe(true);
    expect(decideHost(internet, '81.2.69.144').ok).toBe(true);
  });

  it('re-reads nothing itself: the interfaces passed in are the ones that count', () => {
    expect(decideEgress({ policy: internet, name: null, candidates: ['81.2.69.129'], port: 443, host: [] }).ok).toBe(true);
  });

  it('refuses special-use names and addresses in disguise before any lookup', () => {
    for (const name of ['localhost', 'printer.local', 'nas.home.arpa', 'db.internal', 'nas.lan', 'router', '0x7f.1', '017700000001', '127.1', '2130706433', 'LOCALHOST.']) {
      const d = decideHost(internet, name); // would throw if it looked the name up
      expect(d.ok, name).toBe(false);
    }
    // and the decision refuses them even when a caller skipped the early check and has public answers
    expect(reasonOf(decideEgress({ policy: internet, name: 'nas.local', candidates: [PUBLIC4], port: 80, host: HOST }))).toMatch(/multicast DNS/);
    expect(reasonOf(decideEgress({ policy: internet, name: '0x7f.1', candidates: [PUBLIC4], port: 80, host: HOST }))).toMatch(/not a host name/);
  });

  it('checks every answer of a name: one forbidden answer refuses the name, naming that answer', () => {
    const table: Array<[string[], RegExp]> = [
      [[PUBLIC4, '127.0.0.1'], /rebind\.example resolves to one of its 2 addresses, 127\.0\.0\.1, which is this computer's loopback/],
      [['127.0.0.1', PUBLIC4], /one of its 2 addresses, 127\.0\.0\.1/],
      [[PUBLIC4, PUBLIC6, '::ffff:192.168.1.23'], /one of its 3 addresses, 192\.168\.1\.23, which is this computer/],
      [[PUBLIC6, 'fd00::1'], /fd00::1, which is unique-local/],
      [[PUBLIC4, '10.1.2.3'], /10\.1\.2\.3, which is private-use/],
      [[PUBLIC4, '169.254.169.254'], /169\.254\.169\.254, which is a cloud metadata service/],
      [['2a02:8071:5e1:9a00::99'], /resolves to 2a02:8071:5e1:9a00::99, which is on this computer's local network/],
      [[PUBLIC4, 'not-an-address'], /resolved to "not-an-address", which is not an address/],
      [[PUBLIC4, 'fe80::1%eth0'], /not an address/],
      [[], /has no address/],
    ];
    for (const [answers, why] of table) expect(reasonOf(decideHost(internet, 'rebind.example', { 'rebind.example': answers })), answers.join(' ')).toMatch(why);
  });

  it('picks deterministically among good answers: the first IPv4 in resolver order, else the first IPv6', () => {
    const pick = (answers: string[]) => reasonOf(decideHost(internet, 'multi.example', { 'multi.example': answers }));
    expect(pick([PUBLIC6, PUBLIC4, '8.8.8.8'])).toBe(`ok ${PUBLIC4}`);
    expect(pick(['8.8.8.8', PUBLIC6, PUBLIC4])).toBe('ok 8.8.8.8');
    expect(pick([PUBLIC6, '2001:4860:4860::8888'])).toBe(`ok ${PUBLIC6}`);
    expect(pick([`::ffff:${PUBLIC4}`, PUBLIC6])).toBe(`ok ${PUBLIC4}`);
    expect(pick(['8.8.8.8', '8.8.8.8', '::ffff:8.8.8.8'])).toBe('ok 8.8.8.8');
  });

  it('treat-as-public lifts special-purpose rows, never this computer, its networks, link-local or metadata', () => {
    const lift = { treatAsPublic: ['203.0.113.0/24', '198.18.0.0/15', '0.0.0.0/0', '::/0'] };
    expect(decideHost(internet, 'mirror.example.org', { 'mirror.example.org': ['203.0.113.80'] }, { treatAsPublic: ['203.0.113.0/24'] }).ok).toBe(true);
    expect(decideHost(internet, 'mirror.example.org', { 'mirror.example.org': ['203.0.113.80'] }).ok).toBe(false);
    expect(decideHost(internet, '198.18.0.7', {}, lift).ok).toBe(true);
    for (const host of ['127.0.0.1', '[::1]', '0.0.0.0', '192.168.1.23', '192.168.1.1', '[2a02:8071:5e1:9a00::1]', '169.254.169.254', '169.254.1.1', '[fe80::99]', '[fd00:ec2::254]', '100.100.100.200', '224.0.0.1']) {
      expect(decideHost(internet, host, {}, lift).ok, host).toBe(false);
    }
  });

  it('refuses what is not a destination as invalid', () => {
    expect(decideEgress({ policy: internet, name: null, candidates: [PUBLIC4], port: 0, host: HOST })).toMatchObject({ kind: 'invalid' });
    expect(decideEgress({ policy: internet, name: null, candidates: [PUBLIC4], port: 65536, host: HOST })).toMatchObject({ kind: 'invalid' });
    expect(decideEgress({ policy: internet, name: null, candidates: [PUBLIC4, '8.8.8.8'], port: 80, host: HOST })).toMatchObject({ kind: 'invalid' });
    expect(decideEgress({ policy: internet, name: 'bad name', candidates: [PUBLIC4], port: 80, host: HOST })).toMatchObject({ kind: 'invalid' });
    expect(decideHost(internet, '[fe80::1%25eth0]')).toMatchObject({ kind: 'invalid', reason: expect.stringMatching(/zone id/) });
    expect(decideHost(internet, 'a..b')).toMatchObject({ kind: 'invalid' });
  });
});

describe('decideEgress: allow', () => {
  const policy = parseNetworkPolicy('allow=mirror.example.org,*.github.com,nas.example.com,192.168.1.40,10.9.0.0/16,192.168.1.0/24,[2a02:8071:5e1:9a00::/64],169.254.0.0/16');

  it('lets out listed names whose answers are public; others are refused before lookup, with the entry to add', () => {
    expect(decideHost(policy, 'mirror.example.org', { 'mirror.example.org': [PUBLIC4] }).ok).toBe(true);
    expect(decideHost(policy, 'api.github.com', { 'api.github.com': [PUBLIC4] }).ok).toBe(true);
    expect(decideHost(policy, 'security.example.org')).toMatchObject({ ok: false, allowEntry: 'security.example.org', reason: expect.stringMatching(/not in this sprite's allow list \(allow=mirror\.example\.org,/) });
    expect(decideHost(policy, PUBLIC4)).toMatchObject({ ok: false, allowEntry: PUBLIC4, reason: expect.stringMatching(/is not in this sprite's allow list/) });
  });

  it('a listed name gets the internet checks: never this computer, link-local, metadata or the LAN by name', () => {
    const table: Array<[string, RegExp, string]> = [
      ['127.0.0.1', /loopback/, ''],
      ['::ffff:7f00:1', /loopback/, ''],
      ['81.2.69.142', /is this computer/, '81.2.69.142'],
      ['169.254.169.254', /cloud metadata/, '169.254.169.254'],
      ['fe80::1', /local network|link-local/, '[fe80::1]'],
      ['10.1.2.3', /private-use/, '10.1.2.3'],
      ['172.17.0.5', /local network/, '172.17.0.5'],
    ];
    for (const [answer, why, entry] of table) {
      const d = decideHost(policy, 'mirror.example.org', { 'mirror.example.org': [answer] });
      expect(reasonOf(d), answer).toMatch(why);
      expect(d.ok ? undefined : d.allowEntry, answer).toBe(entry || undefined);
    }
  });

  it("a name's answer inside a listed address or range is the user's choice, except this computer and metadata", () => {
    expect(decideHost(policy, 'nas.example.com', { 'nas.example.com': ['192.168.1.40'] }).ok).toBe(true);
    expect(decideHost(policy, 'nas.example.com', { 'nas.example.com': ['10.9.1.1'] }).ok).toBe(true);
    expect(reasonOf(decideHost(policy, 'nas.example.com', { 'nas.example.com': ['192.168.1.23'] }))).toMatch(/this computer's own address; only the exact address/);
    expect(reasonOf(decideHost(policy, 'nas.example.com', { 'nas.example.com': ['169.254.169.254'] }))).toMatch(/link-local or cloud metadata; only the exact address/);
  });

  it('user-listed addresses: exact ones are reached (even this computer, link-local, metadata), never loopback', () => {
    const user = parseNetworkPolicy('allow=192.168.1.23,169.254.169.254,[fe80::1c2d:3e4f:5a6b:7c8d],10.0.2.2,[2a02:8071:5e1:9a00::17]');
    for (const addr of ['192.168.1.23', '169.254.169.254', 'fe80::1c2d:3e4f:5a6b:7c8d', '10.0.2.2', '2a02:8071:5e1:9a00::17']) {
      for (const s of spellings(addr).filter((x) => x.kind === 'canonical' || x.kind === 'same')) expect(decideHost(user, s.host).ok, s.host).toBe(true);
      for (const s of spellings(addr).filter((x) => x.kind === 'disguised' || x.kind === 'zone')) expect(decideHost(user, s.host).ok, s.host).toBe(false);
    }
    // a stale manifest that lists loopback (today's parser refuses it) still never reaches it
    const stale: NetworkPolicy = { mode: 'allow', allow: ['127.0.0.1', '[::1]', '0.0.0.0', 'localhost', '0.0.0.0/0', '[::]/0'] };
    for (const addr of ['127.0.0.1', '::1', '0.0.0.0', '::']) for (const s of spellings(addr)) expect(decideHost(stale, s.host).ok, s.host).toBe(false);
    expect(reasonOf(decideHost(stale, 'localhost'))).toMatch(/this computer's own name/);
  });

  it('ranges reach what is in them, but this computer, link-local and metadata only by exact address', () => {
    expect(decideHost(policy, '192.168.1.77').ok).toBe(true);
    expect(decideHost(policy, '[::ffff:c0a8:14d]').ok).toBe(true);
    expect(decideHost(policy, '[2a02:8071:5e1:9a00::99]').ok).toBe(true);
    for (const host of spellings('192.168.1.23').filter((s) => s.kind === 'canonical' || s.kind === 'same').map((s) => s.host)) {
      expect(decideHost(policy, host), host).toMatchObject({ ok: false, allowEntry: '192.168.1.23', reason: expect.stringMatching(/this computer's own address/) });
    }
    expect(reasonOf(decideHost(policy, '[2a02:8071:5e1:9a00::17]'))).toMatch(/this computer's own address/);
    expect(reasonOf(decideHost(policy, '169.254.169.254'))).toMatch(/link-local or cloud metadata/);
    expect(decideHost(policy, '169.254.1.1').ok).toBe(false);
    const everything = parseNetworkPolicy('allow=0.0.0.0/0,[::]/0');
    for (const addr of HOST_ADDRESSES) for (const s of spellings(addr)) expect(decideHost(everything, s.host).ok, s.host).toBe(false);
    expect(decideHost(everything, '192.168.1.1').ok).toBe(true);
  });
});
