/**
 * A sprite's network policy as the user writes it, and what an agent may write. The policy is the
 * whole of what a sprite may reach (the daemon's egress proxy is its only way out; the decision
 * itself is egress-decision.ts):
 *   internet — globally routable unicast only: never this computer, its networks, the LAN,
 *              link-local (cloud metadata) or any special-purpose range (ip-ranges.ts);
 *   none     — nothing;
 *   allow    — only what is listed:
 *                names (`example.com`, `*.example.com`) — and their addresses must pass the same
 *                  checks as `internet`, so a name never leads into the LAN or to this computer;
 *                IP addresses and ADDRESS/BITS ranges — the user's way to reach the LAN: a listed
 *                  range covers private addresses in it; this computer's own addresses, link-local
 *                  addresses and cloud metadata only when the exact address is listed; loopback
 *                  never (refused here already).
 * Only the user (CLI, API) writes addresses and ranges. An agent (MCP) may only narrow: `internet`,
 * `none` or `allow=` of names (agentPolicyProblem).
 */
import { endsInNumber, hostPart, inRange, parseAddress, parseRange, sameAddress, type Address, type Range } from './address.ts';
import { normalizeName, specialName } from './domain-names.ts';
import { isNotUnicast, isThisComputerByDefinition, isThisComputerRange } from './ip-ranges.ts';

export type NetworkMode = 'internet' | 'none' | 'allow';

export interface NetworkPolicy {
  mode: NetworkMode;
  /** For `allow`: host names, `*.domain` wildcards, IP addresses (`[v6]`) or ADDRESS/BITS ranges. */
  allow: string[];
}

export const DEFAULT_NETWORK: NetworkPolicy = { mode: 'internet', allow: [] };

const MAX_ENTRIES = 256;

/** Parses `internet`, `none` or `allow=ENTRY,ENTRY…` (the CLI's and API's spelling). */
export function parseNetworkPolicy(text: string): NetworkPolicy {
  const t = text.trim();
  if (t === 'internet' || t === 'none') return { mode: t, allow: [] };
  const m = /^allow=(.*)$/s.exec(t);
  if (!m) throw new Error(`"${clip(text)}" is not a network policy: use internet, none or allow=HOST[,HOST…]`);
  return { mode: 'allow', allow: normalizeAllowList(m[1].split(',')) };
}

/** Checks and canonicalises allow entries; throws a sentence naming the first bad one. */
export function normalizeAllowList(entries: string[]): string[] {
  const out: string[] = [];
  for (const raw of entries) {
    const e = raw.trim().toLowerCase();
    if (!e) continue;
    const entry = canonicalEntry(e);
    if (!out.includes(entry)) out.push(entry);
  }
  if (out.length === 0) throw new Error('allow= needs at least one host, e.g. allow=mirror.example.org,*.github.com');
  if (out.length > MAX_ENTRIES) throw new Error(`allow= takes at most ${MAX_ENTRIES} hosts`);
  return out;
}

type Entry = { kind: 'name'; name: string } | { kind: 'zone'; zone: string } | { kind: 'address'; address: Address } | { kind: 'range'; range: Range };

/** One entry, read strictly: the user gets a reason for anything that is not clearly one thing. */
function readEntry(entry: string): Entry {
  const e = entry.replace(/^\[([^\]/]*)\/(\d+)\]$/, '[$1]/$2'); // [2001:db8::/32] as [2001:db8::]/32
  const bad = `"${clip(e)}" is not a host name, *.domain, IP address or ADDRESS/BITS range`;
  const slash = e.indexOf('/');
  if (slash >= 0) {
    if (!parseAddress(e.slice(0, slash)).ok) throw new Error(bad);
    const r = parseRange(e);
    if (!r.ok) throw new Error(r.problem);
    return { kind: 'range', range: r.value };
  }
  if (e.startsWith('[') || e.includes(':') || /^[0-9.]+$/.test(e)) {
    const a = parseAddress(e);
    if (!a.ok) throw new Error(a.problem);
    return { kind: 'address', address: a.value };
  }
  const wildcard = e.startsWith('*.');
  const name = normalizeName(wildcard ? e.slice(2) : e);
  if (!name || endsInNumber(name)) throw new Error(bad);
  return wildcard ? { kind: 'zone', zone: name } : { kind: 'name', name };
}

function canonicalEntry(e: string): string {
  const entry = readEntry(e);
  switch (entry.kind) {
    case 'name':
    case 'zone': {
      const name = entry.kind === 'name' ? entry.name : entry.zone;
      const special = specialName(name);
      if (special) throw new Error(`"${e}" ${special.why}; names in allow= reach only public addresses. To reach a machine on your network, list its IP address (allow=192.168.1.20) or range (allow=192.168.1.0/24)`);
      if (entry.kind === 'name' && !name.includes('.')) throw new Error(`"${e}" is a single-label name, which only this computer or its network can answer; list the machine's IP address instead`);
      return entry.kind === 'name' ? name : `*.${name}`;
    }
    case 'address': {
      const a = entry.address;
      if (isThisComputerByDefinition(a)) throw new Error(`"${e}" is this computer's loopback or unspecified address (${a.text}), which sprites never reach`);
      if (isNotUnicast(a)) throw new Error(`"${e}" is a multicast or broadcast address (${a.text}), not something to connect to`);
      return hostPart(a);
    }
    case 'range': {
      const r = entry.range;
      if (isThisComputerRange(r)) throw new Error(`"${e}" is this computer's loopback range, which sprites never reach`);
      return r.base.family === 6 ? `[${r.base.text}]/${r.bits}` : r.text;
    }
  }
}

export function formatNetworkPolicy(p: NetworkPolicy): string {
  return p.mode === 'allow' ? `allow=${p.allow.join(',')}` : p.mode;
}

/** An allow list read for matching. */
export interface AllowList {
  names: string[];
  zones: string[];
  addresses: Address[];
  ranges: Range[];
}

/**
 * Reads stored allow entries for matching. Lenient where parsing is strict: a manifest written by
 * an older version may hold entries today's parser refuses; an unreadable one matches nothing, and
 * a special-use name is kept so the decision can say why it is refused.
 */
export function readAllowList(entries: readonly string[]): AllowList {
  const list: AllowList = { names: [], zones: [], addresses: [], ranges: [] };
  for (const raw of entries) {
    let entry: Entry;
    try {
      entry = readEntry(raw.trim().toLowerCase());
    } catch {
      continue;
    }
    if (entry.kind === 'name') list.names.push(entry.name);
    else if (entry.kind === 'zone') list.zones.push(entry.zone);
    else if (entry.kind === 'address') list.addresses.push(entry.address);
    else list.ranges.push(entry.range);
  }
  return list;
}

/** Whether the normalised `name` is listed: exactly, or under a `*.zone` (not the zone itself). */
export function allowsName(list: AllowList, name: string): boolean {
  return list.names.includes(name) || list.zones.some((z) => name.endsWith(`.${z}`));
}

/** How the list names `a`: the exact address, within a range, or not at all. */
export function allowsAddress(list: AllowList, a: Address): 'exact' | 'range' | null {
  if (list.addresses.some((x) => sameAddress(x, a))) return 'exact';
  if (list.ranges.some((r) => r.bits === (r.base.family === 4 ? 32 : 128) && sameAddress(r.base, a))) return 'exact';
  return list.ranges.some((r) => inRange(a, r)) ? 'range' : null;
}

/**
 * Why an agent (MCP) may not set `text`, or null. Agents are semi-trusted: they may narrow what a
 * sprite reaches (`none`, names in `allow=`, whose addresses get the `internet` checks) or keep
 * the default `internet`, never widen it with an address or range, which is how the user reaches
 * the LAN or this computer.
 */
export function agentPolicyProblem(text: string): string | null {
  let p: NetworkPolicy;
  try {
    p = parseNetworkPolicy(text);
  } catch (err) {
    return (err as Error).message;
  }
  const literal = p.allow.filter((e) => {
    const entry = readEntry(e);
    return entry.kind === 'address' || entry.kind === 'range';
  });
  if (literal.length === 0) return null;
  return `an agent may only narrow a sprite's network: internet, none, or allow= with host names (*.domain included). ${literal.join(', ')} ${literal.length === 1 ? 'is an IP address or range' : 'are IP addresses or ranges'}, which only the user can allow, on the host: spritely net set NAME allow=…`;
}

function clip(s: string): string {
  return s.length > 120 ? `${s.slice(0, 120)}…` : s;
}
