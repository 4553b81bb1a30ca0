import { describe, expect, it } from 'vitest';
import { rateKey } from './rate-key.ts';

describe('rateKey', () => {
  it.each([
    ['192.0.2.1', '192.0.2.1'],
    ['::ffff:192.0.2.1', '192.0.2.1'],
    ['::FFFF:192.0.2.1', '192.0.2.1'],
    ['::ffff:c000:201', '192.0.2.1'],
    ['192.0.2.1:8443', '192.0.2.1'],
    ['2001:db8:1:2::1', '2001:db8:1:2::/64'],
    ['2001:db8:1:2:ffff:ffff:ffff:ffff', '2001:db8:1:2::/64'],
    ['2001:0DB8:0001:0002:0000:0000:0000:0009', '2001:db8:1:2::/64'],
    ['[2001:db8:1:2::1]', '2001:db8:1:2::/64'],
    ['[2001:db8:1:2::1]:443', '2001:db8:1:2::/64'],
    ['fe80::1%eth0', 'fe80:0:0:0::/64'],
    ['::1', '0:0:0:0::/64'],
    ['', 'other:'],
    ['not an address', 'other:not an address'],
  ])('%j → %j', (address, key) => expect(rateKey(address)).toBe(key));

  it('puts every address of one /64 in one bucket, and the next /64 in another', () => {
    const keys = new Set(['2001:db8:a:b::1', '2001:db8:a:b:1234:5678:9abc:def0', '2001:db8:a:b:ffff::'].map(rateKey));
    expect(keys.size).toBe(1);
    expect(rateKey('2001:db8:a:c::1')).not.toBe(rateKey('2001:db8:a:b::1'));
  });
  it('keeps IPv4 addresses apart, and an IPv4 address apart from IPv6 space that spells it', () => {
    expect(rateKey('192.0.2.1')).not.toBe(rateKey('192.0.2.2'));
    expect(rateKey('::c000:201')).not.toBe(rateKey('192.0.2.1'));
  });
  it('bounds the key of garbage', () => {
    expect(rateKey('x'.repeat(1000)).length).toBeLessThanOrEqual(70);
  });
});
