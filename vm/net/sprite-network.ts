/**
 * A sprite's network on the host side, as one object: its DNS responder, the names it resolved,
 * its egress connector and its refusal log, wired so that they share what they must — the guest
 * resolves github.com here, and a transparent connection to github.com's address is then decided
 * as github.com; every refusal, whatever the way out, lands in one list and one rate-limited log;
 * one connection cap covers every way out. The engine makes one per sprite and keeps it for the
 * daemon's life (vm/engine/live-machines.ts), closing its connections whenever the sprite's
 * machine stops, so what it refused stays listed; the HTTP proxy takes its connector; the guest
 * side (the guest agent's DNS, TCP and UDP carriers) calls answerDns, tcp, udp and dnsStream;
 * `net show` and the UI read the refusal list.
 */
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Range } from './address.ts';
import { DnsResponder } from './dns-responder.ts';
import { serveDnsStream } from './dns-stream.ts';
import { EgressConnector, readTreatAsPublic, type EgressResult } from './egress-connector.ts';
import { formatNetworkPolicy, type NetworkPolicy } from './egress-policy.ts';
import type { HostNetwork } from './host-networks.ts';
import type { UpstreamResolver } from './host-resolver.ts';
import { RefusalLog, type RefusedDestination } from './refusal-log.ts';
import { ResolvedNames } from './resolved-names.ts';
import { decideUdp, DNS_PORT } from './udp-policy.ts';

export interface SpriteNetworkOptions {
  sprite: string;
  /** Read for every query and connection. */
  policy: () => NetworkPolicy;
  onActivity?: () => void;
  /** A daemon log line (the caller prefixes the sprite). */
  log?: (line: string) => void;
  /** Where the refusal list is shown (`spritely net show NAME`), for the log's summary line; once it is. */
  listedBy?: string;
  /** Default: SPRITELY_EGRESS_TREAT_AS_PUBLIC (docs/network.md). */
  treatAsPublic?: readonly Range[];
  /** Test seams and knobs, passed to the parts. */
  resolver?: UpstreamResolver;
  lookup?: (name: string) => Promise<string[]>;
  hostNetworks?: () => HostNetwork[];
  maxConnections?: number;
  answerAAAA?: boolean;
  now?: () => number;
}

/**
 * What a carrier of the guest's own traffic asks of its sprite's network: the host network
 * stack's link (netstack-link.ts) and the older images' agent relay (vm/guest/agent-relay.ts).
 * SpriteNetwork has this shape; specs pass fakes.
 */
export interface GuestNetwork {
  tcp(destination: { address: string; port: number; signal?: AbortSignal }): Promise<
    | { ok: 'dns' }
    | { ok: true; socket: Socket }
    | { ok: false; kind: 'invalid' | 'refused' | 'unreachable' | 'busy'; message: string }
  >;
  answerDns(packet: Uint8Array): Promise<Uint8Array | null>;
  udp(destination: { address: string; port: number }): 'dns' | 'refused';
  dnsStream(stream: Duplex): Promise<void>;
}

/** What `spritely net show NAME` and the UI's sprite header show. */
export interface NetworkView {
  /** The policy as the user writes it. */
  policy: string;
  /** The last refused destinations, newest first. */
  refused: RefusedDestination[];
  connections: { open: number; max: number };
  bytes: { in: number; out: number };
}

export class SpriteNetwork implements GuestNetwork {
  readonly refusals: RefusalLog;
  readonly names = new ResolvedNames();
  readonly connector: EgressConnector;
  readonly dns: DnsResponder;

  constructor(private readonly opts: SpriteNetworkOptions) {
    const treatAsPublic = opts.treatAsPublic ?? readTreatAsPublic((process.env.SPRITELY_EGRESS_TREAT_AS_PUBLIC ?? '').split(','), opts.log);
    this.refusals = new RefusalLog({ sprite: opts.sprite, log: opts.log, listedBy: opts.listedBy, now: opts.now });
    const shared = { sprite: opts.sprite, policy: opts.policy, hostNetworks: opts.hostNetworks, treatAsPublic, names: this.names, refusals: this.refusals, log: opts.log, now: opts.now };
    this.connector = new EgressConnector({ ...shared, lookup: opts.lookup, onActivity: opts.onActivity, maxConnections: opts.maxConnections });
    this.dns = new DnsResponder({ ...shared, resolver: opts.resolver, answerAAAA: opts.answerAAAA });
  }

  /** A guest DNS datagram: the answer datagram, or null for none. */
  answerDns(packet: Uint8Array): Promise<Uint8Array | null> {
    return this.dns.answer(packet, 'udp');
  }

  /**
   * A guest UDP datagram's destination: `dns` — give the payload to answerDns; `refused` — drop
   * it (the refusal is recorded and logged, rate-limited).
   */
  udp(destination: { address: string; port: number }): 'dns' | 'refused' {
    const d = decideUdp(destination);
    if (d.kind === 'dns') return 'dns';
    this.refusals.record(d.refusal);
    return 'refused';
  }

  /**
   * A transparent TCP connection from the guest: to port 53 it is DNS, answered here (pass the
   * stream to dnsStream); anything else goes through the connector.
   */
  async tcp(destination: { address: string; port: number; signal?: AbortSignal }): Promise<{ ok: 'dns' } | EgressResult> {
    if (destination.port === DNS_PORT) return { ok: 'dns' };
    return this.connector.connect(destination);
  }

  /** Answers DNS over a stream (a guest TCP connection to port 53) until it closes. */
  dnsStream(stream: Duplex): Promise<void> {
    return serveDnsStream(stream, (p) => this.dns.answer(p, 'tcp'), { log: this.opts.log });
  }

  view(): NetworkView {
    return {
      policy: formatNetworkPolicy(this.opts.policy()),
      refused: this.refusals.list(),
      connections: { open: this.connector.active, max: this.connector.maxConnections },
      bytes: { in: this.connector.bytesIn, out: this.connector.bytesOut },
    };
  }

  /**
   * Closes every connection and ends the refusal log's interval (the sprite's machine stopped).
   * The refusals stay listed, and the network serves the next machine of the same sprite.
   */
  close(): void {
    this.connector.close();
  }
}
