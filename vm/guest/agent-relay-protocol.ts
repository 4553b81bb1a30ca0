/**
 * The network relay's frames (protocol version 2, docs/guest-agent.md "The network relay"),
 * without I/O: the guest's TCP connections, DNS queries and refused datagrams, as the guest agent
 * carries them. Everything here comes from a guest that owns the agent, so every frame is checked
 * against the state of its connection — a new connection's id must be the agent's and higher
 * than any before it in this epoch, data must fit the window this side granted, an end comes once
 * — and anything else throws AgentProtocolError (the channel closes and a new epoch starts).
 * Frames for a connection this side has already ended are dropped: they crossed its end.
 * agent-protocol.ts owns one of these per epoch; agent-relay.ts is the I/O around it.
 */
import { AgentProtocolError, encodeFrame, FrameType, MAX_PAYLOAD, type Frame } from './agent-frames.ts';

/** Agent session ids have the top bit set. */
export const AGENT_SESSION_BIT = 0x8000_0000;
/** Relayed connections this side keeps at once (the connector's cap per sprite is lower). */
export const MAX_RELAYED = 1024;
/** What the agent may send ahead per connection (bytes this side buffers at most). */
export const RELAY_WINDOW = 256 * 1024;
/**
 * What the agent may send of a connection before the host answered its TCP_CONNECT (a client's
 * first request goes out with the connect instead of a round trip later); TCP_CONNECTED grants the
 * rest of the host's window on top. The host holds these bytes until it is connected, and drops
 * them with a refusal.
 */
export const EARLY_WINDOW = 64 * 1024;
const MAX_CREDIT = 2 ** 30;
/** The longest message a TCP_CLOSE carries. */
export const MAX_CLOSE_MESSAGE = 1024;

/** TCP_CLOSE reasons. */
export const CloseReason = { Reset: 0, Refused: 1, Unreachable: 2, Busy: 3, Invalid: 4 } as const;
export type CloseReason = (typeof CloseReason)[keyof typeof CloseReason];

export type RelayEvent =
  /** The guest opened a connection to `address`:`port`; the agent takes `window` bytes ahead. */
  | { kind: 'tcp-connect'; session: number; address: string; port: number; window: number }
  | { kind: 'tcp-data'; session: number; data: Buffer }
  /** The guest's side sends no more (half-close). */
  | { kind: 'tcp-eof'; session: number }
  /** The agent takes more: `bytes` of credit. */
  | { kind: 'tcp-window'; session: number; bytes: number }
  /** The guest's side reset or failed; the connection is over. */
  | { kind: 'tcp-close'; session: number }
  | { kind: 'dns-query'; handle: number; message: Buffer }
  /** The guest's rules refused a datagram to `address`:`port`. */
  | { kind: 'udp-refused'; address: string; port: number };

export const RELAY_EVENT_KINDS = new Set<string>(['tcp-connect', 'tcp-data', 'tcp-eof', 'tcp-window', 'tcp-close', 'dns-query', 'udp-refused']);

export function isRelayFrame(type: number): boolean {
  return type >= 0x30 && type <= 0x3f;
}

interface Relayed {
  connected: boolean;
  /** Bytes this side may still send (the agent's window). */
  toGuest: number;
  /** Bytes the agent may still send (this side's window). */
  fromGuest: number;
  guestEnded: boolean;
  hostEnded: boolean;
}

/** A destination as the agent encodes it: u16 port, then 4 or 16 address bytes. */
export function decodeDestination(p: Buffer): { address: string; port: number } | null {
  if (p.length !== 6 && p.length !== 18) return null;
  const port = p.readUInt16BE(0);
  const a = p.subarray(2);
  if (a.length === 4) return { address: [...a].join('.'), port };
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(a.readUInt16BE(i).toString(16));
  return { address: groups.join(':'), port };
}

export function encodeDestination(address: string, port: number): Buffer {
  const p = Buffer.alloc(2);
  p.writeUInt16BE(port);
  if (!address.includes(':')) return Buffer.concat([p, Buffer.from(address.split('.').map(Number))]);
  const halves = address.split('::');
  const part = (s: string) => (s ? s.split(':') : []);
  const head = part(halves[0]);
  const tail = halves.length > 1 ? part(halves[1]) : [];
  const groups = [...head, ...Array(8 - head.length - tail.length).fill('0'), ...tail];
  const b = Buffer.alloc(16);
  groups.forEach((g, i) => b.writeUInt16BE(parseInt(g, 16), i * 2));
  return Buffer.concat([p, b]);
}

export class RelayProtocol {
  private conns = new Map<number, Relayed>();
  /** The highest agent id opened in this epoch (0: none yet). */
  private highest = 0;

  /** A new epoch: nothing is open and ids start again. */
  reset(): void {
    this.conns.clear();
    this.highest = 0;
  }

  /**
   * The epoch goes on but every relayed connection ended (the agent resets them at any HELLO):
   * their late frames are dropped, and new ids keep counting up.
   */
  dropAll(): void {
    this.conns.clear();
  }

  get openCount(): number {
    return this.conns.size;
  }

  /** One frame from the agent, of a relay type: its event, or null when it is dropped. */
  frame(f: Frame): RelayEvent | null {
    const bad = (why: string): never => {
      throw new AgentProtocolError(`malformed relay frame 0x${f.type.toString(16)} from the guest (session ${f.session >>> 0}): ${why}`);
    };
    const session = f.session >>> 0;
    const p = f.payload;
    switch (f.type) {
      case FrameType.DnsQuery:
        if (session !== 0 || p.length < 3) bad('DNS_QUERY wants session 0, a handle and a message');
        return { kind: 'dns-query', handle: p.readUInt16BE(0), message: p.subarray(2) };
      case FrameType.UdpRefused: {
        if (session !== 0) bad('UDP_REFUSED wants session 0');
        const d = decodeDestination(p) ?? bad('not a destination');
        return { kind: 'udp-refused', ...d };
      }
      case FrameType.TcpConnect: {
        if ((session & AGENT_SESSION_BIT) === 0 || session === AGENT_SESSION_BIT) bad('not an id the agent may open');
        if (session <= this.highest) bad(`id not above ${this.highest >>> 0}, the highest of this epoch`);
        if (this.conns.size >= MAX_RELAYED) bad(`more than ${MAX_RELAYED} relayed connections at once`);
        if (p.length < 4) bad('too short');
        const window = p.readUInt32BE(0);
        if (window < 1 || window > MAX_CREDIT) bad(`a window of ${window}`);
        const d = decodeDestination(p.subarray(4)) ?? bad('not a destination');
        this.highest = session;
        this.conns.set(session, { connected: false, toGuest: window, fromGuest: EARLY_WINDOW, guestEnded: false, hostEnded: false });
        return { kind: 'tcp-connect', session, address: d.address, port: d.port, window };
      }
      case FrameType.TcpData:
      case FrameType.TcpEof:
      case FrameType.TcpWindow:
      case FrameType.TcpClose:
        break;
      default:
        bad('not a type the agent sends');
    }
    if ((session & AGENT_SESSION_BIT) === 0) bad('not an agent session');
    const c = this.conns.get(session);
    if (!c) {
      if (session <= this.highest) return null; // it crossed this side's end of the connection
      bad('no such connection');
    }
    const s = c!;
    switch (f.type) {
      case FrameType.TcpData:
        if (s.guestEnded || p.length === 0) bad('not expected now');
        if (p.length > s.fromGuest) bad(`${p.length} bytes exceed the window of ${s.fromGuest}`);
        s.fromGuest -= p.length;
        return { kind: 'tcp-data', session, data: p };
      case FrameType.TcpEof:
        if (s.guestEnded || p.length !== 0) bad('not expected now');
        s.guestEnded = true;
        if (s.hostEnded) this.conns.delete(session);
        return { kind: 'tcp-eof', session };
      case FrameType.TcpWindow: {
        if (!s.connected || p.length !== 4) bad('not expected now');
        const bytes = p.readUInt32BE(0);
        if (bytes === 0 || s.toGuest + bytes > MAX_CREDIT) bad(`a grant of ${bytes} bytes`);
        s.toGuest += bytes;
        return { kind: 'tcp-window', session, bytes };
      }
      default:
        // TcpClose: a reason byte (the agent sends only Reset) and a short message
        if (p.length < 1 || p.length > 1 + MAX_CLOSE_MESSAGE) bad('wants a reason and a short message');
        this.conns.delete(session);
        return { kind: 'tcp-close', session };
    }
  }

  /** The connection is open: the agent may send `window` bytes more (on top of its early window). */
  connected(session: number, window = RELAY_WINDOW - EARLY_WINDOW): Buffer {
    const s = this.conns.get(session);
    if (!s || s.connected) throw new Error(`relayed connection ${session >>> 0} is not waiting to be connected`);
    if (!Number.isInteger(window) || window < 1 || s.fromGuest + window > MAX_CREDIT) throw new RangeError(`invalid window ${window}`);
    s.connected = true;
    s.fromGuest += window;
    const p = Buffer.alloc(4);
    p.writeUInt32BE(window);
    return encodeFrame(FrameType.TcpConnected, session, p);
  }

  /** Bytes this side may send on `session` now. */
  credit(session: number): number {
    const s = this.conns.get(session);
    return s && s.connected && !s.hostEnded ? s.toGuest : 0;
  }

  /** DATA frames for `data`, which must fit the credit. */
  data(session: number, data: Buffer): Buffer[] {
    const s = this.mustBeOpen(session);
    if (s.hostEnded) throw new Error(`relayed connection ${session >>> 0} has ended its data`);
    if (data.length > s.toGuest) throw new Error(`${data.length} bytes exceed the credit of ${s.toGuest}`);
    s.toGuest -= data.length;
    const frames: Buffer[] = [];
    for (let at = 0; at < data.length; at += MAX_PAYLOAD) frames.push(encodeFrame(FrameType.TcpData, session, data.subarray(at, at + MAX_PAYLOAD)));
    return frames;
  }

  /** This side sends no more (the destination ended its side). */
  eof(session: number): Buffer {
    const s = this.mustBeOpen(session);
    if (s.hostEnded) throw new Error(`relayed connection ${session >>> 0} already ended its data`);
    s.hostEnded = true;
    if (s.guestEnded) this.conns.delete(session);
    return encodeFrame(FrameType.TcpEof, session);
  }

  /** Gives the agent `bytes` more credit (after they were written on). */
  window(session: number, bytes: number): Buffer {
    const s = this.mustBeOpen(session);
    if (!Number.isInteger(bytes) || bytes <= 0 || s.fromGuest + bytes > MAX_CREDIT) throw new RangeError(`invalid grant of ${bytes} bytes`);
    s.fromGuest += bytes;
    const p = Buffer.alloc(4);
    p.writeUInt32BE(bytes);
    return encodeFrame(FrameType.TcpWindow, session, p);
  }

  /** Ends the connection at once: refused before it opened, or reset after; null if it is already over. */
  close(session: number, reason: CloseReason, message = ''): Buffer | null {
    if (!this.conns.delete(session)) return null;
    const text = Buffer.from(message, 'utf8').subarray(0, MAX_CLOSE_MESSAGE);
    return encodeFrame(FrameType.TcpClose, session, Buffer.concat([Buffer.from([reason]), text]));
  }

  /** The answer to the DNS_QUERY with `handle`. */
  dnsAnswer(handle: number, message: Uint8Array): Buffer {
    if (!Number.isInteger(handle) || handle < 0 || handle > 0xffff) throw new RangeError(`invalid handle ${handle}`);
    const p = Buffer.alloc(2 + message.length);
    p.writeUInt16BE(handle);
    p.set(message, 2);
    return encodeFrame(FrameType.DnsAnswer, 0, p);
  }

  private mustBeOpen(session: number): Relayed {
    const s = this.conns.get(session);
    if (!s || !s.connected) throw new Error(`relayed connection ${session >>> 0} is not open`);
    return s;
  }
}
