/**
 * Which addresses are the public internet. `internet` means globally routable unicast, and that is
 * decided from IANA's two special-purpose address registries (RFC 6890 and updates), copied here
 * row by row, plus the address-space rows that are not unicast at all (IPv4 multicast and class E;
 * IPv6 outside 2000::/3). A registry row whose "Globally Reachable" is False or N/A is closed to
 * `internet`; so are a few rows IANA marks True, each with its reason (anycast services that land
 * on the nearest server — on a home network, the router; NAT64, which reaches any IPv4 address,
 * the LAN's included). The most specific row decides (192.0.0.9/32 inside 192.0.0.0/24).
 * Canonical addresses only (address.ts): an IPv4-mapped IPv6 address never reaches this table as
 * IPv6, so the ::ffff:0:0/96 and ::/96 rows are here for completeness and match nothing.
 */
import { canonicalAddress, inRange, range, within, type Address, type Range } from './address.ts';

export interface SpecialRange {
  range: Range;
  name: string;
  /** Where it is defined. */
  rfc: string;
  /** IANA's "Globally Reachable" column; null where IANA says N/A; undefined for address-space rows. */
  iana?: boolean | null;
  /** Whether `internet` reaches it. */
  publicInternet: boolean;
}

function row(cidr: string, name: string, rfc: string, iana: boolean | null | undefined, publicInternet = iana === true): SpecialRange {
  return { range: range(cidr), name, rfc, iana, publicInternet };
}

/** IPv4: the IPv4 Special-Purpose Address Registry, plus the address-space rows. */
export const IPV4_RANGES: readonly SpecialRange[] = [
  // everything not listed below is ordinary unicast
  row('0.0.0.0/0', 'IPv4 unicast', 'RFC 791', undefined, true),
  // "this network": as a destination, the machine itself
  row('0.0.0.0/8', '"this network"', 'RFC 791 §3.2', false),
  // "this host on this network"
  row('0.0.0.0/32', '"this host on this network"', 'RFC 1122 §3.2.1.3', false),
  // private-use: the LAN
  row('10.0.0.0/8', 'private-use', 'RFC 1918', false),
  // shared address space: carrier-grade NAT, Tailscale; Alibaba Cloud's metadata is 100.100.100.200
  row('100.64.0.0/10', 'shared address space (carrier-grade NAT)', 'RFC 6598', false),
  // loopback: this computer
  row('127.0.0.0/8', 'loopback', 'RFC 1122 §3.2.1.3', false),
  // link-local, where the cloud metadata service lives (169.254.169.254)
  row('169.254.0.0/16', 'link-local', 'RFC 3927', false),
  // private-use: the LAN
  row('172.16.0.0/12', 'private-use', 'RFC 1918', false),
  // IETF protocol assignments
  row('192.0.0.0/24', 'IETF protocol assignments', 'RFC 6890 §2.1', false),
  // IPv4 service continuity prefix (DS-Lite B4/AFTR)
  row('192.0.0.0/29', 'IPv4 service continuity prefix', 'RFC 7335', false),
  // IPv4 dummy address
  row('192.0.0.8/32', 'IPv4 dummy address', 'RFC 7600', false),
  // Port Control Protocol anycast: IANA says globally reachable, but it reaches the nearest PCP
  // server — the home router that maps ports into the LAN
  row('192.0.0.9/32', 'Port Control Protocol anycast', 'RFC 7723', true, false),
  // TURN anycast: the nearest TURN relay, which may be on the LAN
  row('192.0.0.10/32', 'TURN anycast', 'RFC 8155', true, false),
  // NAT64/DNS64 discovery (two addresses)
  row('192.0.0.170/31', 'NAT64/DNS64 discovery', 'RFC 8880, RFC 7050 §2.2', false),
  // documentation (TEST-NET-1)
  row('192.0.2.0/24', 'documentation (TEST-NET-1)', 'RFC 5737', false),
  // AS112-v4: anycast DNS sinks for private reverse zones, public servers
  row('192.31.196.0/24', 'AS112-v4', 'RFC 7535', true),
  // Automatic Multicast Tunneling relays, public
  row('192.52.193.0/24', 'AMT', 'RFC 7450', true),
  // deprecated 6to4 relay anycast
  row('192.88.99.0/24', 'deprecated 6to4 relay anycast', 'RFC 7526', null),
  // 6a44 relay anycast: a relay into IPv6 tunnels, inside the deprecated block; not a destination
  row('192.88.99.2/32', '6a44 relay anycast', 'RFC 6751', true, false),
  // private-use: the LAN
  row('192.168.0.0/16', 'private-use', 'RFC 1918', false),
  // AS112 direct delegation, public
  row('192.175.48.0/24', 'AS112 direct delegation', 'RFC 7534', true),
  // benchmarking (also the "fake IP" range some local proxies answer with)
  row('198.18.0.0/15', 'benchmarking', 'RFC 2544', false),
  // documentation (TEST-NET-2)
  row('198.51.100.0/24', 'documentation (TEST-NET-2)', 'RFC 5737', false),
  // documentation (TEST-NET-3)
  row('203.0.113.0/24', 'documentation (TEST-NET-3)', 'RFC 5737', false),
  // multicast (IPv4 Address Space registry): not a unicast destination
  row('224.0.0.0/4', 'multicast', 'RFC 5771', undefined, false),
  // reserved (class E)
  row('240.0.0.0/4', 'reserved', 'RFC 1112 §4', false),
  // limited broadcast
  row('255.255.255.255/32', 'limited broadcast', 'RFC 8190, RFC 919 §7', false),
];

/** IPv6: the IPv6 Special-Purpose Address Registry, plus the address-space rows. */
export const IPV6_RANGES: readonly SpecialRange[] = [
  // only 2000::/3 is allocated for global unicast; the rest is reserved, ULA, link-local, multicast
  row('::/0', 'outside global unicast (2000::/3)', 'RFC 4291 §2.4', undefined, false),
  // global unicast
  row('2000::/3', 'global unicast', 'RFC 4291 §2.4', undefined, true),
  // unspecified: as a destination, the machine itself
  row('::/128', 'unspecified', 'RFC 4291', false),
  // loopback: this computer
  row('::1/128', 'loopback', 'RFC 4291', false),
  // IPv4-mapped: canonicalised to IPv4 before this table (address.ts), listed for completeness
  row('::ffff:0:0/96', 'IPv4-mapped', 'RFC 4291', false),
  // IPv4-compatible (deprecated): canonicalised to IPv4 too
  row('::/96', 'IPv4-compatible (deprecated)', 'RFC 4291 §2.5.5.1', false),
  // NAT64 well-known prefix: IANA says globally reachable, but a NAT64 gateway turns it into any
  // IPv4 address, the LAN's and its own included; a sprite asks for the IPv4 address instead
  row('64:ff9b::/96', 'NAT64 well-known prefix', 'RFC 6052', true, false),
  // NAT64 local-use prefix
  row('64:ff9b:1::/48', 'NAT64 local-use prefix', 'RFC 8215', false),
  // discard-only
  row('100::/64', 'discard-only', 'RFC 6666', false),
  // dummy IPv6 prefix
  row('100:0:0:1::/64', 'dummy IPv6 prefix', 'RFC 9780', false),
  // IETF protocol assignments
  row('2001::/23', 'IETF protocol assignments', 'RFC 2928', false),
  // Teredo: IPv6 tunnelled over UDP to an IPv4 address that may be anyone's
  row('2001::/32', 'Teredo', 'RFC 4380, RFC 8190', null),
  // Port Control Protocol anycast: the nearest PCP server, the home router
  row('2001:1::1/128', 'Port Control Protocol anycast', 'RFC 7723', true, false),
  // TURN anycast: the nearest TURN relay
  row('2001:1::2/128', 'TURN anycast', 'RFC 8155', true, false),
  // DNS-SD service registration protocol anycast: the nearest SRP server, on the LAN
  row('2001:1::3/128', 'DNS-SD SRP anycast', 'RFC 9665', true, false),
  // benchmarking
  row('2001:2::/48', 'benchmarking', 'RFC 5180, RFC Errata 1752', false),
  // Automatic Multicast Tunneling relays, public
  row('2001:3::/32', 'AMT', 'RFC 7450', true),
  // AS112-v6, public
  row('2001:4:112::/48', 'AS112-v6', 'RFC 7535', true),
  // ORCHID (deprecated)
  row('2001:10::/28', 'ORCHID (deprecated)', 'RFC 4843', null),
  // ORCHIDv2
  row('2001:20::/28', 'ORCHIDv2', 'RFC 7343', true),
  // drone remote ID entity tags
  row('2001:30::/28', 'drone remote ID entity tags', 'RFC 9374', true),
  // documentation
  row('2001:db8::/32', 'documentation', 'RFC 3849', false),
  // 6to4: IPv6 carried to the IPv4 address embedded in it, the LAN's included
  row('2002::/16', '6to4', 'RFC 3056', null),
  // AS112 direct delegation, public
  row('2620:4f:8000::/48', 'AS112 direct delegation', 'RFC 7534', true),
  // documentation
  row('3fff::/20', 'documentation', 'RFC 9637', false),
  // segment routing SIDs
  row('5f00::/16', 'segment routing (SRv6) SIDs', 'RFC 9602', false),
  // unique-local: the LAN's IPv6
  row('fc00::/7', 'unique-local', 'RFC 4193, RFC 8190', false),
  // link-local unicast
  row('fe80::/10', 'link-local', 'RFC 4291', false),
  // site-local (deprecated; IPv6 Address Space registry)
  row('fec0::/10', 'site-local (deprecated)', 'RFC 3879', undefined, false),
  // multicast (IPv6 Address Space registry)
  row('ff00::/8', 'multicast', 'RFC 4291 §2.7', undefined, false),
];

/**
 * Cloud metadata services: credentials of the machine the daemon runs on. Each is also in a
 * closed range above; they are listed so that even an `allow=` range never covers them — only the
 * exact address, written by the user, reaches one.
 */
export const CLOUD_METADATA: readonly Range[] = [
  range('169.254.169.254/32'), // AWS, GCP, Azure, OpenStack, DigitalOcean, Oracle …
  range('169.254.170.2/32'), // AWS ECS task metadata
  range('fd00:ec2::254/128'), // AWS IMDS over IPv6
  range('100.100.100.200/32'), // Alibaba Cloud
  range('192.0.0.192/32'), // Oracle Cloud (classic)
];

/** Loopback and unspecified: this computer by definition, never reached in any mode. */
const THIS_COMPUTER: readonly Range[] = [range('127.0.0.0/8'), range('0.0.0.0/8'), range('::1/128'), range('::/128')];

/** Link-local: the link this computer is on; reached only by an exact address the user wrote. */
const LINK_LOCAL: readonly Range[] = [range('169.254.0.0/16'), range('fe80::/10')];

/** The most specific row that holds `a`. */
export function specialRange(a: Address): SpecialRange {
  let best: SpecialRange | undefined;
  for (const r of a.family === 4 ? IPV4_RANGES : IPV6_RANGES) {
    if (inRange(a, r.range) && (!best || r.range.bits > best.range.bits)) best = r;
  }
  return best!;
}

/**
 * Loopback or unspecified — also when carried inside a translation address (NAT64 64:ff9b::/96,
 * 6to4, a Teredo client): never reached, in any mode, however it is written.
 */
export function isThisComputerByDefinition(a: Address): boolean {
  const inner = embeddedIPv4(a);
  return THIS_COMPUTER.some((r) => inRange(a, r) || (inner !== null && inRange(inner, r)));
}

/** IPv6 addresses that a gateway turns into an IPv4 address (or a tunnel to one). */
const TRANSLATION: readonly Range[] = [range('64:ff9b::/96'), range('64:ff9b:1::/48'), range('2002::/16'), range('2001::/32')];

export function isTranslation(a: Address): boolean {
  return TRANSLATION.some((r) => inRange(a, r));
}

/** The IPv4 address a NAT64 (well-known prefix), 6to4 or Teredo (client) address carries, or null. */
export function embeddedIPv4(a: Address): Address | null {
  if (a.family !== 6) return null;
  const p = (a.ip as { parts: number[] }).parts;
  let hi: number;
  let lo: number;
  if (inRange(a, TRANSLATION[0])) [hi, lo] = [p[6], p[7]];
  else if (inRange(a, TRANSLATION[2])) [hi, lo] = [p[1], p[2]];
  else if (inRange(a, TRANSLATION[3])) [hi, lo] = [p[6] ^ 0xffff, p[7] ^ 0xffff];
  else return null;
  return canonicalAddress(`${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`);
}

/** Whether every address of `r` is loopback or unspecified. */
export function isThisComputerRange(r: Range): boolean {
  return THIS_COMPUTER.some((t) => within(r, t));
}

export function isLinkLocal(a: Address): boolean {
  return LINK_LOCAL.some((r) => inRange(a, r));
}

export function isCloudMetadata(a: Address): boolean {
  return CLOUD_METADATA.some((r) => inRange(a, r));
}

/** Multicast and broadcast: never a unicast destination, whoever names them. */
const NOT_UNICAST: readonly Range[] = [range('224.0.0.0/4'), range('255.255.255.255/32'), range('ff00::/8')];

export function isNotUnicast(a: Address): boolean {
  return NOT_UNICAST.some((r) => inRange(a, r));
}
