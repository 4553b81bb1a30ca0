/**
 * A client for qemu-guest-agent, spoken over a byte channel to the guest's agent port (which the
 * driver provides: a virtio-serial socket under QEMU). It implements GuestControl: readiness and
 * fix-ups (identity, clock, disk) — no network, no crypto. QGA has no command ids, so commands run
 * one at a time and every session starts with `guest-sync-delimited` (a random id echoed after a
 * 0xFF marker) to discard whatever a previous client or a restored snapshot left in the pipe.
 * Everything the guest sends is bounded and decoded in linear time (json-lines.ts): a line longer
 * than the cap ends the session, and the link reconnects only after a back-off, so a guest that
 * floods its agent port cannot keep the daemon busy. Error text from the guest is made inert.
 */
import crypto from 'node:crypto';
import type { Duplex } from 'node:stream';
import { JsonLineDecoder } from '../json-lines.ts';
import { safeText } from '../safe-text.ts';
import type { GuestControl, GuestExecResult } from './guest-control.ts';

export class GuestAgentError extends Error {
  override name = 'GuestAgentError';
}

/** Opens a new byte channel to the guest's agent port. */
export type ConnectGuestPort = () => Promise<Duplex>;

/**
 * The most a guest may send without a newline. guest-exec output comes base64 in one line, and the
 * engine's programs (identity, clock, disk, diagnosis) print a few KiB at most: exec through this
 * channel is for small fix-ups, not for user output (that goes over SSH or the spritely agent).
 */
export const MAX_AGENT_LINE = 4 * 1024 * 1024;

export class GuestAgent implements GuestControl {
  private socket: Duplex | null = null;
  private readonly decoder: JsonLineDecoder;
  /** Set when the guest broke the protocol (the reason); the session is closed. */
  misbehaved: string | null = null;
  private waiting: { resolve: (v: any) => void; reject: (e: Error) => void } | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  private skipUntilMarker = false;
  /** Bytes dropped while waiting for the sync marker. */
  private skipped = 0;
  /** Bytes received since the last command was sent: an answer is one line, so this is capped too. */
  private received = 0;

  constructor(
    private readonly open: ConnectGuestPort,
    private readonly maxLineBytes = MAX_AGENT_LINE,
    /** Told once, when the guest breaks the protocol and the session is closed. */
    private readonly onMisbehaviour: (why: string) => void = () => {},
  ) {
    this.decoder = new JsonLineDecoder(maxLineBytes);
  }

  /**
   * Connects and syncs, retrying until `deadline` (epoch ms): right after a restore or during boot
   * the agent may not be listening yet, and bytes sent then are lost.
   */
  async connect(deadline: number, attemptMs = 1500): Promise<void> {
    let lastErr: unknown;
    while (Date.now() < deadline) {
      try {
        await this.openSocket();
        await this.sync(Math.min(attemptMs, Math.max(100, deadline - Date.now())));
        return;
      } catch (err) {
        lastErr = err;
        this.disconnect();
        if (this.misbehaved) throw new GuestAgentError(this.misbehaved); // no retry: the link backs off
        await sleep(100);
      }
    }
    throw new GuestAgentError(`guest agent did not answer: ${(lastErr as Error)?.message ?? 'timeout'}`);
  }

  private async openSocket(): Promise<void> {
    const socket = await this.open();
    this.socket = socket;
    this.decoder.reset();
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('close', () => {
      if (this.socket === socket) this.socket = null;
      this.waiting?.reject(new GuestAgentError('guest agent connection closed'));
      this.waiting = null;
    });
    socket.on('error', () => {});
  }

  private onData(chunk: Buffer): void {
    if (this.misbehaved) return;
    let data = chunk;
    if (this.skipUntilMarker) {
      // Only this chunk is searched; everything before the marker is dropped unbuffered.
      const at = data.indexOf(0xff);
      this.skipped += at < 0 ? data.length : at;
      if (this.skipped > this.maxLineBytes) return this.fail(`the guest agent sent more than ${this.maxLineBytes} bytes before answering a sync`);
      if (at < 0) return;
      this.skipUntilMarker = false;
      this.decoder.reset();
      data = data.subarray(at + 1);
    }
    this.received += data.length;
    const { messages, overflow } = this.decoder.feed(data);
    for (const m of messages) {
      const w = this.waiting;
      if (!w) continue;
      this.waiting = null;
      const msg = m as Record<string, any>;
      if (msg && typeof msg === 'object' && 'error' in msg) w.reject(new GuestAgentError(`the guest agent said: ${safeText(String(msg.error?.desc ?? 'error'), { maxChars: 500 })}`));
      else w.resolve(msg?.return);
    }
    if (overflow) this.fail(`the guest agent sent more than ${this.maxLineBytes} bytes without a line end`);
    else if (this.received > this.maxLineBytes) this.fail(`the guest agent sent more than ${this.maxLineBytes} bytes in answer to one command`);
  }

  /** The guest broke the protocol: the session ends here, and the one who keeps the link is told once. */
  private fail(why: string): void {
    this.misbehaved = why;
    this.waiting?.reject(new GuestAgentError(why));
    this.waiting = null;
    this.disconnect();
    this.onMisbehaviour(why);
  }

  private async sync(timeoutMs: number): Promise<void> {
    const id = crypto.randomInt(1, 2 ** 31);
    this.skipUntilMarker = true;
    this.skipped = 0;
    this.socket!.write(Buffer.from([0xff]));
    const got = await this.rawCommand('guest-sync-delimited', { id }, timeoutMs);
    if (got !== id) throw new GuestAgentError(`guest agent sync mismatch (${safeText(String(JSON.stringify(got)), { maxChars: 40 })} != ${id})`);
  }

  private rawCommand(execute: string, args: Record<string, unknown> | undefined, timeoutMs: number): Promise<any> {
    const socket = this.socket;
    if (!socket) return Promise.reject(new GuestAgentError('guest agent not connected'));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting = null;
        reject(new GuestAgentError(`guest agent: ${execute} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting = {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      this.received = 0;
      socket.write(JSON.stringify(args ? { execute, arguments: args } : { execute }) + '\n');
    });
  }

  /** Runs one agent command; commands are serialized (the protocol has no ids). */
  command<T = any>(execute: string, args?: Record<string, unknown>, timeoutMs = 10_000): Promise<T> {
    const run = this.queue.then(() => this.rawCommand(execute, args, timeoutMs));
    this.queue = run.catch(() => {});
    return run;
  }

  shutdown(): void {
    this.socket?.write(JSON.stringify({ execute: 'guest-shutdown', arguments: { mode: 'powerdown' } }) + '\n');
  }

  async ping(timeoutMs = 2000): Promise<void> {
    await this.command('guest-ping', undefined, timeoutMs);
  }

  async exec(path: string, args: string[] = [], opts: { stdin?: Buffer | string; timeoutMs?: number } = {}): Promise<GuestExecResult> {
    const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
    const req: Record<string, unknown> = { path, arg: args, 'capture-output': true };
    if (opts.stdin !== undefined) req['input-data'] = Buffer.from(opts.stdin).toString('base64');
    const started = await this.command<{ pid?: unknown }>('guest-exec', req);
    if (typeof started?.pid !== 'number') throw new GuestAgentError('guest agent: guest-exec returned no pid');
    const pid = started.pid;
    let delay = 5;
    for (;;) {
      const st = await this.command<any>('guest-exec-status', { pid });
      if (st?.exited) {
        return {
          exitCode: typeof st.exitcode === 'number' ? st.exitcode : 128 + (typeof st.signal === 'number' ? st.signal : 0),
          stdout: Buffer.from(typeof st['out-data'] === 'string' ? st['out-data'] : '', 'base64'),
          stderr: Buffer.from(typeof st['err-data'] === 'string' ? st['err-data'] : '', 'base64'),
        };
      }
      if (Date.now() > deadline) throw new GuestAgentError(`guest command ${path} did not finish in time`);
      await sleep(delay);
      delay = Math.min(delay * 2, 50);
    }
  }

  disconnect(): void {
    this.socket?.destroy();
    this.socket = null;
  }
}

/** How long the link stays closed after the guest misbehaved: doubling from `firstMs` up to `maxMs`. */
export interface LinkBackoff {
  firstMs: number;
  maxMs: number;
  /** A guest that behaved this long since its last misbehaviour starts again from `firstMs`. */
  forgiveAfterMs: number;
}

export const DEFAULT_LINK_BACKOFF: LinkBackoff = { firstMs: 1000, maxMs: 60_000, forgiveAfterMs: 10 * 60_000 };

/**
 * One machine's guest agent, connected on first use and kept: `ready` checks the kept connection
 * with a ping and reconnects when the guest (restored, rebooted) no longer answers on it. A guest
 * that breaks the protocol (floods its port) has its connection closed and logged once, and the
 * link connects again only when asked and after a back-off (1 s, doubling up to a minute): while
 * it is closed nobody reads the port: what the guest writes into it waits in the guest (or is
 * dropped by the hypervisor), costing the daemon nothing.
 */
export class GuestAgentLink {
  private agent: GuestAgent | null = null;
  private connecting: Promise<GuestControl> | null = null;
  private closed = false;
  private backoffMs = 0;
  private quietUntil = 0;
  private lastMisbehaviour = 0;
  private lastReason = '';
  /** Closed for misbehaving and not yet answered again (its reopening is logged). */
  private reopening = false;

  constructor(
    private readonly open: ConnectGuestPort,
    private readonly opts: { log?: (msg: string) => void; backoff?: LinkBackoff; maxLineBytes?: number } = {},
  ) {}

  async ready(timeoutMs = 30_000): Promise<GuestControl> {
    if (this.closed) throw new GuestAgentError('the machine is gone');
    if (this.agent && !this.agent.misbehaved) {
      try {
        await this.agent.ping(2000);
        return this.agent;
      } catch {
        this.agent?.disconnect();
        this.agent = null;
      }
    }
    this.agent = null;
    // One connection attempt at a time: the guest's agent port serves one client.
    this.connecting ??= this.connect(timeoutMs).finally(() => (this.connecting = null));
    return this.connecting;
  }

  private async connect(timeoutMs: number): Promise<GuestControl> {
    const wait = this.quietUntil - Date.now();
    if (wait > 0) {
      if (wait >= timeoutMs) throw new GuestAgentError(`the guest agent channel was closed (${this.lastReason}); it opens again in ${Math.ceil(wait / 1000)} s`);
      await sleep(wait);
    }
    const agent = new GuestAgent(this.open, this.opts.maxLineBytes, (why) => this.misbehaved(why));
    await agent.connect(Date.now() + timeoutMs - Math.max(0, wait));
    if (this.closed) {
      agent.disconnect();
      throw new GuestAgentError('the machine is gone');
    }
    if (this.reopening) {
      this.reopening = false;
      this.opts.log?.('guest agent channel reopened: the agent answers again');
    }
    this.agent = agent;
    return agent;
  }

  /** Logs the misbehaviour once and starts (or lengthens) the back-off. */
  private misbehaved(why: string): void {
    const b = this.opts.backoff ?? DEFAULT_LINK_BACKOFF;
    const now = Date.now();
    this.backoffMs = this.backoffMs && now - this.lastMisbehaviour < b.forgiveAfterMs ? Math.min(this.backoffMs * 2, b.maxMs) : b.firstMs;
    this.lastMisbehaviour = now;
    this.quietUntil = now + this.backoffMs;
    this.lastReason = why;
    this.reopening = true;
    this.opts.log?.(`guest agent channel closed: ${why}; it is reopened when next needed, in ${this.backoffMs / 1000} s at the earliest`);
  }

  close(): void {
    this.closed = true;
    this.agent?.disconnect();
    this.agent = null;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
