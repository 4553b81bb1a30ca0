import { describe, expect, it } from 'vitest';
import { canonicalAddress, endsInNumber, inRange, parseAddress, parseRange, range } from './address.ts';
import { spellings } from './address-spellings.ts';

describe('parseAddress', () => {
  it('reads strict spellings into one canonical text', () => {
    const table: Array<[string, string, 4 | 6]> = [
      ['127.0.0.1', '127.0.0.1', 4],
      ['192.0.2.2', '192.0.2.2', 4],
      ['0.0.0.0', '0.0.0.0', 4],
      ['255.255.255.255', '255.255.255.255', 4],
      ['::ffff:127.0.0.1', '127.0.0.1', 4],
      ['[::ffff:7f00:1]', '127.0.0.1', 4],
      ['::FFFF:7F00:0001', '127.0.0.1', 4],
      ['0:0:0:0:0:ffff:127.0.0.1', '127.0.0.1', 4],
      ['0000:0000:0000:0000:0000:FFFF:c000:0202', '192.0.2.2', 4],
      ['::ffff:c000:202', '192.0.2.2', 4],
      ['::127.0.0.1', '127.0.0.1', 4], // IPv4-compatible (ipaddr.js alone would call it mapped)
      ['::7f00:1', '127.0.0.1', 4],
      ['::2', '0.0.0.2', 4],
      ['::1', '::1', 6],
      ['::', '::', 6],
      ['0:0:0:0:0:0:0:1', '::1', 6],
      ['[0000:0000:0000:0000:0000:0000:0000:0001]', '::1', 6],
      ['FD00::2', 'fd00::2', 6],
      ['fd00:0:0:0:0:0:0:2', 'fd00::2', 6],
      ['fd00:0:0:0:0:0::2', 'fd00::2', 6],
      ['2001:DB8:0:0:1:0:0:1', '2001:db8::1:0:0:1', 6], // RFC 5952: the first of two equal zero runs
      ['64:ff9b::127.0.0.1', '64:ff9b::7f00:1', 6], // NAT64 stays IPv6 (its own table row)
      ['::ffff:0:7f00:1', '::ffff:0:7f00:1', 6], // SIIT "IPv4-translated": not mapped
    ];
    for (const [input, text, family] of table) {
      const p = parseAddress(input);
      expect(p.ok, input).toBe(true);
      if (p.ok) expect([p.value.text, p.value.family], input).toEqual([text, family]);
    }
  });

  it('refuses every spelling that only a lenient parser reads, saying why', () => {
    const table: Array<[string, RegExp]> = [
      ['0x7f.1', /not an IP address/],
      ['0x7f000001', /not an IP address/],
      ['2130706433', /not an IP address/],
      ['017700000001', /not an IP address/],
      ['0177.0.0.1', /not an IP address/],
      ['127.000.000.001', /not an IP address/],
      ['127.1', /not an IP address/],
      ['127.0.0.1.', /not an IP address/],
      ['1.2.3.256', /not an IP address/],
      [' 127.0.0.1', /not an IP address/],
      ['fe80::1%eth0', /zone id/],
      ['[fe80::1%25eth0]', /zone id/],
      ['::ffff:0177.0.0.1', /not an IPv6 address|dotted-decimal/],
      ['::ffff:127.1', /not an IPv6 address|dotted-decimal/],
      ['1:2:3:4:5:6:7:8:9', /not an IPv6 address/],
      ['::g', /not an IPv6 address/],
      ['[127.0.0.1', /not an IP address/],
      ['', /not an IP address/],
    ];
    for (const [input, problem] of table) {
      const p = parseAddress(input);
      expect(p.ok, input).toBe(false);
      if (!p.ok) expect(p.problem, input).toMatch(problem);
    }
  });

  it('every "same" spelling of an address is that address; every disguised or zoned one is refused', () => {
    for (const addr of ['127.0.0.1', '192.0.2.2', '10.0.2.2', '169.254.169.254', '::1', 'fd00::2', 'fe80::fc:ff:fe00:1', '2001:db8:1::5']) {
      const canonical = canonicalAddress(addr)!.text;
      for (const s of spellings(addr)) {
        const p = parseAddress(s.host);
        if (s.kind === 'canonical' || s.kind === 'same') expect(p.ok && p.value.text, `${s.host} (${addr})`).toBe(canonical);
        else if (s.kind === 'routed') expect(p.ok && p.value.family, s.host).toBe(6);
        else expect(p.ok, s.host).toBe(false);
      }
    }
  });
});

describe('parseRange', () => {
  it('reads ADDRESS/BITS with zero host bits; mapped IPv6 ranges are IPv4 ranges', () => {
    expect(parseRange('192.168.1.0/24')).toMatchObject({ ok: true, value: { text: '192.168.1.0/24', bits: 24 } });
    expect(parseRange('[2001:DB8::]/32')).toMatchObject({ ok: true, value: { text: '2001:db8::/32' } });
    expect(parseRange('::ffff:192.168.1.0/120')).toMatchObject({ ok: true, value: { text: '192.168.1.0/24' } });
    expect(parseRange('0.0.0.0/0')).toMatchObject({ ok: true, value: { text: '0.0.0.0/0' } });
    expect(parseRange('192.168.1.5/24')).toEqual({ ok: false, problem: expect.stringMatching(/host bits set; the network is 192\.168\.1\.0\/24/) });
    expect(parseRange('10.0.0.0/33')).toEqual({ ok: false, problem: expect.stringMatching(/at most \/32/) });
    expect(parseRange('::ffff:10.0.0.0/64')).toEqual({ ok: false, problem: expect.stringMatching(/mixes/) });
    expect(parseRange('010.0.0.0/8').ok).toBe(false);
    expect(parseRange('10.0.0.0').ok).toBe(false);
  });

  it('matches by value, never by family confusion', () => {
    const lan = range('192.168.0.0/16');
    expect(inRange(canonicalAddress('[::ffff:c0a8:101]')!, lan)).toBe(true);
    expect(inRange(canonicalAddress('192.169.0.1')!, lan)).toBe(false);
    expect(inRange(canonicalAddress('::c0a8:101')!, lan)).toBe(true);
    expect(inRange(canonicalAddress('fd00::c0a8:101')!, lan)).toBe(false);
    // the literal table row ::ffff:0:0/96 stays IPv6 and no canonical address falls in it
    expect(inRange(canonicalAddress('::ffff:1.2.3.4')!, range('::ffff:0:0/96'))).toBe(false);
    expect(() => range('10.0.0.1/8')).toThrow(/host bits/);
  });
});

describe('endsInNumber', () => {
  it('is the WHATWG "ends in a number" test', () => {
    for (const n of ['0x7f.1', '017700000001', '127.1', '1.2.3.4', 'foo.123', 'foo.0x', 'foo.0X1f.', '2130706433']) expect(endsInNumber(n), n).toBe(true);
    for (const n of ['example.com', '1e100.net', '123.com', 'x.0x1g', 'com']) expect(endsInNumber(n), n).toBe(false);
  });
});
