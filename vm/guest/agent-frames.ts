/**
 * The wire format of the Spritely guest agent (docs/guest-agent.md), without I/O: frames are
 * `u32 length | u8 type | u32 session | payload` (big-endian; `length` counts type, session and
 * payload), at most 64 KiB of payload. The decoder is the daemon's first line of defence against a
 * hostile guest: it buffers at most one frame, copies every byte at most once, refuses a length
 * out of range at once, and — while a HELLO is unanswered — drops everything up to the one
 * HELLO_ACK that echoes this connection's random nonce, so bytes a restored machine or an earlier
 * connection left in the pipe can never be mistaken for answers.
 */

/** Version 2 added the HELLO's resume field (docs/guest-agent.md, "Resuming an epoch"); version 3 the network relay (0x30-0x3f: agent-relay-protocol.ts). */
export const PROTOCOL_VERSION = 3;
export const HEADER_BYTES = 9;
export const MAX_PAYLOAD = 64 * 1024;
/** The largest value the length field may hold (type + session + payload). */
export const MAX_FRAME_LENGTH = 5 + MAX_PAYLOAD;
export const HELLO_MAGIC = Buffer.from('SPRITELY', 'latin1');
export const NONCE_BYTES = 16;
/** How many bytes the decoder drops while hunting for the HELLO_ACK before it gives up. */
export const MAX_HUNT_BYTES = 16 * 1024 * 1024;

export const FrameType = {
  Hello: 0x01,
  HelloAck: 0x02,
  Ping: 0x03,
  Pong: 0x04,
  Announce: 0x05,
  Fault: 0x06,
  Exec: 0x10,
  Pty: 0x11,
  Opened: 0x12,
  Data: 0x13,
  Eof: 0x14,
  Window: 0x15,
  Signal: 0x16,
  Resize: 0x17,
  Close: 0x18,
  Exit: 0x19,
  Error: 0x1a,
  Identity: 0x20,
  Result: 0x21,
  // the network relay (agent-relay-protocol.ts)
  TcpConnect: 0x30,
  TcpConnected: 0x31,
  TcpData: 0x32,
  TcpEof: 0x33,
  TcpWindow: 0x34,
  TcpClose: 0x35,
  DnsQuery: 0x38,
  DnsAnswer: 0x39,
  UdpRefused: 0x3a,
} as const;

/** Stream numbers inside DATA, EOF and WINDOW. A pty's output is `Stdout`. */
export const Stream = { Stdin: 0, Stdout: 1, Stderr: 2 } as const;

export interface Frame {
  type: number;
  session: number;
  payload: Buffer;
}

export class AgentProtocolError extends Error {
  override name = 'AgentProtocolError';
}

const EMPTY = Buffer.alloc(0);

export function encodeFrame(type: number, session: number, payload: Buffer = EMPTY): Buffer {
  if (payload.length > MAX_PAYLOAD) throw new RangeError(`frame payload of ${payload.length} bytes exceeds ${MAX_PAYLOAD}`);
  if (!Number.isInteger(session) || session < 0 || session > 0xffffffff) throw new RangeError(`invalid session id ${session}`);
  const b = Buffer.allocUnsafe(HEADER_BYTES + payload.length);
  b.writeUInt32BE(5 + payload.length, 0);
  b[4] = type;
  b.writeUInt32BE(session, 5);
  payload.copy(b, HEADER_BYTES);
  return b;
}

/**
 * HELLO: magic, this connection's nonce, the version, and (version 2) the nonce of the epoch to
 * resume — zeros for a new epoch.
 */
export function helloFrame(nonce: Buffer, version = PROTOCOL_VERSION, resume: Buffer | null = null): Buffer {
  if (nonce.length !== NONCE_BYTES || (resume && resume.length !== NONCE_BYTES)) throw new RangeError(`a nonce has ${NONCE_BYTES} bytes`);
  const v = Buffer.alloc(2);
  v.writeUInt16BE(version);
  const parts = [HELLO_MAGIC, nonce, v];
  if (version >= 2) parts.push(resume ?? Buffer.alloc(NONCE_BYTES));
  return encodeFrame(FrameType.Hello, 0, Buffer.concat(parts));
}

/**
 * Zero bytes the host sends before a retried HELLO: enough to complete any frame the agent may
 * have half-read from an earlier connection, after which the zeros read as an invalid length and
 * the agent hunts for the HELLO.
 */
export function flushBytes(): Buffer {
  return Buffer.alloc(4 + MAX_FRAME_LENGTH + HEADER_BYTES);
}

/** The bytes a HELLO_ACK for `nonce` starts with after its length: type, session 0, nonce. */
function ackSignature(nonce: Buffer): Buffer {
  return Buffer.concat([Buffer.from([FrameType.HelloAck, 0, 0, 0, 0]), nonce]);
}

/**
 * Bytes in, frames out. Hunting (after `expectAck`) drops input until the HELLO_ACK for that
 * nonce; then it parses frames strictly. Throws AgentProtocolError on a length out of range or
 * too much garbage; the caller closes the channel then.
 */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private head = 0; // chunks before this index are consumed (an index, not shift(): linear time)
  private offset = 0; // into chunks[head]
  private buffered = 0;
  private signature: Buffer | null = null;
  private huntTail: Buffer = EMPTY;
  private dropped = 0;

  constructor(private readonly maxHuntBytes = MAX_HUNT_BYTES) {}

  /** Drops everything and waits for the HELLO_ACK that echoes `nonce`. */
  expectAck(nonce: Buffer): void {
    this.chunks = [];
    this.head = 0;
    this.offset = 0;
    this.buffered = 0;
    this.signature = ackSignature(nonce);
    this.huntTail = EMPTY;
    this.dropped = 0;
  }

  get hunting(): boolean {
    return this.signature !== null;
  }

  /** Bytes held: at most one partial frame (or a hunting tail). */
  get bufferedBytes(): number {
    return this.buffered + this.huntTail.length;
  }

  /** Bytes dropped while hunting for the current HELLO_ACK. */
  get droppedBytes(): number {
    return this.dropped;
  }

  push(chunk: Buffer): Frame[] {
    if (this.signature) {
      const rest = this.hunt(chunk);
      if (!rest) return [];
      chunk = rest;
    }
    if (chunk.length) {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
    }
    const out: Frame[] = [];
    while (this.buffered >= HEADER_BYTES) {
      const header = this.peek(HEADER_BYTES);
      const length = header.readUInt32BE(0);
      if (length < 5 || length > MAX_FRAME_LENGTH) {
        throw new AgentProtocolError(`the guest sent a frame length of ${length} (allowed: 5 to ${MAX_FRAME_LENGTH})`);
      }
      if (this.buffered < 4 + length) break;
      this.skip(HEADER_BYTES);
      out.push({ type: header[4], session: header.readUInt32BE(5), payload: this.take(length - 5) });
    }
    return out;
  }

  /** Scans for the ack signature; returns the stream from the ack's length field on, or null. */
  private hunt(chunk: Buffer): Buffer | null {
    const sig = this.signature!;
    const hay = this.huntTail.length ? Buffer.concat([this.huntTail, chunk]) : chunk;
    const at = hay.indexOf(sig, 4);
    if (at >= 4) {
      this.dropped += at - 4;
      this.signature = null;
      this.huntTail = EMPTY;
      return hay.subarray(at - 4);
    }
    const keep = Math.min(hay.length, sig.length + 3);
    this.dropped += hay.length - keep;
    this.huntTail = Buffer.from(hay.subarray(hay.length - keep));
    if (this.dropped > this.maxHuntBytes) {
      throw new AgentProtocolError(`no answer to HELLO within ${this.dropped} bytes from the guest`);
    }
    return null;
  }

  private peek(n: number): Buffer {
    const first = this.chunks[this.head];
    if (first.length - this.offset >= n) return first.subarray(this.offset, this.offset + n);
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    let off = this.offset;
    for (let i = this.head; filled < n; i++) {
      const c = this.chunks[i];
      const k = Math.min(n - filled, c.length - off);
      c.copy(out, filled, off, off + k);
      filled += k;
      off = 0;
    }
    return out;
  }

  private advance(): void {
    this.head++;
    this.offset = 0;
    if (this.head === this.chunks.length) {
      this.chunks = [];
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.chunks.length) {
      this.chunks = this.chunks.slice(this.head);
      this.head = 0;
    }
  }

  private skip(n: number): void {
    this.take(n);
  }

  private take(n: number): Buffer {
    if (n === 0) return EMPTY;
    this.buffered -= n;
    const first = this.chunks[this.head];
    if (first.length - this.offset >= n) {
      const out = first.subarray(this.offset, this.offset + n);
      this.offset += n;
      if (this.offset === first.length) this.advance();
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const c = this.chunks[this.head];
      const k = Math.min(n - filled, c.length - this.offset);
      c.copy(out, filled, this.offset, this.offset + k);
      filled += k;
      this.offset += k;
      if (this.offset === c.length) this.advance();
    }
    return out;
  }
}
