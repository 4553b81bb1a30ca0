/**
 * The daemon's side of the network relay (docs/network.md "DNS and transparent TCP"): what the
 * guest agent carries — each guest TCP connection with its original destination, each DNS query,
 * each refused datagram — handed to the sprite's network (vm/net/sprite-network.ts), which decides
 * by the policy and connects. A connection the network lets out is joined to its socket with
 * credit both ways: bytes from the guest are granted back only once the socket has taken them,
 * bytes from the destination are read only while the agent has room, so neither side buffers
 * more than a window per connection. DNS over TCP (a connection to port 53) is answered by the
 * network's DNS stream server on an in-memory pipe. The network is passed in (only its type
 * comes from vm/net).
 */
import { Socket } from 'node:net';
import { Duplex } from 'node:stream';
import type { GuestNetwork } from '../net/sprite-network.ts';
import { CloseReason, type RelayEvent, type RelayProtocol } from './agent-relay-protocol.ts';

/** The relay's way to the agent: the current epoch's relay protocol (none while disconnected) and the channel's writer. */
export interface RelayLink {
  protocol(): RelayProtocol | null;
  write(frame: Buffer): void;
}

/** DNS queries being answered at once, per sprite; more are dropped (the guest's resolver asks again). */
export const MAX_DNS_IN_FLIGHT = 256;

const REASON = { invalid: CloseReason.Invalid, refused: CloseReason.Refused, unreachable: CloseReason.Unreachable, busy: CloseReason.Busy } as const;

export class AgentRelay {
  private conns = new Map<number, Relayed>();
  private dnsInFlight = 0;
  /** Counts resets, so work that finishes after one is dropped. */
  private generation = 0;

  constructor(
    private readonly network: GuestNetwork,
    private readonly link: RelayLink,
    private readonly log?: (line: string) => void,
  ) {}

  /** Relayed connections open or opening now. */
  get open(): number {
    return this.conns.size;
  }

  onEvent(e: RelayEvent): void {
    switch (e.kind) {
      case 'tcp-connect':
        void this.connect(e.session, e.address, e.port);
        return;
      case 'dns-query':
        void this.dns(e.handle, e.message);
        return;
      case 'udp-refused':
        this.network.udp({ address: e.address, port: e.port });
        return;
      case 'tcp-data':
        this.conns.get(e.session)?.fromGuest(e.data);
        return;
      case 'tcp-eof':
        this.conns.get(e.session)?.guestEnded();
        return;
      case 'tcp-window':
        this.conns.get(e.session)?.flush();
        return;
      case 'tcp-close':
        this.conns.get(e.session)?.destroy(false);
        return;
    }
  }

  /** Ends every relayed connection now, telling the agent (each is reset in the guest too). */
  closeAll(): void {
    for (const c of [...this.conns.values()]) c.destroy(true);
  }

  /** The channel to the agent ended or started over: every relayed connection ends here too. */
  reset(): void {
    this.generation++;
    const all = [...this.conns.values()];
    this.conns.clear();
    for (const c of all) c.destroy(false);
  }

  private async connect(session: number, address: string, port: number): Promise<void> {
    const generation = this.generation;
    const abort = new AbortController();
    const pending = new Relayed(this, session, null);
    pending.onDestroy = () => abort.abort();
    this.conns.set(session, pending);
    let r: Awaited<ReturnType<GuestNetwork['tcp']>>;
    try {
      r = await this.network.tcp({ address, port, signal: abort.signal });
    } catch (err) {
      r = { ok: false, kind: 'unreachable', message: `spritely: ${address}:${port}: ${(err as Error).message}` };
    }
    const current = generation === this.generation && this.conns.get(session) === pending;
    if (r.ok === true && !current) {
      r.socket.destroy();
      return;
    }
    if (!current) return;
    if (r.ok === false) {
      this.conns.delete(session);
      this.send((p) => p.close(session, REASON[r.kind], r.message));
      return;
    }
    let peer: Duplex;
    if (r.ok === 'dns') {
      const [mine, theirs] = duplexPair();
      this.network.dnsStream(theirs).catch(() => {}).finally(() => theirs.destroy());
      peer = mine;
    } else {
      r.socket.allowHalfOpen = true; // a destination that ends its side may still read the guest's
      peer = r.socket;
    }
    const conn = new Relayed(this, session, peer);
    this.conns.set(session, conn);
    this.send((p) => p.connected(session));
    conn.start();
    // what the guest sent with its connect (within the early window) goes out first
    for (const chunk of pending.early) conn.fromGuest(chunk);
    if (pending.earlyEnd) conn.guestEnded();
  }

  private async dns(handle: number, message: Buffer): Promise<void> {
    if (this.dnsInFlight >= MAX_DNS_IN_FLIGHT) return;
    const generation = this.generation;
    this.dnsInFlight++;
    try {
      const answer = await this.network.answerDns(message);
      if (answer && generation === this.generation) this.send((p) => p.dnsAnswer(handle, answer));
    } catch (err) {
      this.log?.(`DNS query not answered: ${(err as Error).message}`);
    } finally {
      this.dnsInFlight--;
    }
  }

  /** @internal */
  forget(conn: Relayed): void {
    if (this.conns.get(conn.session) === conn) this.conns.delete(conn.session);
  }

  /**
   * Sends what `build` makes with the current epoch's relay protocol; nothing when there is none,
   * or when the connection ended there meanwhile (the builder throws).
   * @internal
   */
  send(build: (p: RelayProtocol) => Buffer | Buffer[] | null): void {
    const p = this.link.protocol();
    if (!p) return;
    let frames: Buffer | Buffer[] | null;
    try {
      frames = build(p);
    } catch {
      return;
    }
    for (const f of frames === null ? [] : Array.isArray(frames) ? frames : [frames]) this.link.write(f);
  }

  /** @internal: what the agent takes now on `session`. */
  creditOf(session: number): number {
    return this.link.protocol()?.credit(session) ?? 0;
  }
}

/** One relayed connection joined to its peer (the destination's socket, or the DNS pipe). */
class Relayed {
  onDestroy: (() => void) | null = null;
  /** Before the destination answered: what the guest sent already (the protocol bounds it by its early window). */
  readonly early: Buffer[] = [];
  earlyEnd = false;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private peerEnded = false;
  private peerClosed = false;
  private eofSent = false;
  private guestDone = false;
  private done = false;

  constructor(
    private readonly relay: AgentRelay,
    readonly session: number,
    private readonly peer: Duplex | null,
  ) {}

  start(): void {
    const peer = this.peer!;
    peer.on('data', (chunk: Buffer) => {
      this.pending.push(chunk);
      this.pendingBytes += chunk.length;
      this.flush();
    });
    peer.on('end', () => {
      this.peerEnded = true;
      this.flush();
    });
    peer.on('error', () => {}); // 'close' follows
    peer.on('close', (hadError?: boolean) => {
      this.peerClosed = true;
      // after an orderly end what is still held goes out, then the EOF (flush); otherwise a reset
      if (!this.done && (hadError || !this.peerEnded)) this.destroy(true);
    });
  }

  /** Sends what the agent has room for; the peer is paused while it has none. */
  flush(): void {
    if (this.done || !this.peer) return;
    let credit = this.relay.creditOf(this.session);
    while (this.pending.length && credit > 0) {
      const head = this.pending[0];
      const piece = head.length <= credit ? head : head.subarray(0, credit);
      if (piece.length === head.length) this.pending.shift();
      else this.pending[0] = head.subarray(piece.length);
      this.pendingBytes -= piece.length;
      credit -= piece.length;
      this.relay.send((p) => p.data(this.session, piece));
    }
    if (this.pendingBytes > 0) this.peer.pause();
    else if (this.peer.isPaused()) this.peer.resume();
    if (this.peerEnded && this.pendingBytes === 0 && !this.eofSent) {
      this.eofSent = true;
      this.relay.send((p) => p.eof(this.session));
      this.maybeOver();
    }
  }

  /** Bytes from the guest: written on, and granted back once the peer has taken them. */
  fromGuest(data: Buffer): void {
    if (this.done) return;
    if (!this.peer) return void this.early.push(data);
    if (this.peerClosed) return this.destroy(true); // nobody takes it any more
    this.peer.write(data, (err) => {
      if (!err && !this.done) this.relay.send((p) => p.window(this.session, data.length));
    });
  }

  guestEnded(): void {
    if (this.done) return;
    if (!this.peer) return void (this.earlyEnd = true);
    this.guestDone = true;
    this.peer.end();
    this.maybeOver();
  }

  private maybeOver(): void {
    if (this.eofSent && this.guestDone) {
      this.relay.forget(this); // both sides said so: the protocol forgot it too
      this.done = true;
      if (this.peer && !this.peer.writableFinished) this.peer.once('finish', () => this.peer!.destroy());
      else this.peer?.destroy();
    }
  }

  /** Ends at once; `tell`: the agent must hear of it (the peer failed or reset). */
  destroy(tell: boolean): void {
    if (this.done) return;
    this.done = true;
    this.relay.forget(this);
    this.onDestroy?.();
    // a reset travels on as a reset: the destination must not take it for a complete request
    if (this.peer instanceof Socket) this.peer.resetAndDestroy();
    else this.peer?.destroy();
    if (tell) this.relay.send((p) => p.close(this.session, CloseReason.Reset));
  }
}

/** Two connected in-memory duplex ends: what one writes, the other reads (end included). */
export function duplexPair(): [Duplex, Duplex] {
  let a: Duplex;
  let b: Duplex;
  const make = (other: () => Duplex) =>
    new Duplex({
      allowHalfOpen: true,
      read() {
        // flow control: the writer's callback is held until this side reads
        const o = other() as Duplex & { waiting?: () => void };
        const w = o.waiting;
        o.waiting = undefined;
        w?.();
      },
      write(chunk: Buffer, _enc, cb) {
        const self = this as Duplex & { waiting?: () => void };
        if (other().push(chunk)) cb();
        else self.waiting = () => cb();
      },
      final(cb) {
        other().push(null);
        cb();
      },
      destroy(err, cb) {
        const o = other();
        if (!o.destroyed) o.destroy();
        cb(err);
      },
    });
  a = make(() => b);
  b = make(() => a);
  return [a, b];
}
