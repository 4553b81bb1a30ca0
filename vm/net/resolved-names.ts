/**
 * Which names a sprite resolved through the daemon, by address. A transparent TCP connection
 * arrives with an address only; `allow=github.com` must still let `ssh git@github.com` out, so the
 * connection is decided as "the guest asked for github.com" when the daemon's DNS answered
 * github.com with that address, to this sprite, recently. Only answers the daemon itself gave are
 * recorded (the guest cannot claim a name), and a connection to an address no name led to is an
 * address-only request.
 *
 * Entries live for the TTL the guest was given plus a grace period: programs keep addresses past
 * their TTL (a process resolves at start and reconnects later; connection pools, Java's 30 s
 * cache), and the grace costs little — the address was the allowed name's own answer a few minutes
 * ago, and every connection is still decided on its address (internet checks) when it is made.
 * Bounded per sprite (a few MiB at worst): at most MAX_ADDRESSES addresses (the least recently
 * answered goes first) and MAX_NAMES_PER_ADDRESS names per address (CDNs put many names on one
 * address). Sans-IO: the caller passes the time.
 */
import { canonicalAddress } from './address.ts';

export const GRACE_MS = 15 * 60_000;
export const MAX_ADDRESSES = 2048;
export const MAX_NAMES_PER_ADDRESS = 8;

interface Entry {
  /** Names, most recently answered last, with when each stops counting. */
  names: Map<string, number>;
}

export class ResolvedNames {
  /** Canonical address text → names; Map order is the order of last answer (oldest first). */
  private readonly byAddress = new Map<string, Entry>();

  constructor(
    private readonly limits: { maxAddresses?: number; maxNamesPerAddress?: number; graceMs?: number } = {},
  ) {}

  /** The daemon answered `name` (normalised) with `addresses`, to be used for `ttlSeconds`. */
  record(name: string, addresses: readonly string[], ttlSeconds: number, now: number): void {
    const until = now + Math.max(0, ttlSeconds) * 1000 + (this.limits.graceMs ?? GRACE_MS);
    const maxNames = this.limits.maxNamesPerAddress ?? MAX_NAMES_PER_ADDRESS;
    for (const raw of addresses) {
      const a = canonicalAddress(raw);
      if (!a) continue;
      const key = a.text;
      const entry = this.byAddress.get(key) ?? { names: new Map<string, number>() };
      this.byAddress.delete(key);
      entry.names.delete(name);
      entry.names.set(name, until);
      while (entry.names.size > maxNames) entry.names.delete(entry.names.keys().next().value!);
      this.byAddress.set(key, entry);
    }
    const max = this.limits.maxAddresses ?? MAX_ADDRESSES;
    while (this.byAddress.size > max) this.byAddress.delete(this.byAddress.keys().next().value!);
  }

  /** The names that led to `address` and still count, most recently answered first. */
  namesFor(address: string, now: number): string[] {
    const a = canonicalAddress(address);
    const entry = a && this.byAddress.get(a.text);
    if (!entry) return [];
    const out: string[] = [];
    for (const [name, until] of entry.names) {
      if (until > now) out.unshift(name);
      else entry.names.delete(name);
    }
    if (entry.names.size === 0) this.byAddress.delete(a.text);
    return out;
  }

  /** Drops what no longer counts (call now and then; lookups prune what they touch anyway). */
  prune(now: number): void {
    for (const [key, entry] of this.byAddress) {
      for (const [name, until] of entry.names) if (until <= now) entry.names.delete(name);
      if (entry.names.size === 0) this.byAddress.delete(key);
    }
  }

  get size(): number {
    return this.byAddress.size;
  }
}
