/**
 * The one way a sprite's connection leaves this computer. Every way out — the HTTP proxy today,
 * transparent TCP from the guest agent later — hands the connector what the guest asked for and
 * gets back a connected socket or a refusal it can show: the name is resolved on the host, the
 * decision is egress-decision.ts's, and the socket goes to exactly the address decided (an IP
 * literal: nothing is resolved again between check and connect, so no rebinding).
 *
 * Two kinds of request:
 *   { host, port }    — what the guest wrote (a name or an address literal): the HTTP proxy;
 *   { address, port } — a transparent connection's original destination. The guest wrote no name
 *                       here, so the connection is decided as each name the daemon's DNS recently
 *                       answered with that address, to this sprite (resolved-names.ts), and as
 *                       the bare address; the first that passes lets it out. `allow=github.com`
 *                       thus lets `ssh git@github.com` out after the guest resolved github.com.
 *
 * Per sprite, at most `maxConnections` connections are open or being opened at once (a guest
 * cannot use up the daemon's file descriptors); the next one is refused with a sentence saying so.
 * Bytes are counted from the sockets themselves, and activity (for the idle loop) is sampled once
 * a second while connections are open, so the caller may use the socket however it likes.
 */
import dns from 'node:dns';
import net from 'node:net';
import { canonicalAddress, hostPart, parseRange, type Address, type Range } from './address.ts';
import { decideEgress, parseTarget, refuseBeforeLookup, type EgressDecision } from './egress-decision.ts';
import { formatNetworkPolicy, type NetworkPolicy } from './egress-policy.ts';
import { hostNetworks, type HostNetwork } from './host-networks.ts';
import { safeText } from '../safe-text.ts';
import { RefusalLog } from './refusal-log.ts';
import type { ResolvedNames } from './resolved-names.ts';

export const DEFAULT_MAX_CONNECTIONS = 128;
export const CONNECT_TIMEOUT_MS = 15_000;
const ACTIVITY_SAMPLE_MS = 1000;

export interface EgressConnectorOptions {
  sprite: string;
  /** Read for every request, so a policy change applies to the next connection. */
  policy: () => NetworkPolicy;
  /** Resolves a normalised host name to addresses (default: the system resolver, absolute name). */
  lookup?: (name: string) => Promise<string[]>;
  /** This computer's interfaces, read for every decision (default: os.networkInterfaces()). */
  hostNetworks?: () => HostNetwork[];
  /** Special-purpose ranges the user declared public (readTreatAsPublic). */
  treatAsPublic?: readonly Range[];
  /** Names this sprite resolved through the daemon's DNS, for transparent requests. */
  names?: ResolvedNames;
  /** Where refusals go (default: a new log writing to `log`). */
  refusals?: RefusalLog;
  log?: (line: string) => void;
  /** Called when a connection opens and, while bytes move, about once a second. */
  onActivity?: () => void;
  maxConnections?: number;
  connectTimeoutMs?: number;
  now?: () => number;
  /** Opens the socket (default net.connect). Tests pass one that never connects. */
  dial?: (options: net.NetConnectOpts) => net.Socket;
}

/** Exactly one of `host` and `address`. */
export interface EgressRequest {
  /** What the guest wrote: a host name or an address literal (`[v6]` allowed). */
  host?: string;
  /** A transparent connection's original destination address (the name comes from the daemon's DNS). */
  address?: string;
  port: number;
  /** Aborts resolving and connecting (the guest went away). */
  signal?: AbortSignal;
}

export type EgressRefusalKind = 'invalid' | 'refused' | 'unreachable' | 'busy';

export interface EgressRefusal {
  ok: false;
  /**
   * `invalid`: not a destination (HTTP 400); `refused`: the policy says no (403); `unreachable`:
   * allowed, but the name did not resolve or the connection failed (502); `busy`: the sprite has
   * as many connections open as it may (503).
   */
  kind: EgressRefusalKind;
  /** `host:port` as the guest wrote it, printable. */
  where: string;
  /** One sentence, no final period. */
  reason: string;
  /** What the user can do, when there is something: "To let it out, on the host: …". */
  suggestion?: string;
  /** The whole sentence for the guest: `spritely: <where> refused: <reason>. <suggestion>`. */
  message: string;
}

export interface EgressConnection {
  ok: true;
  /** Connected to `address`; closing it frees the sprite's connection slot. */
  socket: net.Socket;
  address: Address;
  /** The name the connection was decided as (null: the bare address). */
  name: string | null;
}

export type EgressResult = EgressConnection | EgressRefusal;

/**
 * The system resolver, asked for the absolute name (`name.`): no search domain is appended and
 * the hosts file does not answer, so what comes back is what DNS says about that exact name.
 */
export async function systemLookup(name: string): Promise<string[]> {
  const found = await dns.promises.lookup(`${name}.`, { all: true, verbatim: true });
  return found.map((f) => f.address);
}

/** Reads ADDRESS/BITS (or single addresses) from text the user wrote; bad ones are reported and dropped. */
export function readTreatAsPublic(entries: string[], log?: (line: string) => void): Range[] {
  const out: Range[] = [];
  for (const raw of entries.map((e) => e.trim()).filter(Boolean)) {
    const r = parseRange(raw.includes('/') ? raw : `${raw}/${raw.includes(':') ? 128 : 32}`);
    if (r.ok) out.push(r.value);
    else log?.(`egress: ignoring "${safeText(raw, { maxChars: 300 })}" in SPRITELY_EGRESS_TREAT_AS_PUBLIC: ${r.problem}`);
  }
  return out;
}

export interface DecisionInputs {
  policy: NetworkPolicy;
  host: readonly HostNetwork[];
  treatAsPublic?: readonly Range[];
}

/**
 * Decides a transparent connection to `address`: as each name that led there (most recent
 * first), then as the bare address. The first that passes wins; otherwise the refusal of the most
 * recent name, which says more than the address's ("github.com is not in this sprite's allow
 * list" rather than "140.82.121.3 is not …"), or the address's when no name led there.
 */
export function decideTransparent(inputs: DecisionInputs, address: string, port: number, names: readonly string[]): { decision: EgressDecision; name: string | null } {
  const decide = (name: string | null) => decideEgress({ ...inputs, name, candidates: [address], port });
  let first: { decision: EgressDecision; name: string | null } | null = null;
  for (const name of names) {
    const decision = decide(name);
    if (decision.ok) return { decision, name };
    first ??= { decision, name };
  }
  const bare = decide(null);
  if (bare.ok || bare.kind === 'invalid' || !first) return { decision: bare, name: null };
  return first;
}

/** What the user could run to let a refused destination out, or nothing. */
export function suggestionFor(sprite: string, policy: NetworkPolicy, decision: Extract<EgressDecision, { ok: false }>): string | undefined {
  if (decision.kind !== 'refused') return undefined;
  if (policy.mode === 'allow' && decision.allowEntry) return `To let it out, on the host: spritely net set ${sprite} ${formatNetworkPolicy(policy)},${decision.allowEntry}`;
  if (policy.mode === 'none') return `To give it a network, on the host: spritely net set ${sprite} internet`;
  return undefined;
}

/** An address as a host part: IPv6 in brackets (a transparent destination comes without). */
function bracketed(address: string): string {
  return address.includes(':') && !address.startsWith('[') ? `[${address}]` : address;
}

export class EgressConnector {
  readonly refusals: RefusalLog;
  private readonly open = new Set<net.Socket>();
  private pending = 0;
  private closedIn = 0;
  private closedOut = 0;
  private sampler: NodeJS.Timeout | null = null;
  private lastSample = 0;

  constructor(private readonly opts: EgressConnectorOptions) {
    this.refusals = opts.refusals ?? new RefusalLog({ sprite: opts.sprite, log: opts.log });
  }

  get maxConnections(): number {
    return this.opts.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
  }

  /** Connections open or being opened now. */
  get active(): number {
    return this.open.size + this.pending;
  }

  /** Bytes received from destinations (closed and open connections). */
  get bytesIn(): number {
    let n = this.closedIn;
    for (const s of this.open) n += s.bytesRead;
    return n;
  }

  /** Bytes sent to destinations. */
  get bytesOut(): number {
    let n = this.closedOut;
    for (const s of this.open) n += s.bytesWritten;
    return n;
  }

  async connect(req: EgressRequest): Promise<EgressResult> {
    if ((req.host === undefined) === (req.address === undefined)) throw new Error('EgressConnector.connect takes a host or an address, not both or neither');
    const written = req.host ?? (req.address === undefined ? '' : bracketed(req.address));
    const where = `${safeText(written, { maxChars: 200 })}:${req.port}`;
    if (this.active >= this.maxConnections) {
      const reason = `this sprite already has ${this.maxConnections} connections open, the most it may have at once`;
      const address = req.address === undefined ? null : (canonicalAddress(req.address)?.text ?? null);
      this.refusals.record({ protocol: 'tcp', name: req.host ?? null, address, port: Number.isInteger(req.port) ? req.port : null, reason });
      return this.refuse('busy', where, reason, 'Close some and try again');
    }
    this.pending++;
    try {
      const chosen = await this.decide(req, where);
      if (!chosen.ok) return chosen;
      if (req.signal?.aborted) return this.refuse('unreachable', where, 'the guest closed the connection');
      return await this.dial(chosen.address, req.port, where, chosen.name, req.signal);
    } finally {
      this.pending--;
    }
  }

  /**
   * Decides a request without connecting (no slot taken): a refusal, or null when it would be let
   * out. For a carrier that must also check a second spelling of one destination.
   */
  async check(req: EgressRequest): Promise<EgressRefusal | null> {
    const written = req.host ?? (req.address === undefined ? '' : bracketed(req.address));
    const decided = await this.decide(req, `${safeText(written, { maxChars: 200 })}:${req.port}`);
    return decided.ok ? null : decided;
  }

  /** Stops sampling activity and closes every open connection (the sprite stopped). */
  close(): void {
    for (const s of this.open) s.destroy();
    if (this.sampler) clearInterval(this.sampler);
    this.sampler = null;
    this.refusals.close();
  }

  private inputs(): DecisionInputs {
    return { policy: this.opts.policy(), host: (this.opts.hostNetworks ?? hostNetworks)(), treatAsPublic: this.opts.treatAsPublic };
  }

  private async decide(req: EgressRequest, where: string): Promise<{ ok: true; address: Address; name: string | null } | EgressRefusal> {
    const port = req.port;
    if (!Number.isInteger(port) || port < 1 || port > 65535) return this.refuse('invalid', where, `${port} is not a port (1-65535)`);
    let inputs = this.inputs();
    let decision: EgressDecision;
    let name: string | null = null;
    let address: string | null = null;
    if (req.address !== undefined) {
      const target = parseTarget(bracketed(req.address));
      if (target.kind !== 'address') return this.refuse('invalid', where, target.kind === 'invalid' ? target.problem : `"${req.address}" is not an IP address`);
      address = target.address.text;
      // the names come from the daemon's own DNS answers only: a name the guest claims beside an
      // address would let `allow=github.com` reach any address the guest likes
      const names = this.opts.names?.namesFor(address, (this.opts.now ?? Date.now)()) ?? [];
      ({ decision, name } = decideTransparent(inputs, address, port, names));
    } else {
      const target = parseTarget(req.host ?? '');
      if (target.kind === 'invalid') return this.refuse('invalid', where, target.problem);
      if (target.kind === 'address') {
        address = target.address.text;
        decision = decideEgress({ ...inputs, name: null, candidates: [address], port });
      } else {
        name = target.name;
        // refused by name alone: no DNS query leaves for a name the policy never lets out
        const early = refuseBeforeLookup(inputs.policy, name);
        if (early) decision = early;
        else {
          let answers: string[];
          try {
            answers = await (this.opts.lookup ?? systemLookup)(name);
          } catch (err) {
            const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
            return this.unreachable(where, `spritely: could not resolve ${name} (${safeText(String(code), { maxChars: 300 })})`);
          }
          inputs = this.inputs(); // the lookup took time; decide on the interfaces and policy of now
          decision = decideEgress({ ...inputs, name, candidates: answers, port });
        }
      }
    }
    if (decision.ok) return { ok: true, address: decision.address, name };
    if (decision.kind === 'refused') this.refusals.record({ protocol: 'tcp', name, address, port, reason: decision.reason });
    return this.refuse(decision.kind, where, decision.reason, suggestionFor(this.opts.sprite, inputs.policy, decision));
  }

  private dial(address: Address, port: number, where: string, name: string | null, signal?: AbortSignal): Promise<EgressResult> {
    const timeoutMs = this.opts.connectTimeoutMs ?? CONNECT_TIMEOUT_MS;
    return new Promise((resolve) => {
      const socket = (this.opts.dial ?? net.connect)({ host: address.text, port, family: address.family, noDelay: true });
      const fail = (message: string) => {
        cleanup();
        socket.destroy();
        resolve(this.unreachable(where, `spritely: could not connect to ${where}: ${message}`));
      };
      const timer = setTimeout(() => fail(`no answer from ${where} (${hostPart(address)}) in ${timeoutMs / 1000} s`), timeoutMs);
      const onError = (err: Error) => fail(err.message);
      const onAbort = () => fail('the guest closed the connection');
      const cleanup = () => {
        clearTimeout(timer);
        socket.off('error', onError);
        signal?.removeEventListener('abort', onAbort);
      };
      socket.once('error', onError);
      signal?.addEventListener('abort', onAbort, { once: true });
      socket.once('connect', () => {
        cleanup();
        this.track(socket);
        resolve({ ok: true, socket, address, name });
      });
    });
  }

  private track(socket: net.Socket): void {
    this.open.add(socket);
    socket.on('error', () => {}); // the caller sees errors as 'close'; none may reach the process
    socket.once('close', () => {
      this.open.delete(socket);
      this.closedIn += socket.bytesRead;
      this.closedOut += socket.bytesWritten;
      if (this.open.size === 0 && this.sampler) {
        clearInterval(this.sampler);
        this.sampler = null;
      }
    });
    this.opts.onActivity?.();
    if (!this.sampler && this.opts.onActivity) {
      this.lastSample = this.bytesIn + this.bytesOut;
      this.sampler = setInterval(() => {
        const now = this.bytesIn + this.bytesOut;
        if (now !== this.lastSample) this.opts.onActivity?.();
        this.lastSample = now;
      }, ACTIVITY_SAMPLE_MS);
      this.sampler.unref();
    }
  }

  private refuse(kind: EgressRefusalKind, where: string, reason: string, suggestion?: string): EgressRefusal {
    const clean = safeText(reason, { maxChars: 300 });
    return { ok: false, kind, where, reason: clean, ...(suggestion ? { suggestion } : {}), message: `spritely: ${where} refused: ${clean}.${suggestion ? ` ${suggestion}` : ''}` };
  }

  private unreachable(where: string, message: string): EgressRefusal {
    return { ok: false, kind: 'unreachable', where, reason: message.replace(/^spritely: /, ''), message };
  }
}
