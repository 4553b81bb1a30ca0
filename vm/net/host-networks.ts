/**
 * This computer's own addresses and the networks it sits on, as parsed addresses and prefixes.
 * `internet` excludes more than the private ranges: a LAN with global IPv6 addresses is made of
 * public addresses, and the only thing that marks them as the LAN is that they share a prefix with
 * one of this computer's interfaces. So every interface's on-link prefix (IPv4 and IPv6, from
 * os.networkInterfaces()) is closed to `internet`, and every interface address is "this computer".
 * Read again for every decision: interfaces come and go (Wi-Fi, VPN, docker), and a stale list
 * would let a new network through.
 */
import os from 'node:os';
import { canonicalAddress, inRange, networkOf, sameAddress, type Address, type Range } from './address.ts';

export interface HostNetwork {
  iface: string;
  /** The interface's own address. */
  address: Address;
  /** The on-link prefix it sits in (a /32 or /128 when the netmask is unknown). */
  onLink: Range;
}

export type HostMatch = { kind: 'own'; net: HostNetwork } | { kind: 'on-link'; net: HostNetwork };

type Interfaces = NodeJS.Dict<os.NetworkInterfaceInfo[]>;

/** Parses os.networkInterfaces()-shaped data; addresses it cannot read are skipped, never guessed. */
export function hostNetworks(interfaces: Interfaces = os.networkInterfaces()): HostNetwork[] {
  const out: HostNetwork[] = [];
  for (const [iface, list] of Object.entries(interfaces)) {
    for (const info of list ?? []) {
      const address = canonicalAddress(info.address.split('%')[0]);
      if (!address) continue;
      let bits = prefixLength(info);
      const max = address.family === 4 ? 32 : 128;
      // an IPv4-mapped interface address (rare) was canonicalised to IPv4; its prefix was IPv6's
      if (info.family === 'IPv6' && address.family === 4) bits = bits === null ? null : Math.max(0, bits - 96);
      if (bits === null || bits > max) bits = max;
      const base = networkOf(address, bits);
      out.push({ iface, address, onLink: { base, bits, text: `${base.text}/${bits}` } });
    }
  }
  return out;
}

function prefixLength(info: os.NetworkInterfaceInfo): number | null {
  const fromCidr = info.cidr ? Number(info.cidr.split('/')[1]) : NaN;
  if (Number.isInteger(fromCidr)) return fromCidr;
  const mask = canonicalAddress(info.netmask);
  if (!mask) return null;
  const bytes = mask.ip.toByteArray();
  let bits = 0;
  for (const b of bytes) {
    for (let i = 7; i >= 0; i--) {
      if (!((b >> i) & 1)) return bits;
      bits++;
    }
  }
  return bits;
}

/** Whether `a` is one of this computer's addresses, or on the same link as one of its interfaces. */
export function matchHost(nets: readonly HostNetwork[], a: Address): HostMatch | null {
  const own = nets.find((n) => sameAddress(n.address, a));
  if (own) return { kind: 'own', net: own };
  const near = nets.find((n) => inRange(a, n.onLink));
  return near ? { kind: 'on-link', net: near } : null;
}

export function isOwnAddress(nets: readonly HostNetwork[], a: Address): boolean {
  return nets.some((n) => sameAddress(n.address, a));
}
