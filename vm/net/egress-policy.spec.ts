import { describe, expect, it } from 'vitest';
import { canonicalAddress } from './address.ts';
import { agentPolicyProblem, allowsAddress, allowsName, formatNetworkPolicy, parseNetworkPolicy, readAllowList } from './egress-policy.ts';

describe('parseNetworkPolicy', () => {
  it('reads the three spellings and writes them back, entries canonical', () => {
    expect(parseNetworkPolicy('internet')).toEqual({ mode: 'internet', allow: [] });
    expect(parseNetworkPolicy(' none ')).toEqual({ mode: 'none', allow: [] });
    const p = parseNetworkPolicy('allow=Mirror.Example.org., *.github.com,1.2.3.4,[2001:DB8::1],mirror.example.org,::ffff:192.168.1.20,192.168.1.0/24,[FD00::]/64,2001:db8:0:0::1');
    expect(p).toEqual({ mode: 'allow', allow: ['mirror.example.org', '*.github.com', '1.2.3.4', '[2001:db8::1]', '192.168.1.20', '192.168.1.0/24', '[fd00::]/64'] });
    expect(formatNetworkPolicy(p)).toBe('allow=mirror.example.org,*.github.com,1.2.3.4,[2001:db8::1],192.168.1.20,192.168.1.0/24,[fd00::]/64');
    expect(parseNetworkPolicy(formatNetworkPolicy(p))).toEqual(p);
  });

  it('refuses what is not a policy with a message that shows the spelling', () => {
    const table: Array<[string, RegExp]> = [
      ['', /not a network policy/],
      ['open', /"open" is not a network policy/],
      ['internet,none', /not a network policy/],
      ['allow=', /at least one/],
      ['allow=,', /at least one/],
      ['allow=exa mple.com', /"exa mple.com" is not a host name/],
      ['allow=a..b', /not a host name/],
      ['allow=-x.com', /not a host name/],
      ['allow=http://x.com', /"http:\/\/x.com" is not a host name/],
      ['allow=*', /not a host name/],
      ['allow=x.*.com', /not a host name/],
      ['allow=0x7f.1', /"0x7f.1" is not a host name/],
      ['allow=017700000001', /not an IP address/],
      ['allow=127.1', /not an IP address/],
      ['allow=fe80::1%eth0', /zone id/],
      ['allow=192.168.1.5/24', /host bits set; the network is 192\.168\.1\.0\/24/],
    ];
    for (const [bad, why] of table) expect(() => parseNetworkPolicy(bad), bad).toThrow(why);
    expect(() => parseNetworkPolicy(`allow=${Array.from({ length: 300 }, (_, i) => `h${i}.com`).join(',')}`)).toThrow(/at most 256/);
  });

  it('refuses what allow= can never reach: loopback, unspecified, multicast, local names', () => {
    const table: Array<[string, RegExp]> = [
      ['allow=127.0.0.1', /loopback or unspecified/],
      ['allow=[::1]', /loopback or unspecified/],
      ['allow=[::ffff:7f00:1]', /loopback or unspecified/],
      ['allow=[0:0:0:0:0:ffff:127.0.0.1]', /loopback or unspecified/],
      ['allow=0.0.0.0', /loopback or unspecified/],
      ['allow=[::]', /loopback or unspecified/],
      ['allow=127.0.0.0/8', /loopback range/],
      ['allow=127.1.0.0/16', /loopback range/],
      ['allow=[64:ff9b::7f00:1]', /loopback or unspecified/],
      ['allow=[2002:7f00:1::]', /loopback or unspecified/],
      ['allow=224.0.0.1', /multicast or broadcast/],
      ['allow=255.255.255.255', /multicast or broadcast/],
      ['allow=localhost', /this computer's own name/],
      ['allow=nas.local', /multicast DNS[^]*list its IP address/],
      ['allow=*.local', /multicast DNS/],
      ['allow=nas.lan', /private-network/],
      ['allow=router.home.arpa', /home-network/],
      ['allow=nas', /single-label/],
    ];
    for (const [bad, why] of table) expect(() => parseNetworkPolicy(bad), bad).toThrow(why);
    // a wide range that includes loopback is fine: loopback itself stays refused when deciding
    expect(parseNetworkPolicy('allow=0.0.0.0/0').allow).toEqual(['0.0.0.0/0']);
    expect(parseNetworkPolicy('allow=*.dev').allow).toEqual(['*.dev']);
  });
});

describe('allow list matching', () => {
  const list = readAllowList(['mirror.example.org', '*.github.com', '1.2.3.4', '[2001:db8::1]', '192.168.1.0/24', '[fd00::]/64', '10.0.0.7/32', 'nas.lan', 'garbage entry', '127.1']);

  it('matches exact names, and *.domain matches subdomains only', () => {
    const table: Array<[string, boolean]> = [
      ['mirror.example.org', true], ['security.example.org', false], ['evil-mirror.example.org.attacker.com', false], ['api.github.com', true], ['a.b.github.com', true],
      ['github.com', false], ['notgithub.com', false], ['nas.lan', true], ['garbage entry', false],
    ];
    for (const [name, yes] of table) expect(allowsName(list, name), name).toBe(yes);
  });

  it('matches addresses by value: exact, within a range, or not', () => {
    const table: Array<[string, 'exact' | 'range' | null]> = [
      ['1.2.3.4', 'exact'], ['[::ffff:102:304]', 'exact'], ['2001:0DB8:0000::0001', 'exact'], ['10.0.0.7', 'exact'], ['[::ffff:10.0.0.7]', 'exact'],
      ['192.168.1.77', 'range'], ['[::ffff:c0a8:14d]', 'range'], ['fd00::1234', 'range'],
      ['1.2.3.5', null], ['192.168.2.1', null], ['fd00:0:0:1::1', null], ['127.0.0.1', null],
    ];
    for (const [a, how] of table) expect(allowsAddress(list, canonicalAddress(a)!), a).toBe(how);
  });
});

describe('agentPolicyProblem (MCP may only narrow)', () => {
  it('accepts internet, none and allow= of names', () => {
    for (const ok of ['internet', 'none', 'allow=mirror.example.org', 'allow=*.github.com,pkgs.example.net']) expect(agentPolicyProblem(ok), ok).toBeNull();
  });

  it('refuses any address or range, in any spelling, and anything unparseable', () => {
    const table: Array<[string, RegExp]> = [
      ['allow=192.0.2.2', /192\.0\.2\.2 is an IP address or range, which only the user can allow/],
      ['allow=mirror.example.org,169.254.169.254,192.168.1.1', /169\.254\.169\.254, 192\.168\.1\.1 are IP addresses or ranges/],
      ['allow=[::ffff:c0a8:101]', /192\.168\.1\.1 is an IP address/],
      ['allow=10.0.0.0/8', /10\.0\.0\.0\/8 is an IP address or range/],
      ['allow=[fd00::]/8', /\[fd00::\]\/8/],
      ['allow=127.0.0.1', /loopback/],
      ['allow=0x7f.1', /not a host name/],
      ['allow=nas.local', /multicast DNS/],
      ['everything', /not a network policy/],
    ];
    for (const [bad, why] of table) expect(agentPolicyProblem(bad), bad).toMatch(why);
    expect(agentPolicyProblem('allow=10.0.0.1')).toMatch(/^an agent may only narrow a sprite's network/);
  });
});
