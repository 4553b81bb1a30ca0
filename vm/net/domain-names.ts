/**
 * Host names a sprite may ask for, and the ones refused by name before any lookup. A name's
 * answer comes from whoever serves its zone; for the special-use names below that is this
 * computer or its network (its hosts file, mDNS on the link, the home router), never the
 * internet, so no query for one leaves and no answer for one is believed:
 *   localhost, *.localhost — this computer (RFC 6761 §6.3);
 *   *.local                — multicast DNS on the link (RFC 6762);
 *   *.home.arpa            — the home network (RFC 8375);
 *   *.internal             — reserved by ICANN for private networks (2024), the cloud VPC's names;
 *   *.lan, *.home, *.corp, *.private, *.intranet — names RFC 6762 Appendix G lists as used on
 *                            private networks; none is delegated in the root, so refusing them
 *                            costs no public name and stops the LAN's resolver answering;
 *   *.localdomain          — the usual hosts-file domain of this computer;
 *   *.invalid              — never resolves (RFC 6761 §6.4); refused without asking;
 *   *.onion, *.alt         — not DNS (RFC 7686, RFC 9476);
 *   *.arpa                 — infrastructure (reverse lookups, home.arpa), no host to connect to.
 * `test` and `example` are not refused: RFC 6761 §6.2 and §6.5 tell applications not to treat
 * them specially, and they resolve like any other name (their answers are still checked).
 * Names that end in a number (`0x7f.1`, `017700000001`) are addresses in disguise (address.ts).
 */
import { endsInNumber } from './address.ts';

export interface SpecialName {
  /** The zone: the name itself or any name under it. */
  zone: string;
  why: string;
}

export const SPECIAL_NAMES: readonly SpecialName[] = [
  { zone: 'localhost', why: "is this computer's own name (RFC 6761)" },
  { zone: 'local', why: 'is a multicast DNS name, answered by machines on the local network (RFC 6762)' },
  { zone: 'home.arpa', why: 'is a home-network name (RFC 8375)' },
  { zone: 'internal', why: 'is a private-network name (.internal is reserved for private use by ICANN)' },
  { zone: 'lan', why: 'is a private-network name (RFC 6762 Appendix G)' },
  { zone: 'home', why: 'is a private-network name (RFC 6762 Appendix G)' },
  { zone: 'corp', why: 'is a private-network name (RFC 6762 Appendix G)' },
  { zone: 'private', why: 'is a private-network name (RFC 6762 Appendix G)' },
  { zone: 'intranet', why: 'is a private-network name (RFC 6762 Appendix G)' },
  { zone: 'localdomain', why: "is this computer's hosts-file domain" },
  { zone: 'invalid', why: 'never resolves (RFC 6761)' },
  { zone: 'onion', why: 'is a Tor name, not DNS (RFC 7686)' },
  { zone: 'alt', why: 'is not a DNS name (RFC 9476)' },
  { zone: 'arpa', why: 'is DNS infrastructure, not a host (RFC 3172)' },
];

const LABEL = /^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$/;

/**
 * A host name in its one spelling (lower case, no final dot), or null when it is not one: LDH
 * labels (underscores tolerated, as resolvers do), at most 253 characters. Addresses are not names.
 */
export function normalizeName(input: string): string | null {
  const name = input.toLowerCase().replace(/\.$/, '');
  if (!name || name.length > 253) return null;
  return name.split('.').every((l) => LABEL.test(l)) ? name : null;
}

/** The special-use zone `name` (normalised) is in, or null. */
export function specialName(name: string): SpecialName | null {
  return SPECIAL_NAMES.find((s) => name === s.zone || name.endsWith(`.${s.zone}`)) ?? null;
}

/**
 * Why `name` (normalised) must not be looked up at all, or null: a special-use name, a name that
 * is an address in disguise, or a single label (answered by search domains, LLMNR or the hosts
 * file — this computer and its network — since no public host has a one-label name).
 */
export function nameProblem(name: string): string | null {
  if (endsInNumber(name)) return `${name} is not a host name and not an IPv4 address in a.b.c.d form (a resolver would read it as a number)`;
  const special = specialName(name);
  if (special) return `${name} ${special.why}`;
  if (!name.includes('.')) return `${name} is a single-label name, which only this computer or its local network can answer`;
  return null;
}
