/**
 * The one place that decides whether a sprite's connection may leave. Every way out (the HTTP
 * proxy today; transparent TCP and the guest's DNS later) asks here, with what the guest asked for
 * (a name, or an address), the candidate addresses (the name's answers, or that one address), the
 * port, this computer's networks (read now) and the policy; the answer is the one address to
 * connect to, or a refusal with a sentence the person or agent in the guest can act on.
 *
 * Every decision is on parsed, canonical addresses (address.ts): all spellings of one address
 * decide the same. A name's answers are checked all together: one forbidden answer refuses the
 * name (a name that mixes public and private answers is a rebinding trick, and which answer a
 * client would use is not ours to guess). The pick among allowed answers is deterministic: the
 * first IPv4 answer in the resolver's order, else the first IPv6 one (IPv4 first because a host
 * without IPv6 routes is common and one without IPv4 is rare). The caller connects to exactly the
 * address returned, so the answer cannot change between check and connect.
 */
import { hostPart, inRange, parseAddress, type Address, type Range } from './address.ts';
import { nameProblem, normalizeName } from './domain-names.ts';
import { allowsAddress, allowsName, formatNetworkPolicy, readAllowList, type AllowList, type NetworkPolicy } from './egress-policy.ts';
import { matchHost, isOwnAddress, type HostNetwork } from './host-networks.ts';
import { isCloudMetadata, isLinkLocal, isNotUnicast, isThisComputerByDefinition, isTranslation, specialRange } from './ip-ranges.ts';

export interface EgressQuery {
  policy: NetworkPolicy;
  /** The host name the guest asked for, as it wrote it; null when it asked for an address. */
  name: string | null;
  /** The address the guest asked for, or the resolver's answers for `name`, in its order. */
  candidates: readonly string[];
  port: number;
  /** This computer's interfaces (host-networks.ts), read for this decision. */
  host: readonly HostNetwork[];
  /**
   * Special-purpose ranges the user's own network uses for public destinations (a resolver that
   * answers with 198.18.0.0/15 "fake IPs", say). They lift only the special-purpose table: this
   * computer, its networks, link-local and cloud metadata stay closed.
   */
  treatAsPublic?: readonly Range[];
}

export type EgressDecision =
  | { ok: true; address: Address }
  | {
      ok: false;
      /** `invalid`: not a destination at all (400); `refused`: the policy says no (403). */
      kind: 'invalid' | 'refused';
      /** One sentence, no final period. */
      reason: string;
      /** The allow= entry that would let this out, when the user may add one (never loopback). */
      allowEntry?: string;
    };

type Refusal = Extract<EgressDecision, { ok: false }>;

const refuse = (reason: string, allowEntry?: string): Refusal => ({ ok: false, kind: 'refused', reason, ...(allowEntry ? { allowEntry } : {}) });
const invalid = (reason: string): Refusal => ({ ok: false, kind: 'invalid', reason });

export type Target = { kind: 'address'; address: Address } | { kind: 'name'; name: string } | { kind: 'invalid'; problem: string };

/**
 * Reads a guest's host part (`example.com`, `1.2.3.4`, `[::1]`): an address literal, a host name
 * (normalised), or neither. A name that ends in a number stays a name here; nameProblem refuses it.
 */
export function parseTarget(host: string): Target {
  if (host.startsWith('[') || host.includes(':') || /^[0-9.]+$/.test(host)) {
    const a = parseAddress(host);
    return a.ok ? { kind: 'address', address: a.value } : { kind: 'invalid', problem: a.problem };
  }
  const name = normalizeName(host);
  return name ? { kind: 'name', name } : { kind: 'invalid', problem: `"${host}" is not a host name or IP address` };
}

/**
 * Whether `name` (normalised) may be looked up at all; null means ask the resolver. No query
 * leaves for a name the policy would refuse whatever it resolved to.
 */
export function refuseBeforeLookup(policy: NetworkPolicy, name: string, list: AllowList = allowListOf(policy)): Refusal | null {
  if (policy.mode === 'none') return refuse('this sprite has no network (network none)');
  if (policy.mode === 'allow' && !allowsName(list, name)) return refuse(`${name} is not in this sprite's allow list (${formatNetworkPolicy(policy)})`, name);
  const problem = nameProblem(name);
  return problem ? refuse(problem) : null;
}

/** Allow lists read once per stored list (a policy object lives until the policy changes). */
const allowLists = new WeakMap<readonly string[], AllowList>();

function allowListOf(policy: NetworkPolicy): AllowList {
  let list = allowLists.get(policy.allow);
  if (!list) allowLists.set(policy.allow, (list = readAllowList(policy.allow)));
  return list;
}

export function decideEgress(q: EgressQuery): EgressDecision {
  if (!Number.isInteger(q.port) || q.port < 1 || q.port > 65535) return invalid(`port ${q.port} is not a port (1-65535)`);
  if (q.policy.mode === 'none') return refuse('this sprite has no network (network none)');
  const list = allowListOf(q.policy);

  if (q.name === null) {
    if (q.candidates.length !== 1) return invalid('an address request has exactly one address');
    const a = parseAddress(q.candidates[0]);
    if (!a.ok) return invalid(a.problem);
    const why = addressProblem(q, list, a.value, false);
    return why ? refuse(`${a.value.text} ${why.text}`, why.allowEntry) : { ok: true, address: a.value };
  }

  const name = normalizeName(q.name);
  if (!name) return invalid(`"${q.name}" is not a host name`);
  const early = refuseBeforeLookup(q.policy, name, list);
  if (early) return early;
  if (q.candidates.length === 0) return refuse(`${name} has no address`);
  const answers: Address[] = [];
  for (const c of q.candidates) {
    const a = parseAddress(c);
    if (!a.ok) return refuse(`${name} resolved to "${c}", which is not an address`);
    if (!answers.some((x) => x.text === a.value.text && x.family === a.value.family)) answers.push(a.value);
  }
  for (const a of answers) {
    const why = addressProblem(q, list, a, true);
    if (why) {
      const which = answers.length > 1 ? `one of its ${answers.length} addresses, ${a.text}` : a.text;
      return refuse(`${name} resolves to ${which}, which ${why.text}`, why.allowEntry);
    }
  }
  return { ok: true, address: answers.find((a) => a.family === 4) ?? answers[0] };
}

interface Problem {
  /** Completes "<address> …" / "… which …". */
  text: string;
  allowEntry?: string;
}

/**
 * Why `a` may not be reached, or null. `viaName`: the guest asked for a name that resolved to `a`
 * (in `allow` mode that name is listed, and its address must pass the `internet` checks unless
 * the user listed the address itself).
 */
function addressProblem(q: EgressQuery, list: AllowList, a: Address, viaName: boolean): Problem | null {
  if (isThisComputerByDefinition(a)) return { text: "is this computer's loopback or unspecified address, which sprites never reach" };
  if (isNotUnicast(a)) return { text: 'is a multicast or broadcast address, not a destination' };
  const exact = hostPart(a);
  if (q.policy.mode === 'allow') {
    const named = allowsAddress(list, a);
    if (named === 'exact') return null;
    if (named === 'range') {
      if (isOwnAddress(q.host, a)) return { text: "is this computer's own address; only the exact address in allow= reaches it", allowEntry: exact };
      if (isLinkLocal(a) || isCloudMetadata(a)) return { text: 'is link-local or cloud metadata; only the exact address in allow= reaches it', allowEntry: exact };
      if (isTranslation(a)) return { text: 'is a NAT64, 6to4 or Teredo address, which can lead anywhere; only the exact address in allow= reaches it', allowEntry: exact };
      return null;
    }
    if (!viaName) return { text: `is not in this sprite's allow list (${formatNetworkPolicy(q.policy)})`, allowEntry: exact };
  }
  const internet = internetProblem(q, a);
  if (!internet) return null;
  // in allow mode the user may list the exact address; in internet mode that would be a different policy
  return { text: internet, allowEntry: q.policy.mode === 'allow' ? exact : undefined };
}

/** Why `a` is not the public internet, or null. */
function internetProblem(q: EgressQuery, a: Address): string | null {
  const host = matchHost(q.host, a);
  if (host?.kind === 'own') return `is this computer (an address of its interface ${host.net.iface}), which sprites never reach`;
  if (host?.kind === 'on-link') return `is on this computer's local network (${host.net.onLink.text} on ${host.net.iface}); only public internet addresses are reachable`;
  if (isCloudMetadata(a)) return 'is a cloud metadata service, which sprites never reach';
  if (isLinkLocal(a)) return 'is a link-local address; only public internet addresses are reachable';
  const row = specialRange(a);
  if (row.publicInternet || q.treatAsPublic?.some((r) => inRange(a, r))) return null;
  return `is ${row.name} (${row.range.text}, ${row.rfc}), not a public internet address`;
}
