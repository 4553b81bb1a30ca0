/**
 * One exec or pty session on the guest agent as a Node stream, shaped like an ssh2 channel so the
 * terminal manager and the exec socket can use either: the readable side is stdout (a pty's
 * output), `stderr` is a second readable, the writable side is stdin; `signal`, `setWindow`,
 * `close`, and the events `exit` (code, signal) and `close`. Flow control is the stream's own:
 * the agent may send a window of bytes per stream, and more is granted only as the consumer
 * reads — so a paused channel (FlowGate pausing it, a slow socket) holds the guest's process back
 * instead of growing memory here. Stdin waits for the credit the agent grants.
 */
import { Duplex, Readable } from 'node:stream';
import { MAX_PAYLOAD } from './agent-frames.ts';

/** The most stdin one DATA frame carries (its payload starts with the stream byte). */
const STDIN_FRAME_BYTES = MAX_PAYLOAD - 1;

/** What a channel needs from the client that owns the connection. */
export interface ChannelLink {
  /** Bytes of stdin the agent accepts now. */
  stdinCredit(session: number): number;
  sendStdin(session: number, data: Buffer): void;
  sendEof(session: number): void;
  grant(session: number, stream: 1 | 2, bytes: number): void;
  signal(session: number, name: string): void;
  resize(session: number, cols: number, rows: number): void;
  close(session: number): void;
}

export interface ExitInfo {
  code: number | null;
  signal: string | null;
  timedOut: boolean;
  /** Set when the session did not end by itself: the channel to the agent was lost. */
  lost?: string;
}

/**
 * Grants output credit for what the consumer has read, in steps of a quarter window: the agent then
 * always holds at least three quarters of a window minus what is unread here, so it never stalls
 * while this side has room, and WINDOW frames stay few. Consumption is observed in `read()` — every way of consuming a Readable
 * (flowing 'data', pipe, async iteration, read()) goes through it — and not in `_read`, which Node
 * calls before it takes the bytes out and then not again until the next push: granting there
 * would stall a stream whose window is exactly full.
 */
class OutputStream {
  private received = 0;
  private granted: number;

  constructor(
    private readonly window: number,
    private readonly onGrant: (bytes: number) => void,
    readonly readable: Readable,
  ) {
    this.granted = window;
  }

  push(data: Buffer): void {
    this.received += data.length;
    this.readable.push(data);
  }

  /** Keeps the agent's credit at one window minus what is still unread here. */
  maybeGrant(): void {
    const unread = this.readable.readableLength;
    const due = this.window + (this.received - unread) - this.granted;
    if (due > 0 && due >= this.window / 4) {
      this.granted += due;
      this.onGrant(due);
    }
  }
}

/** stderr: a Readable that reports its reads. */
class StderrReadable extends Readable {
  onRead: () => void = () => {};
  override read(size?: number): any {
    const r = super.read(size);
    this.onRead();
    return r;
  }
  override _read(): void {
    process.nextTick(() => this.onRead());
  }
}

export class AgentChannel extends Duplex {
  readonly stderr: Readable;
  pid: number | null = null;
  /** Resolves at 'close': after exit, and after stdout and stderr were read to their end (a stream
   * nobody ever read from is drained at exit). */
  readonly done: Promise<ExitInfo>;
  private out: OutputStream;
  private err: OutputStream;
  /**
   * Stdin accepted and not sent yet. `cb` is the writer's (null once called). `held`: less than a
   * frame, kept until the next write joins it or this turn of the event loop ends. Writes come as
   * they were read (a tar's 10 KiB records, 64 KiB pipe reads): sent one frame each, they cost the
   * guest a frame, a pipe write and its share of WINDOW frames apiece, and 64 KiB became a full
   * frame plus a 1-byte one.
   */
  private pending: { data: Buffer; cb: ((err?: Error | null) => void) | null; held: boolean } | null = null;
  private releaseHeld: NodeJS.Immediate | null = null;
  /** Sending a held tail: it goes, however small. */
  private releasing = false;
  private ending: { cb: (err?: Error | null) => void } | null = null;
  private exitInfo: ExitInfo | null = null;
  private openEnds = 2;
  private pushedEnd: [boolean, boolean] = [false, false];

  constructor(
    readonly session: number,
    readonly kind: 'exec' | 'pty',
    private readonly link: ChannelLink,
    window: number,
  ) {
    // autoDestroy off: 'close' comes after exit and after both stdout and stderr were read
    super({ allowHalfOpen: true, autoDestroy: false, readableHighWaterMark: window, writableHighWaterMark: 64 * 1024 });
    this.out = new OutputStream(window, (n) => this.link.grant(this.session, 1, n), this as Readable);
    const stderr = new StderrReadable({ highWaterMark: window });
    this.err = new OutputStream(window, (n) => this.link.grant(this.session, 2, n), stderr);
    stderr.onRead = () => this.err.maybeGrant();
    this.stderr = stderr;
    this.done = new Promise((resolve) => this.once('close', () => resolve(this.exitInfo ?? { code: null, signal: null, timedOut: false, lost: 'destroyed' })));
    const ended = () => {
      if (--this.openEnds === 0) this.destroy();
    };
    this.once('end', ended);
    this.stderr.once('end', ended);
    if (kind === 'pty') this.endStream(2);
  }

  override read(size?: number): any {
    const r = super.read(size);
    this.out?.maybeGrant();
    return r;
  }

  override _read(): void {
    process.nextTick(() => this.out.maybeGrant());
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.exitInfo) return cb(); // the process is gone: input is dropped, as a closed pipe would
    // only held stdin can be pending here (otherwise its writer's callback has not run yet)
    const data = this.pending ? Buffer.concat([this.pending.data, chunk]) : chunk;
    this.pending = { data, cb, held: false };
    this.flushStdin();
  }

  override _final(cb: (err?: Error | null) => void): void {
    if (this.exitInfo) return cb();
    this.ending = { cb };
    if (this.pending) this.pending.held = false;
    this.flushStdin();
  }

  /** Sends as much pending stdin as the agent's credit allows. */
  private flushStdin(): void {
    while (this.pending && !this.pending.held) {
      const credit = Math.min(this.link.stdinCredit(this.session), STDIN_FRAME_BYTES);
      if (credit <= 0) return;
      const { data, cb } = this.pending;
      if (data.length < STDIN_FRAME_BYTES && !this.ending && !this.releasing) {
        // less than a frame: wait for company until the end of this turn (see `pending`)
        this.pending = { data, cb: null, held: true };
        this.releaseHeld ??= setImmediate(() => {
          this.releaseHeld = null;
          if (this.pending?.held) {
            this.pending.held = false;
            this.releasing = true;
            this.flushStdin();
            this.releasing = false;
          }
        });
        cb?.();
        return;
      }
      const now = data.subarray(0, credit);
      const rest = now.length === data.length ? null : { data: data.subarray(now.length), cb, held: false };
      // settled before sending: an answer (WINDOW) can come back within the send and flush again
      this.pending = rest;
      this.link.sendStdin(this.session, now);
      if (!rest) cb?.();
    }
    if (this.ending && !this.pending) {
      const { cb } = this.ending;
      this.ending = null;
      this.link.sendEof(this.session);
      cb();
    }
  }

  /** Sends a signal (`TERM`, `INT`, … with or without `SIG`) to the session's process group. */
  signal(name: string): void {
    if (!this.exitInfo) this.link.signal(this.session, name);
  }

  resize(cols: number, rows: number): void {
    if (!this.exitInfo && this.kind === 'pty') this.link.resize(this.session, cols, rows);
  }

  /** ssh2's name for resize. */
  setWindow(rows: number, cols: number, _height?: number, _width?: number): void {
    this.resize(cols, rows);
  }

  /** Ends the session: the agent kills its process group (a pty is hung up first). */
  close(): void {
    if (!this.exitInfo) this.link.close(this.session);
  }

  get exited(): ExitInfo | null {
    return this.exitInfo;
  }

  // --- called by the client ------------------------------------------------------------------

  onData(stream: 1 | 2, data: Buffer): void {
    (stream === 1 ? this.out : this.err).push(data);
  }

  onWindow(): void {
    this.flushStdin();
  }

  onEof(stream: 1 | 2): void {
    this.endStream(stream);
  }

  private endStream(stream: 1 | 2): void {
    if (this.pushedEnd[stream - 1]) return;
    this.pushedEnd[stream - 1] = true;
    (stream === 1 ? this.out.readable : this.err.readable).push(null);
  }

  /** The session ended (EXIT), or the channel was lost (`info.lost`). */
  onExit(info: ExitInfo): void {
    if (this.exitInfo) return;
    this.exitInfo = info;
    if (this.pending) {
      const { cb } = this.pending;
      this.pending = null;
      cb?.();
    }
    if (this.ending) {
      const { cb } = this.ending;
      this.ending = null;
      cb();
    }
    this.emit('exit', info.code, info.signal, info);
    this.endStream(1);
    this.endStream(2);
    // a stream nobody reads from is drained, so 'close' does not wait for it forever (checked on
    // the next turn: a consumer attaches right after the open resolves, possibly in this one; one
    // a consumer paused stays paused until it resumes)
    setImmediate(() => {
      if (this.readableFlowing === null) this.resume();
      if (this.stderr.readableFlowing === null) this.stderr.resume();
    });
  }
}
