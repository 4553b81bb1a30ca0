/**
 * A client for qemu-guest-agent, spoken over a byte channel to the guest's agent port (which the
 * driver provides: a virtio-serial socket under QEMU). It implements GuestControl: readiness and
 * fix-ups (identity, clock, disk) — no network, no crypto. QGA has no command ids, so commands run
 * one at a time and every session starts with `guest-sync-delimited` (a random id echoed after a
 * 0xFF marker) to discard whatever a previous client or a restored snapshot left in the pipe.
 * Everything the guest sends is bounded: a line longer than the cap ends the session.
 */
import crypto from 'node:crypto';
import type { Duplex } from 'node:stream';
import { JsonLineDecoder } from '../json-lines.ts';
import type { GuestControl, GuestExecResult } from './guest-control.ts';

export class GuestAgentError extends Error {
  override name = 'GuestAgentError';
}

/** Opens a new byte channel to the guest's agent port. */
export type ConnectGuestPort = () => Promise<Duplex>;

/** The most a guest may send without a newline (guest-exec output comes base64 in one line). */
const MAX_LINE_BYTES = 64 * 1024 * 1024;

export class GuestAgent implements GuestControl {
  private socket: Duplex | null = null;
  private decoder = new JsonLineDecoder();
  private pendingBytes = 0;
  private waiting: { resolve: (v: any) => void; reject: (e: Error) => void } | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  private skipUntilMarker = false;

  constructor(
    private readonly open: ConnectGuestPort,
    private readonly maxLineBytes = MAX_LINE_BYTES,
  ) {}

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
        await sleep(100);
      }
    }
    throw new GuestAgentError(`guest agent did not answer: ${(lastErr as Error)?.message ?? 'timeout'}`);
  }

  private async openSocket(): Promise<void> {
    const socket = await this.open();
    this.socket = socket;
    this.decoder.reset();
    this.pendingBytes = 0;
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('close', () => {
      if (this.socket === socket) this.socket = null;
      this.waiting?.reject(new GuestAgentError('guest agent connection closed'));
      this.waiting = null;
    });
    socket.on('error', () => {});
  }

  private onData(chunk: Buffer): void {
    let data = chunk;
    if (this.skipUntilMarker) {
      const at = data.indexOf(0xff);
      if (at < 0) return;
      this.skipUntilMarker = false;
      this.decoder.reset();
      this.pendingBytes = 0;
      data = data.subarray(at + 1);
    }
    const { messages } = this.decoder.feed(data.toString('utf8'));
    const nl = data.lastIndexOf(0x0a);
    this.pendingBytes = nl < 0 ? this.pendingBytes + data.length : data.length - nl - 1;
    if (this.pendingBytes > this.maxLineBytes) {
      this.waiting?.reject(new GuestAgentError(`the guest agent sent more than ${this.maxLineBytes} bytes without a line end`));
      this.waiting = null;
      this.disconnect();
      return;
    }
    for (const m of messages) {
      const w = this.waiting;
      if (!w) continue;
      this.waiting = null;
      const msg = m as Record<string, any>;
      if (msg && typeof msg === 'object' && 'error' in msg) w.reject(new GuestAgentError(String(msg.error?.desc ?? 'guest agent error')));
      else w.resolve(msg?.return);
    }
  }

  private async sync(timeoutMs: number): Promise<void> {
    const id = crypto.randomInt(1, 2 ** 31);
    this.skipUntilMarker = true;
    this.socket!.write(Buffer.from([0xff]));
    const got = await this.rawCommand('guest-sync-delimited', { id }, timeoutMs);
    if (got !== id) throw new GuestAgentError(`guest agent sync mismatch (${got} != ${id})`);
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

/**
 * One machine's guest agent, connected on first use and kept: `ready` checks the kept connection
 * with a ping and reconnects when the guest (restored, rebooted) no longer answers on it.
 */
export class GuestAgentLink {
  private agent: GuestAgent | null = null;
  private connecting: Promise<GuestControl> | null = null;
  private closed = false;

  constructor(private readonly open: ConnectGuestPort) {}

  async ready(timeoutMs = 30_000): Promise<GuestControl> {
    if (this.closed) throw new GuestAgentError('the machine is gone');
    if (this.agent) {
      try {
        await this.agent.ping(2000);
        return this.agent;
      } catch {
        this.agent.disconnect();
        this.agent = null;
      }
    }
    // One connection attempt at a time: the guest's agent port serves one client.
    this.connecting ??= this.connect(timeoutMs).finally(() => (this.connecting = null));
    return this.connecting;
  }

  private async connect(timeoutMs: number): Promise<GuestControl> {
    const agent = new GuestAgent(this.open);
    await agent.connect(Date.now() + timeoutMs);
    if (this.closed) {
      agent.disconnect();
      throw new GuestAgentError('the machine is gone');
    }
    this.agent = agent;
    return agent;
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
