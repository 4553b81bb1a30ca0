/**
 * Every way a guest can write one address, for the tests that prove each spelling decides the
 * same (egress-decision.spec.ts, egress-proxy.spec.ts, test/vm/network.test.ts). Not used by the
 * daemon: it is the catalogue of what the parser must see through, kept beside it.
 *   same      — another text for the same address (IPv4-mapped/compatible IPv6, upper case,
 *               expanded, leading zeros, another zero run compressed);
 *   disguised — what only a C library reads as this IPv4 address (`0x7f.1`, `2130706433`, octal);
 *   zone      — IPv6 with a zone id (an interface of this computer);
 *   routed    — another address that a gateway would turn into this one (NAT64, 6to4).
 * Host parts are as they appear in a CONNECT line or a URL: IPv6 in brackets.
 */
import { canonicalAddress } from './address.ts';

export interface Spelling {
  host: string;
  kind: 'canonical' | 'same' | 'disguised' | 'zone' | 'routed';
}

const hex4 = (n: number) => n.toString(16).padStart(4, '0');

export function spellings(address: string): Spelling[] {
  const a = canonicalAddress(address);
  if (!a) throw new Error(`${address} is not an address`);
  const out: Spelling[] = [];
  const add = (host: string, kind: Spelling['kind']) => out.some((s) => s.host === host) || out.push({ host, kind });
  if (a.family === 4) {
    const o = a.text.split('.').map(Number);
    const hi = (o[0] << 8) | o[1];
    const lo = (o[2] << 8) | o[3];
    const n = ((o[0] << 24) >>> 0) + (o[1] << 16) + (o[2] << 8) + o[3];
    add(a.text, 'canonical');
    for (const h of [
      `::ffff:${a.text}`,
      `::FFFF:${a.text}`,
      `::ffff:${hi.toString(16)}:${lo.toString(16)}`,
      `::FFFF:${hex4(hi).toUpperCase()}:${hex4(lo).toUpperCase()}`,
      `0:0:0:0:0:ffff:${a.text}`,
      `0000:0000:0000:0000:0000:ffff:${hex4(hi)}:${hex4(lo)}`,
      `0::ffff:${a.text}`,
      `::${a.text}`,
      `::${hi.toString(16)}:${lo.toString(16)}`,
    ]) {
      add(`[${h}]`, 'same');
    }
    add(o.map((x) => `0x${x.toString(16)}`).join('.'), 'disguised');
    add(`0x${n.toString(16)}`, 'disguised');
    add(String(n), 'disguised');
    add(`0${n.toString(8)}`, 'disguised');
    add(o.map((x) => `0${x.toString(8)}`).join('.'), 'disguised');
    add(o.map((x) => String(x).padStart(3, '0')).join('.'), 'disguised');
    add(`${o[0]}.${(o[1] << 16) + (o[2] << 8) + o[3]}`, 'disguised');
    add(`${o[0]}.${o[1]}.${lo}`, 'disguised');
    add(`${o[0]}.0x${((o[1] << 16) + (o[2] << 8) + o[3]).toString(16)}`, 'disguised');
    add(`[64:ff9b::${a.text}]`, 'routed');
    add(`[64:ff9b::${hi.toString(16)}:${lo.toString(16)}]`, 'routed');
    add(`[2002:${hi.toString(16)}:${lo.toString(16)}::1]`, 'routed');
    return out;
  }
  const parts = (a.ip as { parts: number[] }).parts;
  add(`[${a.text}]`, 'canonical');
  add(`[${a.text.toUpperCase()}]`, 'same');
  add(`[${parts.map((p) => p.toString(16)).join(':')}]`, 'same');
  add(`[${parts.map(hex4).join(':')}]`, 'same');
  add(`[${parts.map((p) => hex4(p).toUpperCase()).join(':')}]`, 'same');
  // compress a different zero group than RFC 5952 chose, when there is one
  const zero = parts.findIndex((p, i) => p === 0 && parts[i + 1] !== 0);
  if (zero >= 0) add(`[${parts.slice(0, zero).map((p) => p.toString(16)).join(':')}::${parts.slice(zero + 1).map((p) => p.toString(16)).join(':')}]`, 'same');
  add(`[${a.text}%eth0]`, 'zone');
  add(`[${a.text}%1]`, 'zone');
  return out;
}

/** The host part of a URL for `s`: a zone id's % is written %25 there. */
export function urlHost(s: Spelling): string {
  return s.kind === 'zone' ? s.host.replace('%', '%25') : s.host;
}
