/**
 * A client for qemu-guest-agent on its virtio-serial port (a unix socket on the host). The agent
 * is the engine's control channel into a guest: readiness and fix-ups (identity, clock, disk) —
 * no network, no crypto. QGA has no command ids, so commands run one at a time and every session
 * starts with `guest-sync-delimited` (a random id echoed after a 0xFF marker) to discard whatever
 * a previous client or a restored snapshot left in the pipe.
 */
import crypto from 'node:crypto';
import net from 'node:net';
import { JsonLineDecoder } from './json-lines.ts';

export class GuestAgentError extends Error {
  override name = 'GuestAgentError';
}

export interface GuestExecResult {
  exitCode: number;
  stdout: Buffer;
  stderr: Buffer;
}

export class GuestAgent {
  private socket: net.Socket | null = null;
  private decoder = new JsonLineDecoder();
  private waiting: { resolve: (v: any) => void; reject: (e: Error) => void } | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  private skipUntilMarker = false;

  constructor(private readonly socketPath: string) {}

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

  private openSocket(): Promise<void> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(this.socketPath);
      socket.once('connect', () => {
        this.socket = socket;
        resolve();
      });
      socket.once('error', reject);
      socket.on('data', (chunk: Buffer) => this.onData(chunk));
      socket.on('close', () => {
        if (this.socket === socket) this.socket = null;
        this.waiting?.reject(new GuestAgentError('guest agent connection closed'));
        this.waiting = null;
      });
      socket.on('error', () => {});
    });
  }

  private onData(chunk: Buffer): void {
    let data = chunk;
    if (this.skipUntilMarker) {
      const at = data.indexOf(0xff);
      if (at < 0) return;
      this.skipUntilMarker = false;
      this.decoder.reset();
      data = data.subarray(at + 1);
    }
    const { messages } = this.decoder.feed(data.toString('utf8'));
    for (const m of messages) {
      const w = this.waiting;
      if (!w) continue;
      this.waiting = null;
      const msg = m as Record<string, any>;
      if (msg && 'error' in msg) w.reject(new GuestAgentError(msg.error?.desc ?? 'guest agent error'));
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

  /** Commands that end the agent's reply path (shutdown) get no answer: send and forget. */
  fire(execute: string, args?: Record<string, unknown>): void {
    this.socket?.write(JSON.stringify(args ? { execute, arguments: args } : { execute }) + '\n');
  }

  async ping(timeoutMs = 2000): Promise<void> {
    await this.command('guest-ping', undefined, timeoutMs);
  }

  /** Runs a program in the guest, feeding `stdin`, and waits for it to finish. */
  async exec(path: string, args: string[] = [], opts: { stdin?: Buffer | string; timeoutMs?: number } = {}): Promise<GuestExecResult> {
    const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
    const req: Record<string, unknown> = { path, arg: args, 'capture-output': true };
    if (opts.stdin !== undefined) req['input-data'] = Buffer.from(opts.stdin).toString('base64');
    const { pid } = await this.command<{ pid: number }>('guest-exec', req);
    let delay = 5;
    for (;;) {
      const st = await this.command<any>('guest-exec-status', { pid });
      if (st.exited) {
        return {
          exitCode: typeof st.exitcode === 'number' ? st.exitcode : 128 + (st.signal ?? 0),
          stdout: Buffer.from(st['out-data'] ?? '', 'base64'),
          stderr: Buffer.from(st['err-data'] ?? '', 'base64'),
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

function sleep(ms: number) {
  return new Promise((r) => setTimeout(r, ms));
}
