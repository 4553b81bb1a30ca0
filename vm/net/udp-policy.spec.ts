import { describe, expect, it } from 'vitest';
import { decideUdp, UDP_REASON } from './udp-policy.ts';

describe('decideUdp', () => {
  it('DNS to any unicast address is answered by the daemon', () => {
    for (const address of ['10.0.2.3', '8.8.8.8', '2001:4860:4860::8888', '::ffff:1.1.1.1', '127.0.0.53']) expect(decideUdp({ address, port: 53 }), address).toEqual({ kind: 'dns' });
  });

  it('everything else is refused with the reason, QUIC included', () => {
    expect(decideUdp({ address: '142.250.1.1', port: 443 })).toEqual({ kind: 'refused', refusal: { protocol: 'udp', name: null, address: '142.250.1.1', port: 443, reason: UDP_REASON } });
    expect(UDP_REASON).toBe('UDP other than DNS is not carried; QUIC falls back to TCP');
    expect(decideUdp({ address: '::FFFF:192.0.2.1', port: 123 })).toMatchObject({ kind: 'refused', refusal: { address: '192.0.2.1', reason: `${UDP_REASON} (port 123 is NTP)` } });
    expect(decideUdp({ address: '203.0.113.9', port: 51820 })).toMatchObject({ refusal: { reason: expect.stringMatching(/WireGuard/) } });
    expect(decideUdp({ address: '203.0.113.9', port: 9999 })).toMatchObject({ refusal: { reason: UDP_REASON } });
  });

  it('multicast and broadcast are refused, even to port 53', () => {
    expect(decideUdp({ address: '224.0.0.251', port: 5353 })).toMatchObject({ kind: 'refused', refusal: { reason: expect.stringMatching(/^224\.0\.0\.251 is a multicast or broadcast address \(multicast DNS\); UDP other than DNS/) } });
    expect(decideUdp({ address: '255.255.255.255', port: 53 })).toMatchObject({ kind: 'refused' });
    expect(decideUdp({ address: 'ff02::fb', port: 53 })).toMatchObject({ kind: 'refused' });
  });

  it('refuses what is not an address or port', () => {
    expect(decideUdp({ address: 'example.com', port: 53 })).toMatchObject({ kind: 'refused', refusal: { address: null, reason: expect.stringMatching(/not an IP address/) } });
    expect(decideUdp({ address: '192.0.2.1', port: 0 })).toMatchObject({ kind: 'refused', refusal: { port: null, reason: expect.stringMatching(/not a port/) } });
    expect(decideUdp({ address: '192.0.2.1', port: 70000 })).toMatchObject({ kind: 'refused' });
  });
});
