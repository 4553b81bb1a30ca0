import { describe, expect, it } from 'vitest';
import { nameProblem, normalizeName, specialName } from './domain-names.ts';

describe('normalizeName', () => {
  it('lower-cases and drops the final dot; refuses what is not LDH labels', () => {
    expect(normalizeName('Mirror.Example.ORG.')).toBe('mirror.example.org');
    expect(normalizeName('_acme.example.com')).toBe('_acme.example.com');
    for (const bad of ['', '.', 'a..b', '-x.com', 'x-.com', 'exa mple.com', 'a/b', 'x\r\ny.com', 'é.com', `${'a'.repeat(64)}.com`, `${'a.'.repeat(127)}com`, '*.x.com', '[::1]']) {
      expect(normalizeName(bad), bad).toBeNull();
    }
  });
});

describe('special-use names', () => {
  it('refuses local and private names, and addresses in disguise, before any lookup', () => {
    const table: Array<[string, RegExp]> = [
      ['localhost', /this computer's own name/],
      ['app.localhost', /this computer's own name/],
      ['printer.local', /multicast DNS/],
      ['local', /multicast DNS/],
      ['nas.home.arpa', /home-network/],
      ['db.internal', /private-network/],
      ['metadata.google.internal', /private-network/],
      ['nas.lan', /private-network/],
      ['router.home', /private-network/],
      ['git.corp', /private-network/],
      ['x.private', /private-network/],
      ['wiki.intranet', /private-network/],
      ['localhost.localdomain', /hosts-file/],
      ['x.invalid', /never resolves/],
      ['abc.onion', /Tor/],
      ['x.alt', /not a DNS name/],
      ['1.0.0.127.in-addr.arpa', /infrastructure/],
      ['nas', /single-label/],
      ['0x7f.1', /not a host name/],
      ['017700000001', /not a host name/],
      ['127.1', /not a host name/],
      ['evil.0x7f', /not a host name/],
    ];
    for (const [name, why] of table) expect(nameProblem(name), name).toMatch(why);
  });

  it('lets ordinary names through, including look-alikes of special zones', () => {
    for (const name of ['mirror.example.net', 'example.com', 'app.test', 'www.example', 'local.example.com', 'localhost.example.com', 'mylan.com', 'lan.example.org', 'internal.company.com', '1e100.net', '123.com']) {
      expect(nameProblem(name), name).toBeNull();
      expect(specialName(name), name).toBeNull();
    }
  });
});
