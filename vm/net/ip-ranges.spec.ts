import ipaddr from 'ipaddr.js';
import { describe, expect, it } from 'vitest';
import { canonicalAddress, inRange, within, type Address, type Range } from './address.ts';
import { embeddedIPv4, IPV4_RANGES, IPV6_RANGES, isCloudMetadata, isThisComputerByDefinition, isTranslation, specialRange, type SpecialRange } from './ip-ranges.ts';

/** Addresses of `r` to probe: first, last, second, middle. */
function probes(r: Range): Address[] {
  const first = r.base.ip.toByteArray();
  const last = first.slice();
  for (let i = 0; i < last.length; i++) last[i] |= 0xff >> Math.max(0, Math.min(8, r.bits - i * 8));
  const second = first.slice();
  if (r.bits < first.length * 8) second[second.length - 1] |= 1;
  const middle = first.slice();
  const flip = r.bits + 1;
  if (flip < first.length * 8) middle[Math.floor(flip / 8)] |= 0x80 >> flip % 8;
  return [first, last, second, middle].map((b) => {
    const ip = ipaddr.fromByteArray(b);
    return { family: ip.kind() === 'ipv4' ? 4 : 6, ip, text: ip.kind() === 'ipv4' ? ip.toString() : (ip as ipaddr.IPv6).toRFC5952String() } as Address;
  });
}

/** A probe address that belongs to `row` and to no more specific row of `table`. */
function ownProbe(row: SpecialRange, table: readonly SpecialRange[]): Address | undefined {
  return probes(row.range).find((a) => !table.some((o) => o !== row && within(o.range, row.range) && o.range.bits > row.range.bits && inRange(a, o.range)));
}

describe('the special-purpose tables', () => {
  for (const [family, table] of [['IPv4', IPV4_RANGES], ['IPv6', IPV6_RANGES]] as const) {
    it(`${family}: every row decides its own addresses, in both directions`, () => {
      let open = 0;
      let closed = 0;
      for (const row of table) {
        if (row.range.text === '::ffff:0:0/96' || row.range.text === '::/96') continue; // canonicalised to IPv4, below
        const a = ownProbe(row, table);
        expect(a, row.range.text).toBeDefined();
        expect(specialRange(a!), `${a!.text} in ${row.range.text}`).toBe(row);
        if (row.publicInternet) open++;
        else closed++;
        // IANA's column is followed, except where a row says why not
        if (row.iana === false || row.iana === null) expect(row.publicInternet, row.range.text).toBe(false);
      }
      expect(open).toBeGreaterThan(1);
      expect(closed).toBeGreaterThan(10);
    });
  }

  it('IANA "globally reachable" rows that stay closed are anycast-to-the-nearest or translation prefixes', () => {
    const overridden = [...IPV4_RANGES, ...IPV6_RANGES].filter((r) => r.iana === true && !r.publicInternet).map((r) => r.range.text);
    expect(overridden.sort()).toEqual(['192.0.0.10/32', '192.0.0.9/32', '192.88.99.2/32', '2001:1::1/128', '2001:1::2/128', '2001:1::3/128', '64:ff9b::/96'].sort());
  });

  it('known facts, both directions', () => {
    const table: Array<[string, boolean]> = [
      ['8.8.8.8', true], ['1.1.1.1', true], ['93.184.215.14', true], ['192.31.196.1', true], ['192.52.193.1', true], ['192.175.48.6', true],
      ['11.0.0.1', true], ['100.63.255.255', true], ['100.128.0.0', true], ['172.15.255.255', true], ['172.32.0.0', true], ['192.0.1.255', true], ['192.169.0.0', true], ['198.17.255.255', true], ['198.20.0.0', true], ['223.255.255.255', true],
      ['0.0.0.0', false], ['0.1.2.3', false], ['10.1.2.3', false], ['100.64.0.1', false], ['127.0.0.1', false], ['127.255.255.254', false], ['169.254.169.254', false], ['172.16.0.1', false], ['172.31.255.255', false],
      ['192.0.0.1', false], ['192.0.0.9', false], ['192.0.0.10', false], ['192.0.0.170', false], ['192.0.0.171', false], ['192.0.0.255', false], ['192.0.2.2', false], ['192.88.99.1', false], ['192.88.99.2', false], ['192.168.1.1', false],
      ['198.18.0.1', false], ['198.19.255.255', false], ['198.51.100.7', false], ['203.0.113.80', false], ['224.0.0.1', false], ['239.255.255.250', false], ['240.0.0.1', false], ['255.255.255.255', false],
      ['2606:4700:4700::1111', true], ['2001:4860:4860::8888', true], ['2a00:1450::1', true], ['2001:3::1', true], ['2001:4:112::1', true], ['2001:20::1', true], ['2001:30::1', true], ['2620:4f:8000::1', true], ['3ffe::1', true],
      ['::', false], ['::1', false], ['64:ff9b::808:808', false], ['64:ff9b:1::1', false], ['100::1', false], ['100:0:0:1::1', false], ['2001::1', false], ['2001:0:4136:e378::1', false], ['2001:1::1', false], ['2001:1::3', false], ['2001:2::1', false],
      ['2001:10::1', false], ['2001:db8::1', false], ['2002:c0a8:101::1', false], ['3fff::1', false], ['3fff:fff::1', false], ['5f00::1', false], ['fc00::1', false], ['fd00::2', false], ['fe80::1', false], ['fec0::1', false], ['ff02::1', false], ['ff0e::1', false],
      ['1::1', false], ['4000::1', false], ['e000::1', false],
    ];
    for (const [text, open] of table) expect(specialRange(canonicalAddress(text)!).publicInternet, text).toBe(open);
  });

  it('IPv4-mapped and -compatible IPv6 are decided as the IPv4 address, NAT64 as itself', () => {
    expect(specialRange(canonicalAddress('::ffff:8.8.8.8')!).publicInternet).toBe(true);
    expect(specialRange(canonicalAddress('::ffff:10.0.0.1')!).name).toBe('private-use');
    expect(specialRange(canonicalAddress('::a00:1')!).name).toBe('private-use');
    expect(specialRange(canonicalAddress('64:ff9b::8.8.8.8')!).name).toBe('NAT64 well-known prefix');
  });

  it('cloud metadata addresses are known, including over IPv6 and mapped', () => {
    for (const m of ['169.254.169.254', '[::ffff:a9fe:a9fe]', 'fd00:ec2::254', '100.100.100.200', '169.254.170.2']) expect(isCloudMetadata(canonicalAddress(m)!), m).toBe(true);
    expect(isCloudMetadata(canonicalAddress('169.254.169.253')!)).toBe(false);
  });
});

describe('translation addresses', () => {
  it('carry an IPv4 address that decides "this computer" too', () => {
    const table: Array<[string, string | null]> = [
      ['64:ff9b::7f00:1', '127.0.0.1'],
      ['64:ff9b::c0a8:101', '192.168.1.1'],
      ['2002:7f00:1::1', '127.0.0.1'],
      ['2001:0:4136:e378:8000:63bf:80ff:fffe', '127.0.0.1'], // Teredo: the client address is inverted
      ['2606:4700::1', null],
      ['64:ff9b:1::1', null],
    ];
    for (const [a, inner] of table) expect(embeddedIPv4(canonicalAddress(a)!)?.text ?? null, a).toBe(inner);
    for (const a of ['64:ff9b::7f00:1', '2002:7f00:1::1', '2002::1', '2001:0:4136:e378:8000:63bf:ffff:ffff', '127.0.0.2', '::', '::1']) expect(isThisComputerByDefinition(canonicalAddress(a)!), a).toBe(true);
    for (const a of ['64:ff9b::808:808', '2002:c0a8:101::1', '8.8.8.8', 'fe80::1']) expect(isThisComputerByDefinition(canonicalAddress(a)!), a).toBe(false);
    for (const a of ['64:ff9b::808:808', '64:ff9b:1::1', '2002:c0a8:101::1', '2001::1']) expect(isTranslation(canonicalAddress(a)!), a).toBe(true);
  });
});
