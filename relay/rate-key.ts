/**
 * Which rate-limit bucket a client address falls in. An IPv4 address is one bucket; an IPv6 address
 * counts by its /64, because one subscriber usually gets a whole /64 (or more) and can pick a fresh
 * address from it for every request — per-address buckets would not limit anyone. An IPv4-mapped IPv6
 * address (`::ffff:192.0.2.1`, what a dual-stack socket reports for IPv4 peers) is its IPv4 address.
 */
import ipaddr from 'ipaddr.js';

/** The bucket key for `address` (a socket's peer, or the trusted proxy's X-Forwarded-For entry). */
export function rateKey(address: string): string {
  const text = unwrap(address.trim());
  if (!ipaddr.isValid(text)) return `other:${text.slice(0, 64)}`;
  const ip = ipaddr.process(text);
  if (ip.kind() === 'ipv4') return ip.toString();
  const parts = (ip as ipaddr.IPv6).parts.slice(0, 4).map((part) => part.toString(16));
  return `${parts.join(':')}::/64`;
}

/** `[v6]:port`, `[v6]` and `v4:port` (how some proxies write X-Forwarded-For) → the address. */
function unwrap(text: string): string {
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(text);
  if (bracketed) return bracketed[1];
  const v4WithPort = /^(\d{1,3}(?:\.\d{1,3}){3}):\d+$/.exec(text);
  return v4WithPort ? v4WithPort[1] : text;
}
