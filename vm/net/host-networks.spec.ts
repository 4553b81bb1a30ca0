import type os from 'node:os';
import { describe, expect, it } from 'vitest';
import { canonicalAddress } from './address.ts';
import { hostNetworks, isOwnAddress, matchHost } from './host-networks.ts';

const v4 = (address: string, netmask: string, cidr: string | null, internal = false): os.NetworkInterfaceInfo => ({ address, netmask, family: 'IPv4', mac: '00:00:00:00:00:00', internal, cidr });
const v6 = (address: string, netmask: string, cidr: string | null, scopeid = 0): os.NetworkInterfaceInfo => ({ address, netmask, family: 'IPv6', mac: '00:00:00:00:00:00', internal: false, cidr, scopeid });

/** A laptop on a home network with global IPv6 (SLAAC + privacy address), docker and a VPN. */
const FAKE_INTERFACES: NodeJS.Dict<os.NetworkInterfaceInfo[]> = {
  lo: [v4('127.0.0.1', '255.0.0.0', '127.0.0.1/8', true), v6('::1', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', '::1/128')],
  wlan0: [
    v4('192.168.1.23', '255.255.255.0', '192.168.1.23/24'),
    v6('2a02:8071:5e1:9a00:1c2d:3e4f:5a6b:7c8d', 'ffff:ffff:ffff:ffff::', '2a02:8071:5e1:9a00:1c2d:3e4f:5a6b:7c8d/64'),
    v6('2a02:8071:5e1:9a00::17', 'ffff:ffff:ffff:ffff::', null),
    v6('fe80::1c2d:3e4f:5a6b:7c8d', 'ffff:ffff:ffff:ffff::', 'fe80::1c2d:3e4f:5a6b:7c8d/64', 3),
  ],
  docker0: [v4('172.17.0.1', '255.255.0.0', '172.17.0.1/16')],
  wg0: [v4('100.101.102.103', '255.255.255.255', '100.101.102.103/32')],
  odd: [v4('not-an-address', '255.255.255.0', null)],
};

describe('hostNetworks', () => {
  const nets = hostNetworks(FAKE_INTERFACES);

  it('reads every interface address with its on-link prefix (from cidr, else the netmask)', () => {
    expect(nets.map((n) => [n.iface, n.address.text, n.onLink.text])).toEqual([
      ['lo', '127.0.0.1', '127.0.0.0/8'],
      ['lo', '::1', '::1/128'],
      ['wlan0', '192.168.1.23', '192.168.1.0/24'],
      ['wlan0', '2a02:8071:5e1:9a00:1c2d:3e4f:5a6b:7c8d', '2a02:8071:5e1:9a00::/64'],
      ['wlan0', '2a02:8071:5e1:9a00::17', '2a02:8071:5e1:9a00::/64'],
      ['wlan0', 'fe80::1c2d:3e4f:5a6b:7c8d', 'fe80::/64'],
      ['docker0', '172.17.0.1', '172.17.0.0/16'],
      ['wg0', '100.101.102.103', '100.101.102.103/32'],
    ]);
  });

  it("finds this computer's addresses in any spelling, and its global IPv6 neighbours", () => {
    const own = (s: string) => matchHost(nets, canonicalAddress(s)!);
    expect(own('[::ffff:192.168.1.23]')).toMatchObject({ kind: 'own', net: { iface: 'wlan0' } });
    expect(own('2A02:8071:05E1:9A00:0000:0000:0000:0017')).toMatchObject({ kind: 'own' });
    expect(own('2a02:8071:5e1:9a00::1')).toMatchObject({ kind: 'on-link', net: { onLink: { text: '2a02:8071:5e1:9a00::/64' } } });
    expect(own('2a02:8071:5e1:9a00:ffff:ffff:ffff:ffff')).toMatchObject({ kind: 'on-link' });
    expect(own('192.168.1.1')).toMatchObject({ kind: 'on-link', net: { iface: 'wlan0' } });
    expect(own('172.17.0.2')).toMatchObject({ kind: 'on-link', net: { iface: 'docker0' } });
    expect(own('127.8.8.8')).toMatchObject({ kind: 'on-link', net: { iface: 'lo' } });
    expect(own('2a02:8071:5e1:9a01::1')).toBeNull();
    expect(own('192.168.2.1')).toBeNull();
    expect(own('100.101.102.104')).toBeNull();
    expect(isOwnAddress(nets, canonicalAddress('100.101.102.103')!)).toBe(true);
    expect(isOwnAddress(nets, canonicalAddress('192.168.1.1')!)).toBe(false);
  });

  it('reads the real interfaces of this machine', () => {
    const real = hostNetworks();
    expect(real.some((n) => n.address.text === '127.0.0.1')).toBe(true);
  });
});
