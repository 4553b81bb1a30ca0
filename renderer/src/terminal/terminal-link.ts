/**
 * Joins one xterm (anything with `write(data, callback)`) to one daemon terminal session: bytes
 * in both directions, credit-based acks after xterm has parsed the output (so a flood pauses the
 * shell instead of freezing the window), the session id remembered for re-attaching after a
 * reload, and reconnecting when the socket drops. Knows nothing of React or the DOM.
 */
import { backoffMs, type TerminalSocket, type TerminalServerMessage, type Transport } from '../transport.ts';

/** Acks are sent in batches of at least this many bytes (VS Code's CharCountAckSize). */
export const ACK_BATCH_BYTES = 5_000;
/** …or after output has been quiet this long, so no credit lingers. */
export const ACK_IDLE_MS = 100;

export interface TermLike {
  readonly cols: number;
  readonly rows: number;
  write(data: Uint8Array | string, callback?: () => void): void;
  reset(): void;
}

interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(t: unknown): void;
}

const realTimers: Timers = {
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (t) => globalThis.clearTimeout(t as number),
};

/** Collects parsed-byte counts and acks them in batches. */
export class AckBatcher {
  private pending = 0;
  private timer: unknown = null;

  constructor(
    private readonly send: (bytes: number) => void,
    private readonly timers: Timers = realTimers,
    private readonly batch = ACK_BATCH_BYTES,
    private readonly idleMs = ACK_IDLE_MS,
  ) {}

  parsed(bytes: number): void {
    this.pending += bytes;
    if (this.pending >= this.batch) this.flush();
    else if (this.timer === null) this.timer = this.timers.setTimeout(() => this.flush(), this.idleMs);
  }

  flush(): void {
    if (this.timer !== null) this.timers.clearTimeout(this.timer);
    this.timer = null;
    if (this.pending > 0) this.send(this.pending);
    this.pending = 0;
  }

  /** Drops un-sent credit (the socket it belonged to is gone). */
  reset(): void {
    if (this.timer !== null) this.timers.clearTimeout(this.timer);
    this.timer = null;
    this.pending = 0;
  }
}

export type LinkStatus = 'connecting' | 'open' | 'reconnecting' | 'exited' | 'failed';

export interface LinkEvents {
  onSession(session: string | null): void;
  onStatus(status: LinkStatus, message?: string): void;
}

const DIM = '\x1b[2m';
const RED = '\x1b[31m';
const OFF = '\x1b[0m';

export class TerminalLink {
  private socket: TerminalSocket | null = null;
  private status: LinkStatus = 'connecting';
  private attachedOnce = false;
  private attempt = 0;
  private retryTimer: unknown = null;
  private disposed = false;
  private readonly acks: AckBatcher;
  private readonly encoder = new TextEncoder();
  private generation = 0;
  /** Output bytes received over this link's lifetime (diagnostics, benchmarks). */
  receivedBytes = 0;

  constructor(
    private readonly transport: Transport,
    readonly sprite: string,
    private readonly term: TermLike,
    private session: string | null,
    private readonly events: LinkEvents,
    private readonly timers: Timers = realTimers,
  ) {
    this.acks = new AckBatcher((n) => this.socket?.ack(n), timers);
  }

  get currentStatus(): LinkStatus {
    return this.status;
  }

  get currentSession(): string | null {
    return this.session;
  }

  connect(): void {
    if (this.disposed) return;
    this.closeSocket();
    const gen = ++this.generation;
    const mine = () => gen === this.generation && !this.disposed;
    this.setStatus(this.attachedOnce ? 'reconnecting' : 'connecting');
    this.socket = this.transport.openTerminal(
      this.sprite,
      { cols: this.term.cols, rows: this.term.rows, session: this.session },
      {
        onOpen: () => {},
        onData: (bytes) => {
          if (!mine()) return;
          this.receivedBytes += bytes.length;
          this.term.write(bytes, () => {
            if (mine()) this.acks.parsed(bytes.length);
          });
        },
        onMessage: (m) => mine() && this.onMessage(m),
        onClose: (info) => mine() && this.onClose(info.reason),
      },
    );
  }

  private onMessage(m: TerminalServerMessage): void {
    if (m.type === 'session') {
      // On a re-attach the daemon replays its whole scrollback: start from a clean screen.
      if (this.attachedOnce) this.term.reset();
      this.attachedOnce = true;
      this.attempt = 0;
      if (m.session !== this.session) {
        this.session = m.session;
        this.events.onSession(m.session);
      }
      this.socket?.resize(this.term.cols, this.term.rows);
      this.setStatus('open');
    } else if (m.type === 'exit') {
      this.forgetSession();
      this.setStatus('exited');
      this.term.write(`\r\n${DIM}[The shell ended${m.code !== null ? ` with code ${m.code}` : m.signal ? ` (${m.signal})` : ''}. Press Enter to open a new one.]${OFF}\r\n`);
    } else if (m.type === 'error') {
      if (m.code === 'not_found' && this.session) {
        // The session ended while we were away (or the daemon restarted): start a fresh shell.
        this.forgetSession();
        this.term.write(`\r\n${DIM}[The previous shell has ended; opening a new one.]${OFF}\r\n`);
        this.attachedOnce = false;
        this.connect();
        return;
      }
      if (m.code === 'unavailable' && this.attachedOnce) {
        // The way to the sprite went away (a remote host's connection): the close that follows
        // reconnects with backoff, and the session is re-attached when it is back.
        this.term.write(`\r\n${DIM}[${m.message} Reconnecting…]${OFF}\r\n`);
        return;
      }
      this.setStatus('failed', m.message);
      this.term.write(`\r\n${RED}${m.message}${OFF}\r\n${DIM}[Press Enter to try again.]${OFF}\r\n`);
    }
  }

  private onClose(reason: string): void {
    this.socket = null;
    this.acks.reset();
    if (this.status === 'exited' || this.status === 'failed') return;
    if (!this.attachedOnce && this.attempt >= 2) {
      this.setStatus('failed', reason || 'Could not open a terminal.');
      this.term.write(`\r\n${RED}Could not open a terminal${reason ? ` (${reason})` : ''}.${OFF}\r\n${DIM}[Press Enter to try again.]${OFF}\r\n`);
      return;
    }
    this.setStatus('reconnecting');
    const delay = backoffMs(this.attempt++);
    this.retryTimer = this.timers.setTimeout(() => {
      this.retryTimer = null;
      this.connect();
    }, delay);
  }

  /** Keyboard input from xterm. After an exit or failure, Enter starts over. */
  input(data: string): void {
    if (this.status === 'exited' || this.status === 'failed') {
      if (data.includes('\r')) this.retry();
      return;
    }
    this.socket?.send(this.encoder.encode(data));
  }

  /** Binary input from xterm (some mouse reports): one byte per char code. */
  inputBinary(data: string): void {
    if (this.status !== 'open') return;
    const bytes = new Uint8Array(data.length);
    for (let i = 0; i < data.length; i++) bytes[i] = data.charCodeAt(i) & 0xff;
    this.socket?.send(bytes);
  }

  resize(cols: number, rows: number): void {
    if (this.status === 'open') this.socket?.resize(cols, rows);
  }

  /** Starts again now (after a failure, or when the sprite came back); `note` is shown dimmed. */
  retry(note?: string): void {
    if (this.disposed) return;
    if (note) this.term.write(`${DIM}[${note}]${OFF}\r\n`);
    if (this.retryTimer !== null) this.timers.clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.attempt = 0;
    if (this.status === 'exited') this.attachedOnce = false;
    this.connect();
  }

  /** Whether the terminal has no live shell (ended, failed or reconnecting). */
  get needsReopen(): boolean {
    return this.status === 'exited' || this.isStuck;
  }

  get isStuck(): boolean {
    return this.status === 'failed' || this.status === 'reconnecting';
  }

  /** Ends the shell (the tab was closed). */
  hangUp(): void {
    this.socket?.hangUp();
    this.socket = null;
    this.forgetSession();
    this.dispose();
  }

  /** Lets go of the socket but keeps the session alive on the daemon (reload, unmount). */
  dispose(): void {
    this.disposed = true;
    if (this.retryTimer !== null) this.timers.clearTimeout(this.retryTimer);
    this.acks.flush();
    this.closeSocket();
  }

  private closeSocket(): void {
    this.generation++;
    const s = this.socket;
    this.socket = null;
    this.acks.reset();
    s?.detach();
  }

  private forgetSession(): void {
    if (this.session === null) return;
    this.session = null;
    this.events.onSession(null);
  }

  private setStatus(s: LinkStatus, message?: string): void {
    this.status = s;
    this.events.onStatus(s, message);
  }
}

