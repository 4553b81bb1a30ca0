/**
 * The daemon's side of the guest agent protocol without I/O (docs/guest-agent.md): requests in,
 * bytes to write out; bytes in, events out. Everything the agent sends is hostile input (a guest
 * owns that program), so every frame is checked against what this side asked for — its type and
 * direction, its session, the state of that session, the exact payload shape, and the credit the
 * agent was given. Anything else throws AgentProtocolError; the caller closes the channel, logs
 * once and starts a new epoch. The payloads' shapes are agent-payloads.ts; the socket shell around
 * it is agent-client.ts.
 *
 * An epoch can also be resumed (`resumeHello`): after the machine was saved and restored exactly
 * (sleep and wake), the byte stream from the agent simply goes on on the new connection — the
 * decoder keeps its state, the sessions keep their credit — and the HELLO_ACK arrives in it,
 * saying which sessions the agent still has.
 */
import crypto from 'node:crypto';
import {
  AgentProtocolError, encodeFrame, FrameDecoder, FrameType, helloFrame, MAX_PAYLOAD, NONCE_BYTES, PROTOCOL_VERSION, Stream,
  type Frame,
} from './agent-frames.ts';
import { isRelayFrame, RelayProtocol, type RelayEvent } from './agent-relay-protocol.ts';
import {
  AgentInfo, ErrorReply, Exit, Fault, identityBody, IdentityResult, json, MAX_CREDIT, MAX_SESSIONS, Opened,
  type AgentEvent, type AgentIdentity, type ExecRequest, type PtyRequest,
} from './agent-payloads.ts';

// the payloads' types and limits are part of this module's API
export { MAX_CREDIT, MAX_SESSIONS };
export type { AgentEvent, AgentIdentity, AgentInfo, ExecRequest, IdentityResult, PtyRequest };

/** Output the agent may send per stream before the host grants more (bytes). */
export const DEFAULT_WINDOW = 256 * 1024;
const MAX_PINGS = 64;

export class AgentVersionError extends AgentProtocolError {
  override name = 'AgentVersionError';
}

type SessionKind = 'exec' | 'pty' | 'identity';
interface SessionState {
  kind: SessionKind;
  state: 'opening' | 'open' | 'closing';
  /** Bytes the agent may still send, per output stream. */
  outCredit: [number, number];
  ended: [boolean, boolean];
  /** Bytes this side may still send on stdin. */
  stdinCredit: number;
  window: number;
}

const SIGNAL_NAME = /^[A-Z][A-Z0-9]{0,15}$/;

export class AgentProtocol {
  private decoder = new FrameDecoder();
  private sessions = new Map<number, SessionState>();
  private nextSession = 1;
  private pings = new Set<string>();
  private nonce: Buffer | null = null;
  private isReady = false;
  /** The network relay of this epoch: its frames are checked and built there. */
  readonly relay = new RelayProtocol();
  /** The nonce of the HELLO that started this epoch: what a resume names. */
  private epochNonce: Buffer | null = null;
  private resuming = false;

  /** A new epoch: forgets every session and returns the HELLO to send. */
  hello(nonce: Buffer = crypto.randomBytes(NONCE_BYTES)): Buffer {
    this.sessions.clear();
    this.pings.clear();
    this.relay.reset();
    this.isReady = false;
    this.resuming = false;
    this.nonce = nonce;
    this.epochNonce = nonce;
    this.decoder.expectAck(nonce);
    return helloFrame(nonce);
  }

  /**
   * Asks to go on with this epoch on a new connection to the same (saved and restored) agent:
   * sessions, credit and the decoder's state are kept, and the answer is expected in-stream,
   * after whatever the agent had queued. Only for a stream known to be whole: nothing was sent
   * after the last frame the agent answered (see AgentClient.suspend).
   */
  resumeHello(nonce: Buffer = crypto.randomBytes(NONCE_BYTES)): Buffer {
    if (!this.epochNonce || !this.isReady) throw new Error('no epoch to resume');
    this.pings.clear();
    this.resuming = true;
    this.nonce = nonce;
    return helloFrame(nonce, PROTOCOL_VERSION, this.epochNonce);
  }

  get ready(): boolean {
    return this.isReady && !this.resuming;
  }

  /** Waiting for the answer to a resume. */
  get isResuming(): boolean {
    return this.resuming;
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  /** Session ids this side has open (they all end when the epoch does). */
  openSessions(): number[] {
    return [...this.sessions.keys()];
  }

  /** Bytes dropped while waiting for the current HELLO_ACK (stale bytes from before). */
  get droppedBytes(): number {
    return this.decoder.droppedBytes;
  }

  receive(chunk: Buffer): AgentEvent[] {
    if (!this.nonce) throw new AgentProtocolError('the guest sent data before this side said HELLO');
    const out: AgentEvent[] = [];
    for (const f of this.decoder.push(chunk)) {
      const e = this.frame(f);
      if (e) out.push(e);
    }
    return out;
  }

  ping(token = crypto.randomBytes(8)): { token: string; bytes: Buffer } {
    this.mustBeReady();
    if (this.pings.size >= MAX_PINGS) throw new Error(`more than ${MAX_PINGS} pings unanswered`);
    const t = token.toString('hex');
    this.pings.add(t);
    return { token: t, bytes: encodeFrame(FrameType.Ping, 0, token) };
  }

  openExec(req: ExecRequest): { session: number; bytes: Buffer } {
    if (!req.argv.length) throw new Error('nothing to run: argv is empty');
    return this.open('exec', FrameType.Exec, { argv: req.argv, env: req.env, cwd: req.cwd, timeoutMs: req.timeoutMs, window: req.window }, req.window);
  }

  openPty(req: PtyRequest): { session: number; bytes: Buffer } {
    const { argv, env, cwd, term, cols, rows, timeoutMs, window } = req;
    return this.open('pty', FrameType.Pty, { argv, env, cwd, term, cols, rows, timeoutMs, window }, window);
  }

  identity(id: AgentIdentity): { session: number; bytes: Buffer } {
    return this.open('identity', FrameType.Identity, identityBody(id), 0);
  }

  /** Bytes of stdin this side may send now on `session`. */
  stdinCredit(session: number): number {
    return this.sessions.get(session)?.stdinCredit ?? 0;
  }

  /** DATA frames for stdin; `data` must fit the credit (see stdinCredit). */
  stdin(session: number, data: Buffer): Buffer[] {
    const s = this.mustOpen(session);
    if (data.length > s.stdinCredit) throw new Error(`stdin of ${data.length} bytes exceeds the credit of ${s.stdinCredit}`);
    s.stdinCredit -= data.length;
    const frames: Buffer[] = [];
    for (let at = 0; at < data.length; at += MAX_PAYLOAD - 1) {
      const piece = data.subarray(at, at + MAX_PAYLOAD - 1);
      frames.push(encodeFrame(FrameType.Data, session, Buffer.concat([Buffer.from([Stream.Stdin]), piece])));
    }
    return frames;
  }

  eof(session: number): Buffer {
    this.mustOpen(session);
    return encodeFrame(FrameType.Eof, session, Buffer.from([Stream.Stdin]));
  }

  /** Gives the agent `bytes` more output credit on `stream` (after they were consumed). */
  grant(session: number, stream: 1 | 2, bytes: number): Buffer {
    const s = this.mustOpen(session);
    if (!Number.isInteger(bytes) || bytes <= 0 || s.outCredit[stream - 1] + bytes > MAX_CREDIT) throw new RangeError(`invalid grant of ${bytes} bytes`);
    s.outCredit[stream - 1] += bytes;
    const p = Buffer.alloc(5);
    p[0] = stream;
    p.writeUInt32BE(bytes, 1);
    return encodeFrame(FrameType.Window, session, p);
  }

  signal(session: number, name: string): Buffer {
    this.mustOpen(session);
    const sig = name.replace(/^SIG/, '');
    if (!SIGNAL_NAME.test(sig)) throw new Error(`invalid signal name ${JSON.stringify(name)}`);
    return encodeFrame(FrameType.Signal, session, Buffer.from(sig, 'latin1'));
  }

  resize(session: number, cols: number, rows: number): Buffer {
    const s = this.mustOpen(session);
    if (s.kind !== 'pty') throw new Error('only a pty session has a size');
    const p = Buffer.alloc(4);
    p.writeUInt16BE(clamp(cols, 80, 1000), 0);
    p.writeUInt16BE(clamp(rows, 24, 500), 2);
    return encodeFrame(FrameType.Resize, session, p);
  }

  /** Ends the session: the agent kills its process group and answers with EXIT. */
  close(session: number): Buffer | null {
    const s = this.sessions.get(session);
    if (!s || s.kind === 'identity' || s.state === 'closing') return null;
    s.state = 'closing';
    return encodeFrame(FrameType.Close, session);
  }

  private open(kind: SessionKind, type: number, body: object, window: number | undefined): { session: number; bytes: Buffer } {
    this.mustBeReady();
    if (this.sessions.size >= MAX_SESSIONS) throw new Error(`too many open guest agent sessions (${MAX_SESSIONS})`);
    if (this.nextSession >= 2 ** 31) throw new Error('session ids exhausted in this epoch; reconnect');
    const w = kind === 'identity' ? 0 : (window ?? DEFAULT_WINDOW);
    if (kind !== 'identity' && (!Number.isInteger(w) || w < 1 || w > 16 * 1024 * 1024)) throw new RangeError(`invalid window ${w}`);
    const payload = Buffer.from(JSON.stringify(body), 'utf8');
    if (payload.length > MAX_PAYLOAD) throw new RangeError(`the request is ${payload.length} bytes; at most ${MAX_PAYLOAD} fit in one frame`);
    const session = this.nextSession++;
    this.sessions.set(session, { kind, state: 'opening', outCredit: [w, kind === 'pty' ? 0 : w], ended: [false, kind === 'pty'], stdinCredit: 0, window: w });
    return { session, bytes: encodeFrame(type, session, payload) };
  }

  private mustBeReady(): void {
    if (!this.ready) throw new Error('the guest agent channel is not ready (no HELLO answered)');
  }

  private mustOpen(session: number): SessionState {
    const s = this.sessions.get(session);
    if (!s || s.kind === 'identity' || s.state === 'opening') throw new Error(`guest agent session ${session} is not open`);
    return s;
  }

  private frame(f: Frame): AgentEvent | null {
    const bad = (why: string): never => {
      throw new AgentProtocolError(`malformed ${typeName(f.type)} frame from the guest (session ${f.session}): ${why}`);
    };
    if (!this.isReady || (this.resuming && f.type === FrameType.HelloAck)) {
      // the decoder hands over nothing before the ack that echoes our nonce (when resuming, the
      // ack comes in-stream, after the frames the agent had queued)
      if (f.type !== FrameType.HelloAck || f.session !== 0 || f.payload.length < NONCE_BYTES + 2) bad('expected HELLO_ACK');
      if (!f.payload.subarray(0, NONCE_BYTES).equals(this.nonce!)) bad('nonce mismatch');
      const version = f.payload.readUInt16BE(NONCE_BYTES);
      if (version !== PROTOCOL_VERSION) {
        throw new AgentVersionError(`the guest agent speaks protocol version ${version}; this daemon speaks ${PROTOCOL_VERSION} (the image and the daemon do not match: rebuild the image or update Spritely)`);
      }
      const info = json(f.payload.subarray(NONCE_BYTES + 2), AgentInfo, bad);
      const wasResuming = this.resuming;
      this.isReady = true;
      this.resuming = false;
      if (!wasResuming) {
        if (info.resumed) bad('resumed an epoch nobody asked to resume');
        return { kind: 'ready', info };
      }
      if (!info.resumed) {
        // the agent started a new epoch: everything of the old one is gone
        this.sessions.clear();
        this.relay.reset();
        this.epochNonce = this.nonce;
        return { kind: 'ready', info };
      }
      // the agent ends its relayed connections at every HELLO, resumed or not: their ids stay used
      this.relay.dropAll();
      const still = new Set(info.resumed);
      const gone = [...this.sessions.keys()].filter((id) => !still.has(id));
      for (const id of gone) this.sessions.delete(id);
      return { kind: 'resumed', info, gone };
    }
    if (f.type === FrameType.Pong || f.type === FrameType.Announce || f.type === FrameType.Fault) {
      if (f.session !== 0) bad('must be on session 0');
      if (f.type === FrameType.Pong) {
        const t = f.payload.toString('hex');
        if (f.payload.length !== 8 || !this.pings.delete(t)) bad('answers no ping');
        return { kind: 'pong', token: t };
      }
      this.isReady = false;
      if (f.type === FrameType.Announce) return { kind: 'announce', info: json(f.payload, AgentInfo, bad) };
      return { kind: 'fault', message: json(f.payload, Fault, bad).message };
    }
    if (isRelayFrame(f.type)) return this.relay.frame(f);
    const known = [FrameType.Opened, FrameType.Data, FrameType.Eof, FrameType.Window, FrameType.Exit, FrameType.Error, FrameType.Result] as number[];
    if (!known.includes(f.type)) bad(`type 0x${f.type.toString(16).padStart(2, '0')} is not one the agent sends in protocol ${PROTOCOL_VERSION}`);
    const s = this.sessions.get(f.session);
    if (!s) bad('no such session');
    const session = f.session;
    switch (f.type) {
      case FrameType.Opened: {
        if (s!.kind === 'identity' || s!.state !== 'opening') bad('not expected now');
        const o = json(f.payload, Opened, bad);
        s!.state = 'open';
        s!.stdinCredit = o.stdinWindow;
        return { kind: 'opened', session, pid: o.pid, stdinWindow: o.stdinWindow };
      }
      case FrameType.Data: {
        if (s!.kind === 'identity' || s!.state === 'opening') bad('not expected now');
        const stream = f.payload[0];
        if (f.payload.length < 2 || (stream !== Stream.Stdout && stream !== Stream.Stderr)) bad('needs a stream (1 or 2) and at least one byte');
        const i = stream - 1;
        if (s!.ended[i]) bad(`stream ${stream} has ended`);
        const n = f.payload.length - 1;
        if (n > s!.outCredit[i]) bad(`${n} bytes exceed the credit of ${s!.outCredit[i]}`);
        s!.outCredit[i] -= n;
        return { kind: 'data', session, stream: stream as 1 | 2, data: f.payload.subarray(1) };
      }
      case FrameType.Eof: {
        if (s!.kind === 'identity' || s!.state === 'opening') bad('not expected now');
        const stream = f.payload[0];
        if (f.payload.length !== 1 || (stream !== Stream.Stdout && stream !== Stream.Stderr) || s!.ended[stream - 1]) bad('needs an open output stream');
        s!.ended[stream - 1] = true;
        return { kind: 'eof', session, stream: stream as 1 | 2 };
      }
      case FrameType.Window: {
        if (s!.kind === 'identity' || s!.state === 'opening') bad('not expected now');
        if (f.payload.length !== 5 || f.payload[0] !== Stream.Stdin) bad('needs stream 0 and a u32');
        const bytes = f.payload.readUInt32BE(1);
        if (bytes === 0 || s!.stdinCredit + bytes > MAX_CREDIT) bad(`a grant of ${bytes} bytes`);
        s!.stdinCredit += bytes;
        return { kind: 'window', session, bytes };
      }
      case FrameType.Exit: {
        if (s!.kind === 'identity' || s!.state === 'opening') bad('not expected now');
        const e = json(f.payload, Exit, bad);
        this.sessions.delete(session);
        return { kind: 'exit', session, code: e.code, signal: e.signal, timedOut: e.timedOut };
      }
      case FrameType.Error: {
        if (s!.state !== 'opening' && !(s!.kind === 'identity')) bad('not expected now');
        const e = json(f.payload, ErrorReply, bad);
        this.sessions.delete(session);
        return { kind: 'error', session, code: e.code, message: e.message };
      }
      default: {
        // Result
        if (s!.kind !== 'identity') bad('not expected now');
        const result = json(f.payload, IdentityResult, bad);
        this.sessions.delete(session);
        return { kind: 'result', session, result };
      }
    }
  }
}

function clamp(v: number, dflt: number, max: number): number {
  const n = Math.floor(Number(v));
  return Number.isFinite(n) && n >= 1 ? Math.min(n, max) : dflt;
}

function typeName(type: number): string {
  const name = Object.entries(FrameType).find(([, v]) => v === type)?.[0];
  return name ? name.toUpperCase() : `0x${type.toString(16).padStart(2, '0')}`;
}
