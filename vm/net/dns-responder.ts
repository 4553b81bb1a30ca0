/**
 * A sprite's DNS server: every query the guest sends is answered here, by its policy, from the
 * host's resolver. A name the policy would never let out is REFUSED before any query leaves
 * (`none`; `allow=` without it; special-use names such as `localhost`, `*.local`, `*.internal`),
 * so a refusal is immediate and says so, instead of a timeout. An address answer is decided as a
 * connection to that name would be (egress-decision.ts), on all of the name's addresses together,
 * IPv4 and IPv6: one forbidden address refuses the name, for A and AAAA queries alike — the rule
 * the HTTP proxy and transparent TCP follow, so DNS never hands out an address that connecting
 * by name would refuse (a name mixing public and private answers is a rebinding trick). What is
 * answered is recorded (resolved-names.ts) so a transparent connection to that address is
 * decided as that name.
 *
 * Record types: A and AAAA (and ANY, answered with both: RFC 8482 allows a subset) are addresses
 * and decided; CNAME, TXT, MX, SRV and CAA are passed through as data — they lead nowhere by
 * themselves (a target name is looked up through here again) and tools need them (SRV for
 * XMPP/LDAP/Kerberos, MX and TXT for mail and ACME checks, CAA for certificate tools). HTTPS and
 * SVCB get an empty answer: their address hints would skip the checks, and clients fall back to
 * A/AAAA at once. Everything else (NS, SOA, PTR — reverse names are refused anyway — zone
 * transfers, unknown types) is REFUSED: nothing a sprite needs, and each is one more parser of
 * upstream data.
 *
 * Answers are cached per sprite, never shared between sprites: a shared cache would let one
 * sprite learn from the answer time which names another one looked up. The cache keeps what the
 * host's resolver said, not the decision, so a policy change applies to the next query.
 */
import { hostNetworks, type HostNetwork } from './host-networks.ts';
import type { Range } from './address.ts';
import { answerSize, buildResponse, errorResponse, parseQuery, QTYPE, RCODE, CLASS_IN, type AnswerRecord, type Query, type Rcode } from './dns-message.ts';
import { decideEgress, refuseBeforeLookup } from './egress-decision.ts';
import type { NetworkPolicy } from './egress-policy.ts';
import { normalizeName } from './domain-names.ts';
import { hostResolver, type UpstreamResolver } from './host-resolver.ts';
import { safeText } from '../safe-text.ts';
import { RefusalLog } from './refusal-log.ts';
import type { ResolvedNames } from './resolved-names.ts';

/** The most the guest may cache an answer: it comes back within this, and a policy change with it. */
export const MAX_GUEST_TTL = 300;
/** How long a name that does not exist (or has no such record) is remembered. */
export const NEGATIVE_TTL = 30;
/** How long a failing upstream answer is remembered, so a guest repeating it costs nothing. */
export const ERROR_TTL = 5;
/** TXT, MX, SRV, CAA, CNAME: Node's resolver does not give their TTL. */
export const DATA_TTL = 60;
export const MAX_CACHE_ENTRIES = 1024;
/** Distinct names being looked up at once for one sprite; beyond it, SERVFAIL at once. */
export const MAX_PENDING = 64;
/**
 * Policies are per host, not per port: the decision needs a valid port and it does not change
 * the outcome, so an address answer is decided with this one.
 */
const ANY_PORT = 443;

const DATA_TYPES = { [QTYPE.CNAME]: 'CNAME', [QTYPE.TXT]: 'TXT', [QTYPE.MX]: 'MX', [QTYPE.SRV]: 'SRV', [QTYPE.CAA]: 'CAA' } as const;
type DataType = (typeof DATA_TYPES)[keyof typeof DATA_TYPES];

const TYPE_NAMES: Record<number, string> = Object.fromEntries(Object.entries(QTYPE).map(([k, v]) => [v, k]));

/** What to do with one question, decided before anything is looked up. */
export type QuestionPlan =
  | { kind: 'refuse'; name: string | null; reason: string }
  | { kind: 'addresses'; name: string; want: 'A' | 'AAAA' | 'ANY' }
  | { kind: 'data'; name: string; type: DataType }
  | { kind: 'empty'; name: string };

/** Decides what a question gets, from the policy and the question alone (no lookup). */
export function planQuestion(policy: NetworkPolicy, q: Query['question']): QuestionPlan {
  const shown = q.display;
  if (q.qclass !== CLASS_IN) return { kind: 'refuse', name: q.name, reason: `${shown}: class ${q.qclass} is not answered (only IN)` };
  if (q.name === '') return { kind: 'refuse', name: '', reason: 'the root zone is not a host name' };
  const name = q.name === null ? null : normalizeName(q.name);
  if (name === null) return { kind: 'refuse', name: null, reason: `${shown} is not a host name` };
  const early = refuseBeforeLookup(policy, name);
  if (early) return { kind: 'refuse', name, reason: early.reason };
  switch (q.qtype) {
    case QTYPE.A:
      return { kind: 'addresses', name, want: 'A' };
    case QTYPE.AAAA:
      return { kind: 'addresses', name, want: 'AAAA' };
    case QTYPE.ANY:
      return { kind: 'addresses', name, want: 'ANY' };
    case QTYPE.HTTPS:
    case QTYPE.SVCB:
      return { kind: 'empty', name };
  }
  const data = DATA_TYPES[q.qtype as keyof typeof DATA_TYPES];
  if (data) return { kind: 'data', name, type: data };
  const type = TYPE_NAMES[q.qtype] ?? `TYPE${q.qtype}`;
  return { kind: 'refuse', name, reason: `${name}: ${type} records are not answered (only A, AAAA, CNAME, TXT, MX, SRV and CAA)` };
}

type Lookup<T> = { kind: 'ok'; records: T[] } | { kind: 'nxdomain' } | { kind: 'nodata' } | { kind: 'error'; code: string };

interface AddressEntry {
  v4: Lookup<{ address: string; ttl: number }>;
  v6: Lookup<{ address: string; ttl: number }>;
}

interface CacheEntry {
  expiresAt: number;
  value: AddressEntry | Lookup<AnswerRecord>;
}

export interface DnsResponderOptions {
  sprite: string;
  /** Read for every query: a policy change applies to the next one. */
  policy: () => NetworkPolicy;
  /** The host's DNS (default: the daemon's HostResolver). Tests pass a fake or a Resolver on a test server. */
  resolver?: UpstreamResolver;
  hostNetworks?: () => HostNetwork[];
  treatAsPublic?: readonly Range[];
  /** Where answered names are recorded for transparent TCP. */
  names?: ResolvedNames;
  refusals?: RefusalLog;
  log?: (line: string) => void;
  now?: () => number;
  maxCacheEntries?: number;
  maxPending?: number;
  /** Whether AAAA queries get their addresses (false: an empty answer, for a guest without IPv6). */
  answerAAAA?: boolean;
}

export class DnsResponder {
  readonly refusals: RefusalLog;
  private readonly cache = new Map<string, CacheEntry>();
  private readonly pending = new Map<string, Promise<CacheEntry>>();

  constructor(private readonly opts: DnsResponderOptions) {
    this.refusals = opts.refusals ?? new RefusalLog({ sprite: opts.sprite, log: opts.log });
  }

  private now(): number {
    return (this.opts.now ?? Date.now)();
  }

  /**
   * The answer to one guest packet, or null when it gets none (not a query). `transport`: a UDP
   * datagram (the answer fits the client's size) or a DNS-over-TCP message (up to 64 KiB).
   * Never throws.
   */
  async answer(packet: Uint8Array, transport: 'udp' | 'tcp' = 'udp'): Promise<Uint8Array | null> {
    const parsed = parseQuery(packet);
    if (parsed.kind !== 'query') return errorResponse(parsed);
    const q = parsed.query;
    const maxBytes = transport === 'tcp' ? 65535 : answerSize(q);
    const reply = (rcode: Rcode, answers: AnswerRecord[] = []) => buildResponse({ id: q.id, rd: q.rd, cd: q.cd, rcode, question: q.question, edns: q.edns !== null, answers, maxBytes });
    try {
      const policy = this.opts.policy();
      const plan = planQuestion(policy, q.question);
      if (plan.kind === 'refuse') {
        this.refused(plan.name ?? q.question.display, plan.reason);
        return reply(RCODE.REFUSED);
      }
      if (plan.kind === 'empty') return reply(RCODE.NOERROR);
      if (plan.kind === 'data') {
        const entry = await this.lookup(`${plan.type} ${plan.name}`, () => this.fetchData(plan.name, plan.type));
        if (!entry) return reply(RCODE.SERVFAIL);
        const v = entry.value as Lookup<AnswerRecord>;
        if (v.kind === 'ok') return reply(RCODE.NOERROR, v.records.map((r) => ({ ...r, ttl: this.remaining(entry) })));
        return reply(v.kind === 'nxdomain' ? RCODE.NXDOMAIN : v.kind === 'nodata' ? RCODE.NOERROR : RCODE.SERVFAIL);
      }
      const entry = await this.lookup(plan.name, () => this.fetchAddresses(plan.name));
      if (!entry) return reply(RCODE.SERVFAIL);
      return this.answerAddresses(plan.name, plan.want, entry, reply);
    } catch (err) {
      this.opts.log?.(`dns: could not answer ${q.question.display}: ${safeText((err as Error).message, { maxChars: 300 })}`);
      return reply(RCODE.SERVFAIL);
    }
  }

  private answerAddresses(name: string, want: 'A' | 'AAAA' | 'ANY', entry: CacheEntry, reply: (rcode: Rcode, answers?: AnswerRecord[]) => Uint8Array): Uint8Array {
    const { v4, v6 } = entry.value as AddressEntry;
    const mine = want === 'A' ? [v4] : want === 'AAAA' ? [v6] : [v4, v6];
    if (v4.kind === 'nxdomain' && v6.kind === 'nxdomain') return reply(RCODE.NXDOMAIN);
    if (mine.every((l) => l.kind === 'error')) return reply(RCODE.SERVFAIL);
    const all = [v4, v6].flatMap((l) => (l.kind === 'ok' ? l.records.map((r) => r.address) : []));
    if (all.length === 0) return reply(RCODE.NOERROR);
    // the policy of now and the interfaces of now, on every address the name has
    const decision = decideEgress({ policy: this.opts.policy(), name, candidates: all, port: ANY_PORT, host: (this.opts.hostNetworks ?? hostNetworks)(), treatAsPublic: this.opts.treatAsPublic });
    if (!decision.ok) {
      this.refused(name, decision.reason);
      return reply(RCODE.REFUSED);
    }
    const ttl = this.remaining(entry);
    const answers: AnswerRecord[] = [];
    if (want !== 'AAAA' && v4.kind === 'ok') for (const r of v4.records) answers.push({ type: 'A', address: r.address, ttl });
    if (want !== 'A' && v6.kind === 'ok' && this.opts.answerAAAA !== false) for (const r of v6.records) answers.push({ type: 'AAAA', address: r.address, ttl });
    if (answers.length === 0) return reply(RCODE.NOERROR);
    const out = reply(RCODE.NOERROR, answers);
    // what the guest was given (an answer cut to fit still carried a prefix of these)
    this.opts.names?.record(name, answers.map((a) => (a as { address: string }).address), ttl, this.now());
    return out;
  }

  private refused(name: string, reason: string): void {
    this.refusals.record({ protocol: 'dns', name, address: null, port: null, reason });
  }

  /** Seconds left for `entry`, as the TTL the guest gets: at least 1, at most MAX_GUEST_TTL. */
  private remaining(entry: CacheEntry): number {
    return Math.max(1, Math.min(MAX_GUEST_TTL, Math.ceil((entry.expiresAt - this.now()) / 1000)));
  }

  /** The cached entry for `key`, fetched when missing or expired; null when too many are in flight. */
  private async lookup(key: string, fetch: () => Promise<CacheEntry>): Promise<CacheEntry | null> {
    const hit = this.cache.get(key);
    if (hit && hit.expiresAt > this.now()) {
      this.cache.delete(key); // most recently used last
      this.cache.set(key, hit);
      return hit;
    }
    let p = this.pending.get(key);
    if (!p) {
      if (this.pending.size >= (this.opts.maxPending ?? MAX_PENDING)) return null;
      p = fetch().finally(() => this.pending.delete(key));
      this.pending.set(key, p);
    }
    const entry = await p;
    this.cache.delete(key);
    this.cache.set(key, entry);
    const max = this.opts.maxCacheEntries ?? MAX_CACHE_ENTRIES;
    while (this.cache.size > max) this.cache.delete(this.cache.keys().next().value!);
    return entry;
  }

  private async fetchAddresses(name: string): Promise<CacheEntry> {
    const resolver = this.opts.resolver ?? hostResolver();
    const [v4, v6] = await Promise.all([settle(resolver.resolve4(name, { ttl: true })), settle(resolver.resolve6(name, { ttl: true }))]);
    // a family without addresses does not shorten the other's life; a failing one does
    const oks = [v4, v6].filter((l) => l.kind === 'ok');
    let ttl = oks.length ? Math.min(...oks.map((l) => lookupTtl(l))) : NEGATIVE_TTL;
    if (v4.kind === 'error' || v6.kind === 'error') ttl = Math.min(ttl, ERROR_TTL);
    return { expiresAt: this.now() + ttl * 1000, value: { v4, v6 } };
  }

  private async fetchData(name: string, type: DataType): Promise<CacheEntry> {
    const r = this.opts.resolver ?? hostResolver();
    const ttl = DATA_TTL;
    let v: Lookup<AnswerRecord>;
    switch (type) {
      case 'CNAME':
        v = mapOk(await settle(r.resolveCname(name)), (target) => ({ type, target, ttl }));
        break;
      case 'TXT':
        v = mapOk(await settle(r.resolveTxt(name)), (strings) => ({ type, strings, ttl }));
        break;
      case 'MX':
        v = mapOk(await settle(r.resolveMx(name)), (m) => ({ type, preference: m.priority, exchange: m.exchange, ttl }));
        break;
      case 'SRV':
        v = mapOk(await settle(r.resolveSrv(name)), (s) => ({ type, priority: s.priority, weight: s.weight, port: s.port, target: s.name, ttl }));
        break;
      case 'CAA':
        v = mapOk(await settle(r.resolveCaa(name)), caaRecord);
        break;
    }
    return { expiresAt: this.now() + lookupTtl(v, DATA_TTL) * 1000, value: v };
  }
}

/** Node's CaaRecord holds its tag as a key: `{critical: 0, issue: 'ca.example'}`. */
function caaRecord(c: { critical: number }): AnswerRecord {
  const tag = Object.keys(c).find((k) => k !== 'critical') ?? 'issue';
  return { type: 'CAA', critical: c.critical !== 0, tag, value: String((c as Record<string, unknown>)[tag] ?? ''), ttl: DATA_TTL };
}

function mapOk<T, U>(l: Lookup<T>, f: (t: T) => U): Lookup<U> {
  return l.kind === 'ok' ? { kind: 'ok', records: l.records.map(f) } : l;
}

/** How long a lookup's outcome is kept: its smallest TTL (at least 1 s), or the negative/error TTL. */
function lookupTtl(l: Lookup<{ ttl: number }>, fallback = MAX_GUEST_TTL): number {
  if (l.kind === 'ok') return Math.max(1, Math.min(MAX_GUEST_TTL, ...l.records.map((r) => (Number.isFinite(r.ttl) ? r.ttl : fallback))));
  if (l.kind === 'error') return ERROR_TTL;
  return NEGATIVE_TTL;
}

/** Node's resolver errors as outcomes: ENOTFOUND is NXDOMAIN, ENODATA an empty answer, the rest a failure. */
async function settle<T>(p: Promise<T[]>): Promise<Lookup<T>> {
  try {
    const records = await p;
    return records.length ? { kind: 'ok', records } : { kind: 'nodata' };
  } catch (err) {
    const code = String((err as NodeJS.ErrnoException).code ?? 'EUNKNOWN');
    if (code === 'ENOTFOUND') return { kind: 'nxdomain' };
    if (code === 'ENODATA') return { kind: 'nodata' };
    return { kind: 'error', code };
  }
}
