/**
 * One command in a sprite over the daemon's exec WebSocket, as a small object for programs rather
 * than a terminal: bytes in (stdin), bytes out through callbacks that acknowledge what they have
 * consumed (the daemon pauses the command while more than 1 MiB is unacknowledged), and one
 * promise for the exit. Used by `spritely cp` (tar streams) and `spritely ssh-proxy` (a hold).
 */
import type WebSocket from 'ws';
import type { ApiClient } from '../api/client.ts';
import { STREAM_STDERR } from '../api/contract.ts';
import { SpritelyError, isErrorCode } from '../errors.ts';

export interface ExecExit {
  code: number | null;
  signal: string | null;
}

export interface ExecStreamOptions {
  /** Keep the command's stdin open for `send` (otherwise it is closed at once). */
  stdin?: boolean;
  cwd?: string;
  /** Output on stdout; call `consumed()` once it is written or used (that is the flow control). */
  onStdout?: (data: Buffer, consumed: () => void) => void;
  onStderr?: (data: Buffer, consumed: () => void) => void;
}

export class ExecStream {
  /** Resolves when the command runs in the sprite (it was woken first if it slept). */
  readonly started: Promise<void>;
  /** Resolves with the exit status; rejects on a daemon error or a lost connection. */
  readonly finished: Promise<ExecExit>;
  private readonly ws: WebSocket;
  private settled = false;

  constructor(api: ApiClient, name: string, argv: string[], opts: ExecStreamOptions = {}) {
    const ws = api.socket(`/v1/sprites/${encodeURIComponent(name)}/exec`);
    this.ws = ws;
    let onStarted!: () => void;
    let onStartFailed!: (err: Error) => void;
    this.started = new Promise((resolve, reject) => {
      onStarted = resolve;
      onStartFailed = reject;
    });
    this.started.catch(() => {});
    this.finished = new Promise<ExecExit>((resolve, reject) => {
      const settle = (fn: () => void) => {
        if (this.settled) return;
        this.settled = true;
        fn();
      };
      const fail = (err: Error) => {
        onStartFailed(err);
        settle(() => reject(err));
      };
      ws.on('open', () => ws.send(JSON.stringify({ type: 'start', argv, cwd: opts.cwd, stdin: !!opts.stdin })));
      ws.on('message', (raw, isBinary) => {
        const data = raw as Buffer;
        if (isBinary) {
          const payload = data.subarray(1);
          const ack = () => {
            if (ws.readyState === ws.OPEN) ws.send(JSON.stringify({ type: 'ack', bytes: payload.length }));
          };
          const handler = data[0] === STREAM_STDERR ? opts.onStderr : opts.onStdout;
          if (handler) handler(payload, ack);
          else ack();
          return;
        }
        const msg = JSON.parse(data.toString('utf8'));
        if (msg.type === 'started') onStarted();
        else if (msg.type === 'exit') {
          onStarted();
          settle(() => resolve({ code: msg.code ?? null, signal: msg.signal ?? null }));
        } else if (msg.type === 'error') fail(new SpritelyError(isErrorCode(msg.code) ? msg.code : 'internal', msg.message));
      });
      ws.on('error', (err) => fail(err));
      ws.on('close', () => fail(new SpritelyError('unavailable', 'the connection to the daemon closed before the command finished')));
    });
    this.finished.catch(() => {});
  }

  /** Sends stdin bytes (after `started`); `cb` runs once they are handed to the socket. */
  send(data: Buffer, cb?: (err?: Error) => void): void {
    if (this.ws.readyState !== this.ws.OPEN) {
      cb?.(new Error('the exec stream is closed'));
      return;
    }
    this.ws.send(data, { binary: true }, cb);
  }

  /** Closes the command's stdin (it sees end of file). */
  eof(): void {
    if (this.ws.readyState === this.ws.OPEN) this.ws.send(JSON.stringify({ type: 'eof' }));
  }

  /** Hangs up: the daemon closes the command's channel. */
  close(): void {
    this.ws.close();
  }
}
