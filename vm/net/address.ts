/**
 * IP addresses as values, never as strings. One address has many spellings (`127.0.0.1`,
 * `::ffff:7f00:1`, `0:0:0:0:0:FFFF:127.0.0.1`, `0x7f.1`…), and an egress decision that compares
 * strings is a decision about spelling. Everything here parses strictly into one canonical form:
 *   - IPv4: four decimal parts without leading zeros only (`0x7f.1`, `127.1`, `2130706433` and
 *     `0177.0.0.1` are refused: inet_aton would read them as 127.0.0.1, or octal, and a name that
 *     only a C library reads as an address is not a name either — see `endsInNumber`);
 *   - IPv6: RFC 4291 text (Node's strict parser), no zone id (`%eth0` names an interface of this
 *     computer, never a destination); an embedded dotted quad must be strict IPv4 as above;
 *   - IPv4-mapped (::ffff:0:0/96) and IPv4-compatible (::/96 except :: and ::1) IPv6 addresses are
 *     the IPv4 address they carry: the kernel delivers ::ffff:127.0.0.1 to 127.0.0.1;
 *   - canonical text: dotted quad, or RFC 5952 IPv6 (lower case, longest zero run compressed).
 * ipaddr.js does the arithmetic; it is lenient on input (it reads `0x7f.1`, and reads `::1.2.3.4`
 * as mapped), so nothing reaches it before the strict checks here.
 */
import net from 'node:net';
import ipaddr from 'ipaddr.js';

export interface Address {
  family: 4 | 6;
  ip: ipaddr.IPv4 | ipaddr.IPv6;
  /** Canonical text: `a.b.c.d` or RFC 5952 IPv6, no brackets. */
  text: string;
}

export interface Range {
  /** The network address (host bits zero). */
  base: Address;
  bits: number;
  /** Canonical text: `a.b.c.d/n` or `x::/n`. */
  text: string;
}

export type Parsed<T> = { ok: true; value: T } | { ok: false; problem: string };

const OCTET = '(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])';
const STRICT_IPV4 = new RegExp(`^${OCTET}(\\.${OCTET}){3}$`);

function fromIPv4(ip: ipaddr.IPv4): Address {
  return { family: 4, ip, text: ip.toString() };
}

function fromIPv6(ip: ipaddr.IPv6): Address {
  const p = ip.parts;
  const upperZero = p.slice(0, 5).every((x) => x === 0);
  // ::ffff:a.b.c.d (mapped) and ::a.b.c.d (compatible, deprecated) carry an IPv4 address
  if (upperZero && (p[5] === 0xffff || (p[5] === 0 && (p[6] !== 0 || p[7] > 1)))) {
    return fromIPv4(new ipaddr.IPv4([p[6] >> 8, p[6] & 0xff, p[7] >> 8, p[7] & 0xff]));
  }
  return { family: 6, ip: new ipaddr.IPv6(p.slice()), text: ip.toRFC5952String() };
}

/**
 * Parses an IP address literal (`[…]` around IPv6 allowed) into its canonical form, or says why
 * it is not one. Never guesses: anything but the strict spellings above is a problem.
 */
export function parseAddress(input: string): Parsed<Address> {
  const text = /^\[.*\]$/s.test(input) ? input.slice(1, -1) : input;
  if (text.includes('%')) return { ok: false, problem: `"${text}" carries a zone id (%…), which names an interface of this computer; zone ids are refused` };
  if (STRICT_IPV4.test(text)) return { ok: true, value: fromIPv4(ipaddr.IPv4.parse(text)) };
  if (text.includes(':')) {
    if (!net.isIPv6(text)) return { ok: false, problem: `"${text}" is not an IPv6 address` };
    let hex = text;
    const dotted = /^(.*:)([^:]*\.[^:]*)$/.exec(text);
    if (dotted) {
      // the embedded IPv4 part must itself be strict; rewrite it as two hex groups for ipaddr.js
      if (!STRICT_IPV4.test(dotted[2])) return { ok: false, problem: `"${text}" embeds "${dotted[2]}", which is not a dotted-decimal IPv4 address` };
      const o = dotted[2].split('.').map(Number);
      hex = `${dotted[1]}${((o[0] << 8) | o[1]).toString(16)}:${((o[2] << 8) | o[3]).toString(16)}`;
    }
    return { ok: true, value: fromIPv6(ipaddr.IPv6.parse(hex)) };
  }
  return { ok: false, problem: `"${text}" is not an IP address (IPv4 is written a.b.c.d in decimal)` };
}

/** The canonical address, or null. */
export function canonicalAddress(input: string): Address | null {
  const p = parseAddress(input);
  return p.ok ? p.value : null;
}

/**
 * Parses `ADDRESS/BITS` (IPv6 may be bracketed: `[2001:db8::]/32`). Host bits must be zero, so
 * what is written is what is meant. An IPv4-mapped IPv6 range of at least /96 is the IPv4 range.
 */
export function parseRange(input: string): Parsed<Range> {
  const m = /^(.+)\/(\d{1,3})$/s.exec(input);
  if (!m) return { ok: false, problem: `"${input}" is not ADDRESS/BITS` };
  const a = parseAddress(m[1]);
  if (!a.ok) return a;
  let bits = Number(m[2]);
  const wroteV6 = m[1].includes(':');
  if (wroteV6 && a.value.family === 4) {
    if (bits < 96) return { ok: false, problem: `"${input}" mixes IPv4-mapped and other IPv6 addresses; write the IPv4 range` };
    bits -= 96;
  }
  const max = a.value.family === 4 ? 32 : 128;
  if (bits > max) return { ok: false, problem: `"${input}": an IPv${a.value.family} prefix is at most /${max}` };
  const base = networkOf(a.value, bits);
  if (base.text !== a.value.text) return { ok: false, problem: `"${input}" has host bits set; the network is ${formatRange(base, bits)}` };
  return { ok: true, value: { base, bits, text: formatRange(base, bits) } };
}

/**
 * A range from trusted text (the tables in code), taken literally: `::ffff:0:0/96` stays an IPv6
 * range here (no canonical address ever falls in it). Throws on a typo or on host bits.
 */
export function range(text: string): Range {
  const [ip, bits] = ipaddr.parseCIDR(text);
  const base: Address = ip.kind() === 'ipv4' ? fromIPv4(ip as ipaddr.IPv4) : { family: 6, ip, text: (ip as ipaddr.IPv6).toRFC5952String() };
  if (networkOf(base, bits).text !== base.text) throw new Error(`${text} has host bits set`);
  return { base, bits, text: formatRange(base, bits) };
}

/** The network address of `a` with `bits` prefix. */
export function networkOf(a: Address, bits: number): Address {
  const bytes = a.ip.toByteArray();
  for (let i = 0; i < bytes.length; i++) {
    const keep = Math.max(0, Math.min(8, bits - i * 8));
    bytes[i] &= (0xff << (8 - keep)) & 0xff;
  }
  const ip = ipaddr.fromByteArray(bytes);
  return ip.kind() === 'ipv4' ? fromIPv4(ip as ipaddr.IPv4) : { family: 6, ip, text: (ip as ipaddr.IPv6).toRFC5952String() };
}

/** The last address of `r` (all host bits one). */
export function lastAddress(r: Range): Address {
  const bytes = r.base.ip.toByteArray();
  for (let i = 0; i < bytes.length; i++) bytes[i] |= 0xff >> Math.max(0, Math.min(8, r.bits - i * 8));
  const ip = ipaddr.fromByteArray(bytes);
  return ip.kind() === 'ipv4' ? fromIPv4(ip as ipaddr.IPv4) : { family: 6, ip, text: (ip as ipaddr.IPv6).toRFC5952String() };
}

function formatRange(base: Address, bits: number): string {
  return `${base.text}/${bits}`;
}

export function inRange(a: Address, r: Range): boolean {
  return a.family === r.base.family && a.ip.match(r.base.ip, r.bits);
}

/** Whether all of `r` lies inside `outer`. */
export function within(r: Range, outer: Range): boolean {
  return r.bits >= outer.bits && inRange(r.base, outer);
}

export function sameAddress(a: Address, b: Address): boolean {
  return a.family === b.family && a.text === b.text;
}

/** The address as a URL or CONNECT host part: `a.b.c.d` or `[v6]`. */
export function hostPart(a: Address): string {
  return a.family === 6 ? `[${a.text}]` : a.text;
}

/**
 * Whether a host name "ends in a number" (WHATWG URL): its last label is decimal digits or 0x-hex.
 * Such a name is an IPv4 address in some C library's reading (`0x7f.1`, `017700000001`, `127.1`
 * all resolve to 127.0.0.1 through getaddrinfo), never a DNS name (no top-level domain is numeric).
 */
export function endsInNumber(name: string): boolean {
  const labels = name.replace(/\.$/, '').split('.');
  return /^([0-9]+|0x[0-9a-f]*)$/i.test(labels[labels.length - 1]);
}
