/**
 * The relay's end of one tunnel: an HTTP/2 client session on the upgraded socket of an installation's
 * daemon, its control stream, a count of in-flight streams, and a keepalive ping (which also keeps
 * idle proxies such as nginx from closing the connection).
 */
import { EventEmitter } from 'node:events';
import http2, { type ClientHttp2Session, type ClientHttp2Stream, type OutgoingHttpHeaders } from 'node:http2';
import type { Duplex } from 'node:stream';
import { readJsonLines, writeJsonLine } from './json-lines.ts';
import type { Log } from './log.ts';
import type { Account } from './token-store.ts';
import { CONTROL_PATH, clientMessageSchema, type ClientMessage, type RelayMessage } from './tunnel-protocol.ts';

/** HTTP/2 windows: large enough that one stream can fill a fast link, small enough to bound memory. */
export const STREAM_WINDOW = 1 << 20;
export const SESSION_WINDOW = 16 << 20;
/** Larger DATA frames than the 16 KiB default: fewer frames (and TLS records) per megabyte. */
export const MAX_FRAME = 64 << 10;
const PING_EVERY_MS = 20_000;
const PING_TIMEOUT_MS = 15_000;

export interface RelayTunnelEvents {
  message: [ClientMessage];
  close: [];
}

export class RelayTunnel extends EventEmitter<RelayTunnelEvents> {
  readonly session: ClientHttp2Session;
  /** Streams opened for public requests and not yet closed. */
  active = 0;
  closed = false;
  private control: ClientHttp2Stream | undefined;
  private readonly pingTimer: NodeJS.Timeout;

  constructor(
    socket: Duplex,
    readonly account: Account,
    readonly tokenHash: string,
    private readonly hello: Extract<RelayMessage, { type: 'hello' }>,
    private readonly log: Log,
  ) {
    super();
    this.session = http2.connect('http://tunnel.invalid', {
      createConnection: () => socket,
      settings: { enablePush: false, initialWindowSize: STREAM_WINDOW, maxFrameSize: MAX_FRAME },
      maxSessionMemory: 64,
      peerMaxConcurrentStreams: 10_000,
    });
    this.session.on('connect', () => this.session.setLocalWindowSize(SESSION_WINDOW));
    this.session.on('error', (error) => this.log('info', 'tunnel session error', { account: account.name, error: error.message }));
    this.session.on('close', () => this.shutdown());
    this.pingTimer = setInterval(() => this.ping(), PING_EVERY_MS);
    this.pingTimer.unref();
    this.openControl();
  }

  /** Opens a stream to the daemon for one public request; counts it while it lives. */
  request(headers: OutgoingHttpHeaders, endStream: boolean): ClientHttp2Stream {
    const stream = this.session.request(headers, { endStream });
    this.active += 1;
    stream.once('close', () => {
      this.active -= 1;
    });
    return stream;
  }

  send(message: RelayMessage): void {
    if (this.control) writeJsonLine(this.control, message);
  }

  /** Tells the daemon why, then closes the connection (in-flight streams end with it). */
  close(reason: string, retry: boolean): void {
    if (this.closed) return;
    this.log('info', 'closing tunnel', { account: this.account.name, reason });
    this.send({ type: 'closing', reason, retry });
    const session = this.session;
    this.shutdown();
    // Let the closing message leave, then cut the socket whatever the daemon does.
    setTimeout(() => session.destroy(), 50).unref();
  }

  private openControl(): void {
    const control = this.session.request({ ':method': 'POST', ':path': CONTROL_PATH }, { endStream: false });
    this.control = control;
    control.on('error', () => undefined);
    control.on('close', () => {
      if (!this.closed) this.session.destroy();
    });
    readJsonLines(control, clientMessageSchema, (message) => this.emit('message', message));
    this.send(this.hello);
  }

  private ping(): void {
    if (this.closed || this.session.destroyed) return;
    const deadline = setTimeout(() => {
      this.log('info', 'tunnel ping timed out', { account: this.account.name });
      this.session.destroy();
    }, PING_TIMEOUT_MS);
    deadline.unref();
    try {
      this.session.ping(() => clearTimeout(deadline));
    } catch {
      clearTimeout(deadline);
    }
  }

  private shutdown(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.pingTimer);
    if (!this.session.destroyed) this.session.close();
    this.emit('close');
  }
}
