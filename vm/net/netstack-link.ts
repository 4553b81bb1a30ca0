/**
 * The daemon's end of a sprite's host network stack (docs/network.md "the host network stack"): a
 * helper beside QEMU runs a user-space TCP/IP stack on the guest's second NIC, terminates every
 * guest TCP connection and UDP datagram there, and asks here what to do, over one unix socket per
 * sprite. Each connection the helper opens starts with one line: `TCP a.b.c.d port` (one guest
 * connection: the sprite's network decides, and on `OK` the bytes are piped both ways, half-close
 * and backpressure kept) or `CTL` (binary frames: DNS queries and answers, refused datagrams). The
 * helper speaks for the guest, so all of it is parsed strictly and bounded, and a bad connection
 * closes alone. The decisions are the sprite's network's (vm/net/sprite-network.ts), passed in.
 */
import fs from 'node:fs';
import net, { type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { safeText } from '../safe-text.ts';
import { listenPrivate } from './private-socket.ts';
import type { GuestNetwork } from './sprite-network.ts';

export interface NetstackLinkOptions {
  socketPath: string;
  network: GuestNetwork;
  log?: (line: string) => void;
  /** How long a new connection has to send its first line (default HEADER_TIMEOUT_MS). */
  headerTimeoutMs?: number;
}

/** The first line's most bytes, its newline included. */
export const HEADER_MAX_BYTES = 64;
export const HEADER_TIMEOUT_MS = 10_000;
/** A `NO kind message` line's most bytes, its newline included. */
export const REPLY_MAX_BYTES = 1024;
/** CTL frames: type u8 | tag u32 BE | length u16 BE | payload[length]. */
export const FRAME_HEADER_BYTES = 7;
export const FRAME_MAX_PAYLOAD = 0xffff;
export const FRAME_DNS_QUERY = 1;
export const FRAME_DNS_ANSWER = 2;
export const FRAME_UDP_REFUSED = 3;
/** DNS queries being answered at once per CTL connection; more are dropped (the guest's resolver asks again). */
export const MAX_DNS_IN_FLIGHT = 256;
/** Bytes a TCP connection may send before the network has decided; past this it is no longer read until then. */
export const EARLY_MAX_BYTES = 64 * 1024;
/** How long a refused connection may stay open after its NO line, for the helper to read it. */
const LINGER_MS = 2000;
const EMPTY = Buffer.alloc(0);

export type Header = { kind: 'tcp'; address: string; port: number } | { kind: 'ctl' } | { kind: 'invalid'; why: string; reply: boolean };

const OCTET = '(?:0|[1-9]\\d{0,2})';
const TCP_LINE = new RegExp(`^TCP (${OCTET}(?:\\.${OCTET}){3}) ([1-9]\\d{0,4})$`);

/**
 * A connection's first line, as read (latin1: one character per byte), newline included.
 * `invalid` with `reply`: a TCP line the helper is told is wrong (`NO invalid`); without: not
 * this protocol at all, the connection is dropped.
 */
export function parseHeader(line: string): Header {
  if (line.length > HEADER_MAX_BYTES || (line.length === HEADER_MAX_BYTES && !line.endsWith('\n'))) return { kind: 'invalid', why: `a first line over ${HEADER_MAX_BYTES} bytes`, reply: false };
  if (line.indexOf('\n') !== line.length - 1) return { kind: 'invalid', why: 'a first line without its newline', reply: false };
  const body = line.slice(0, -1);
  if (body === 'CTL') return { kind: 'ctl' };
  if (body !== 'TCP' && !body.startsWith('TCP ')) return { kind: 'invalid', why: `an unknown first line "${safeText(body)}"`, reply: false };
  const m = TCP_LINE.exec(body);
  if (!m || m[1].split('.').some((o) => Number(o) > 255) || Number(m[2]) > 65535) {
    return { kind: 'invalid', why: `"${safeText(body)}" is not "TCP <IPv4 address> <port 1-65535>"`, reply: true };
  }
  return { kind: 'tcp', address: m[1], port: Number(m[2]) };
}

/** `NO kind message\n`: the message on one printable line, the whole cut to REPLY_MAX_BYTES. */
export function replyLine(kind: string, message: string): string {
  const head = `NO ${kind} `;
  const budget = REPLY_MAX_BYTES - Buffer.byteLength(head) - 1;
  let text = safeText(message.replace(/[\r\n]+/g, ' '), { maxChars: REPLY_MAX_BYTES });
  if (Buffer.byteLength(text) > budget) {
    let cut = '';
    for (const ch of text) {
      if (Buffer.byteLength(cut + ch) > budget - 3) break;
      cut += ch;
    }
    text = `${cut}…`;
  }
  return `${head}${text}\n`;
}

export function encodeFrame(type: number, tag: number, payload: Uint8Array): Buffer {
  if (payload.length > FRAME_MAX_PAYLOAD) throw new RangeError(`a frame payload of ${payload.length} bytes (at most ${FRAME_MAX_PAYLOAD})`);
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + payload.length);
  out.writeUInt8(type, 0);
  out.writeUInt32BE(tag >>> 0, 1);
  out.writeUInt16BE(payload.length, 5);
  out.set(payload, FRAME_HEADER_BYTES);
  return out;
}

/** What is wrong with a frame the helper announces, or null; known from its header alone. */
function frameProblem(type: number, length: number): string | null {
  if (type === FRAME_DNS_QUERY) return length === 0 ? 'an empty DNS query frame' : null;
  if (type === FRAME_UDP_REFUSED) return length === 6 ? null : `a refused-datagram frame of ${length} bytes (6)`;
  if (type === FRAME_DNS_ANSWER) return 'a DNS answer frame (only the daemon sends those)';
  return `a frame of unknown type ${type}`;
}

/** Splits the helper's CTL bytes into frames, holding at most one frame's. Sans-IO. */
export class CtlFrameReader {
  failed: string | null = null;
  private head = Buffer.alloc(FRAME_HEADER_BYTES);
  private headLen = 0;
  private payload: Buffer | null = null;
  private got = 0;

  /** The whole frames `chunk` completes, in order; after a failure (see `failed`), nothing more. */
  push(chunk: Buffer): { type: number; tag: number; payload: Buffer }[] {
    const out: { type: number; tag: number; payload: Buffer }[] = [];
    let i = 0;
    while (!this.failed && (i < chunk.length || this.payload)) {
      if (!this.payload) {
        const n = Math.min(FRAME_HEADER_BYTES - this.headLen, chunk.length - i);
        chunk.copy(this.head, this.headLen, i, i + n);
        this.headLen += n;
        i += n;
        if (this.headLen < FRAME_HEADER_BYTES) break;
        this.failed = frameProblem(this.head[0], this.head.readUInt16BE(5));
        if (this.failed) break;
        this.payload = Buffer.allocUnsafe(this.head.readUInt16BE(5));
        this.got = 0;
      }
      const n = Math.min(this.payload.length - this.got, chunk.length - i);
      chunk.copy(this.payload, this.got, i, i + n);
      this.got += n;
      i += n;
      if (this.got < this.payload.length) break;
      out.push({ type: this.head[0], tag: this.head.readUInt32BE(1), payload: this.payload });
      this.payload = null;
      this.headLen = 0;
    }
    return out;
  }
}

export class NetstackLink {
  private readonly server = net.createServer({ allowHalfOpen: true }, (s) => this.accept(s));
  /** Every socket it has: the helper's connections and the destinations they are piped to. */
  private readonly sockets = new Set<Socket>();
  private readonly piped = new Set<Socket>();
  private closed = false;

  constructor(private readonly opts: NetstackLinkOptions) {}

  /** Helper connections answered OK and piped now (to a destination or the DNS stream server). */
  get open(): number {
    return this.piped.size;
  }

  listen(): Promise<void> {
    return listenPrivate(this.server, this.opts.socketPath);
  }

  close(): void {
    this.closed = true;
    this.server.close();
    for (const s of this.sockets) cut(s);
    fs.rmSync(this.opts.socketPath, { force: true });
  }

  private log(line: string): void {
    this.opts.log?.(`netstack: ${line}`);
  }

  private track(s: Socket): Socket {
    this.sockets.add(s);
    s.on('error', () => {}); // 'close' follows
    s.once('close', () => this.sockets.delete(s));
    return s;
  }

  private accept(s: Socket): void {
    if (this.closed) return void s.destroy();
    this.track(s);
    let head = EMPTY;
    const ms = this.opts.headerTimeoutMs ?? HEADER_TIMEOUT_MS;
    const timer = setTimeout(() => {
      this.log(`a connection sent no complete first line in ${ms} ms; closed it`);
      s.destroy();
    }, ms);
    s.once('close', () => clearTimeout(timer));
    const onEnd = () => s.destroy();
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const nl = head.indexOf(0x0a);
      if (nl < 0 && head.length < HEADER_MAX_BYTES) return;
      clearTimeout(timer);
      s.off('data', onData).off('end', onEnd);
      const line = head.subarray(0, Math.min(nl < 0 ? head.length : nl + 1, HEADER_MAX_BYTES + 1)).toString('latin1');
      const rest = nl < 0 ? EMPTY : head.subarray(nl + 1);
      const header = parseHeader(line);
      // the next listener is attached in this same turn: the socket still flows
      if (header.kind === 'ctl') return this.control(s, rest);
      if (header.kind === 'tcp') return void this.connect(s, header.address, header.port, rest);
      this.log(`a connection sent ${header.why}; closed it`);
      if (header.reply) this.refuse(s, 'invalid', `spritely: ${header.why}`);
      else s.destroy();
    };
    s.on('data', onData).on('end', onEnd);
  }

  /**
   * One guest connection: asks the network, then answers one line and pipes. The helper must not
   * end its side before it has the answer: an end then is taken as the helper giving up.
   */
  private async connect(s: Socket, address: string, port: number, rest: Buffer): Promise<void> {
    const early = rest.length ? [rest] : [];
    let earlyBytes = rest.length;
    const abort = new AbortController();
    const onData = (chunk: Buffer) => {
      early.push(chunk);
      if ((earlyBytes += chunk.length) >= EARLY_MAX_BYTES) s.pause();
    };
    const onEnd = () => s.destroy();
    const onClose = () => abort.abort();
    s.on('data', onData).on('end', onEnd).once('close', onClose);
    if (earlyBytes >= EARLY_MAX_BYTES) s.pause();
    let r: Awaited<ReturnType<GuestNetwork['tcp']>>;
    try {
      r = await this.opts.network.tcp({ address, port, signal: abort.signal });
    } catch (err) {
      r = { ok: false, kind: 'unreachable', message: `spritely: ${address}:${port}: ${message(err)}` };
    }
    s.pause();
    s.off('data', onData).off('end', onEnd).off('close', onClose);
    if (s.destroyed) return void (r.ok === true && r.socket.destroy());
    if (r.ok === false) return this.refuse(s, r.kind, r.message);
    s.write('OK\n');
    if (early.length) s.unshift(Buffer.concat(early)); // what came with the request goes first
    this.piped.add(s);
    s.once('close', () => this.piped.delete(s));
    if (r.ok === 'dns') {
      const served = (async () => this.opts.network.dnsStream(s))(); // called now: a throw becomes a rejection
      s.resume(); // its listeners are on: let the bytes flow
      served.catch((err) => this.log(`DNS over TCP failed: ${message(err)}`)).finally(() => s.destroy());
      return;
    }
    join(s, this.track(r.socket));
  }

  /** Sends the NO line and ends; what the helper sends meanwhile is read and dropped. */
  private refuse(s: Socket, kind: string, message: string): void {
    s.end(replyLine(kind, message));
    s.resume();
    const linger = setTimeout(() => s.destroy(), LINGER_MS).unref();
    s.once('close', () => clearTimeout(linger));
  }

  /** The helper's control stream: DNS queries answered (bounded in flight), refused datagrams recorded. */
  private control(s: Socket, rest: Buffer): void {
    const reader = new CtlFrameReader();
    const inFlight = { n: 0 };
    const onData = (chunk: Buffer) => {
      for (const f of reader.push(chunk)) {
        if (f.type === FRAME_DNS_QUERY) {
          if (inFlight.n < MAX_DNS_IN_FLIGHT) void this.query(s, f.tag, f.payload, inFlight);
        } else {
          const p = f.payload;
          try {
            this.opts.network.udp({ address: `${p[0]}.${p[1]}.${p[2]}.${p[3]}`, port: p.readUInt16BE(4) });
          } catch (err) {
            this.log(`a refused datagram was not recorded: ${message(err)}`);
          }
        }
      }
      if (reader.failed) {
        this.log(`the control stream sent ${safeText(reader.failed)}; closed it`);
        s.destroy();
      }
    };
    s.on('data', onData).on('end', () => s.end());
    if (rest.length) onData(rest);
  }

  /** One DNS query: its slot is held until the answer is written out, so unread answers stay bounded. */
  private async query(s: Socket, tag: number, payload: Buffer, inFlight: { n: number }): Promise<void> {
    inFlight.n++;
    try {
      const answer = await this.opts.network.answerDns(payload);
      if (!answer || !s.writable) return;
      if (answer.length === 0 || answer.length > FRAME_MAX_PAYLOAD) return this.log(`a DNS answer of ${answer.length} bytes was not sent (1 to ${FRAME_MAX_PAYLOAD})`);
      await new Promise<void>((resolve) => s.write(encodeFrame(FRAME_DNS_ANSWER, tag, answer), () => resolve()));
    } catch (err) {
      this.log(`a DNS query was not answered: ${message(err)}`);
    } finally {
      inFlight.n--;
    }
  }
}

/**
 * Pipes the helper's connection and the destination both ways with backpressure: an end travels
 * on as an end; a side that closes before both of its ways ended cuts the other.
 */
function join(helper: Socket, dest: Socket): void {
  dest.allowHalfOpen = true;
  if (dest.destroyed) return void helper.destroy();
  for (const [from, to] of [[helper, dest], [dest, helper]] as const) {
    from.pipe(to);
    from.once('close', () => {
      if (!from.readableEnded || !from.writableFinished) cut(to);
    });
  }
}

/** Closes a socket now: a TCP one with a reset (a cut connection must not look complete), a unix one plainly. */
function cut(s: Socket): void {
  try {
    s.resetAndDestroy();
  } catch {
    s.destroy(); // not a TCP socket
  }
}

/** An error's message, safe for a log line. */
function message(err: unknown): string {
  return safeText(err instanceof Error ? err.message : String(err));
}
