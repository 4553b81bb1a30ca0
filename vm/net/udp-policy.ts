/**
 * What happens to a UDP datagram a guest sends: DNS is answered by the daemon (dns-responder.ts),
 * everything else is refused and goes into the refusal log. Carrying UDP would mean a datagram
 * relay per flow with its own timeouts and a policy on every packet; what a sprite needs UDP for is
 * DNS, and QUIC (HTTP/3), the one other common use, falls back to TCP by design when UDP fails.
 *
 * DNS is any datagram to port 53, whatever address the guest wrote: the guest's resolver is the
 * daemon, and a program with a resolver of its own (8.8.8.8 in a container's config) gets the same
 * answers under the same policy instead of a timeout. Nothing reaches that address.
 */
import { canonicalAddress } from './address.ts';
import { isNotUnicast } from './ip-ranges.ts';
import type { Refusal } from './refusal-log.ts';

export const DNS_PORT = 53;

export type UdpDecision = { kind: 'dns' } | { kind: 'refused'; refusal: Refusal };

/** Well-known UDP services, for a refusal the person can recognise. */
const KNOWN: Record<number, string> = {
  123: 'NTP',
  5353: 'multicast DNS',
  1900: 'SSDP',
  67: 'DHCP',
  68: 'DHCP',
  137: 'NetBIOS',
  138: 'NetBIOS',
  500: 'IPsec',
  4500: 'IPsec',
  51820: 'WireGuard',
  1194: 'OpenVPN',
  3478: 'STUN/TURN',
};

export const UDP_REASON = 'UDP other than DNS is not carried; QUIC falls back to TCP';

/** Decides one guest datagram by its destination (the address as the guest wrote it, and port). */
export function decideUdp(destination: { address: string; port: number }): UdpDecision {
  const a = canonicalAddress(destination.address);
  const port = destination.port;
  const address = a?.text ?? null;
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    return { kind: 'refused', refusal: { protocol: 'udp', name: null, address, port: null, reason: `port ${port} is not a port (1-65535)` } };
  }
  if (!a) return { kind: 'refused', refusal: { protocol: 'udp', name: null, address: null, port, reason: `"${destination.address}" is not an IP address` } };
  if (isNotUnicast(a)) {
    const what = KNOWN[port] ? ` (${KNOWN[port]})` : '';
    return { kind: 'refused', refusal: { protocol: 'udp', name: null, address, port, reason: `${a.text} is a multicast or broadcast address${what}; ${UDP_REASON}` } };
  }
  if (port === DNS_PORT) return { kind: 'dns' };
  const what = KNOWN[port] ? ` (port ${port} is ${KNOWN[port]})` : '';
  return { kind: 'refused', refusal: { protocol: 'udp', name: null, address, port, reason: `${UDP_REASON}${what}` } };
}
