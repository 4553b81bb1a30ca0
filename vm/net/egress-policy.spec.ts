import { describe, expect, it } from 'vitest';
import { allowListMatches, decideEgress, formatNetworkPolicy, parseNetworkPolicy } from './egress-policy.ts';

const internet = parseNetworkPolicy('internet');
const none = parseNetworkPolicy('none');
const host = ['192.0.2.2', 'fd00::2', '127.0.0.1'];

describe('parseNetworkPolicy', () => {
  it('reads the three spellings and writes them back', () => {
    expect(internet).toEqual({ mode: 'internet', allow: [] });
    expect(none).toEqual({ mode: 'none', allow: [] });
    const p = parseNetworkPolicy('allow=Deb.Debian.org., *.github.com,1.2.3.4,[2001:db8::1],deb.debian.org');
    expect(p).toEqual({ mode: 'allow', allow: ['deb.debian.org', '*.github.com', '1.2.3.4', '[2001:db8::1]'] });
    expect(formatNetworkPolicy(p)).toBe('allow=deb.debian.org,*.github.com,1.2.3.4,[2001:db8::1]');
  });

  it('refuses what is not a policy with a message that shows the spelling', () => {
    for (const bad of ['', 'open', 'allow=', 'allow=,', 'allow=exa mple.com', 'allow=a..b', 'allow=-x.com', 'allow=http://x.com', 'allow=*', 'allow=x.*.com', 'internet,none']) {
      expect(() => parseNetworkPolicy(bad), bad).toThrow(/network policy|host name|at least one/);
    }
    expect(() => parseNetworkPolicy(`allow=${Array.from({ length: 300 }, (_, i) => `h${i}.com`).join(',')}`)).toThrow(/at most 256/);
  });
});

describe('allowListMatches', () => {
  it('matches exact names, and *.domain matches subdomains only', () => {
    const allow = ['deb.debian.org', '*.github.com', '1.2.3.4', '[2001:db8::1]'];
    expect(allowListMatches(allow, 'deb.debian.org')).toBe(true);
    expect(allowListMatches(allow, 'DEB.debian.org.')).toBe(true);
    expect(allowListMatches(allow, 'security.debian.org')).toBe(false);
    expect(allowListMatches(allow, 'evil-deb.debian.org.attacker.com')).toBe(false);
    expect(allowListMatches(allow, 'api.github.com')).toBe(true);
    expect(allowListMatches(allow, 'a.b.github.com')).toBe(true);
    expect(allowListMatches(allow, 'github.com')).toBe(false);
    expect(allowListMatches(allow, 'notgithub.com')).toBe(false);
    expect(allowListMatches(allow, '1.2.3.4')).toBe(true);
    expect(allowListMatches(allow, '2001:db8::1')).toBe(true);
  });
});

describe('decideEgress', () => {
  it('none refuses everything', () => {
    expect(decideEgress(none, 'example.com', '93.184.216.34', host)).toEqual({ ok: false, reason: expect.stringMatching(/network none/) });
  });

  it('internet reaches public addresses only: never loopback, this computer, the LAN, link-local or multicast', () => {
    expect(decideEgress(internet, 'deb.debian.org', '203.0.113.80', host).ok).toBe(true);
    expect(decideEgress(internet, 'x', '2001:db8::5', host).ok).toBe(true);
    for (const a of ['127.0.0.1', '127.8.9.10', '::1', '::ffff:127.0.0.1', '0.0.0.0', '::', '192.0.2.2', 'fd00::2', '10.0.2.2', '172.16.0.1', '192.168.1.1', '100.64.0.1', '169.254.169.254', 'fe80::1', 'fc00::1', '224.0.0.1', '255.255.255.255', '::ffff:192.168.1.1']) {
      const d = decideEgress(internet, 'h', a, host);
      expect(d.ok, a).toBe(false);
      expect(d.reason, a).toMatch(/loopback|this computer|private/);
    }
  });

  it('allow lets out only listed names (even to a private address), never loopback', () => {
    const p = parseNetworkPolicy('allow=deb.debian.org,nas.lan');
    expect(decideEgress(p, 'deb.debian.org', '203.0.113.80', host).ok).toBe(true);
    expect(decideEgress(p, 'nas.lan', '192.168.1.20', host).ok).toBe(true);
    expect(decideEgress(p, 'example.com', '93.184.216.34', host)).toEqual({ ok: false, reason: expect.stringMatching(/not in this sprite's allow list \(allow=deb.debian.org,nas.lan\)/) });
    expect(decideEgress(parseNetworkPolicy('allow=127.0.0.1,localhost'), 'localhost', '127.0.0.1', host).ok).toBe(false);
    expect(decideEgress(parseNetworkPolicy('allow=127.0.0.1'), '127.0.0.1', '127.0.0.1', host).ok).toBe(false);
  });
});
