/**
 * The daemon's connection to one sprite's guest agent: a unix socket (QEMU's end of the
 * virtio-serial port) under the sans-IO protocol of agent-protocol.ts. It says HELLO with a
 * random nonce and ignores everything until the answer that echoes it; if none comes in time it
 * drops the socket and tries again on a new one (QEMU can be left throttling the port by a write
 * that happened while nobody was connected; only a disconnect clears that), sending zeros first
 * to end any half frame the agent may still hold. Anything malformed from the guest closes this
 * channel — logged once — and fails its sessions; the next call connects again with a new epoch.
 * Nothing here imports the engine: the caller gives the socket path.
 */
import { EventEmitter } from 'node:events';
import net from 'node:net';
import { AgentChannel, type ChannelLink } from './agent-channel.ts';
import { AgentProtocolError, flushBytes } from './agent-frames.ts';
import {
  AgentProtocol, AgentVersionError, DEFAULT_WINDOW, type AgentEvent, type AgentIdentity, type AgentInfo, type ExecRequest,
  type IdentityResult, type PtyRequest,
} from './agent-protocol.ts';

/** How long each HELLO waits for its answer; the last value repeats until the deadline. */
export const HELLO_TIMEOUTS_MS = [400, 800, 1500, 3000];
const OPEN_TIMEOUT_MS = 30_000;

export interface AgentClientOptions {
  socketPath: string;
  /** For log lines, e.g. the sprite's name. */
  name?: string;
  log?: (msg: string) => void;
  helloTimeoutsMs?: number[];
}

interface PendingOpen {
  channel: AgentChannel;
  resolve: (c: AgentChannel) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
  abandoned: boolean;
}

interface Pending<T> {
  resolve: (v: T) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

export class AgentClient extends EventEmitter<{ ready: [AgentInfo]; lost: [Error] }> {
  private socket: net.Socket | null = null;
  private protocol: AgentProtocol | null = null;
  private connecting: Promise<AgentInfo> | null = null;
  private closed = false;
  private agentInfo: AgentInfo | null = null;
  private channels = new Map<number, AgentChannel>();
  private opens = new Map<number, PendingOpen>();
  private results = new Map<number, Pending<IdentityResult>>();
  private pings = new Map<string, Pending<void>>();
  private readonly link: ChannelLink;

  constructor(private readonly opts: AgentClientOptions) {
    super();
    const guard = (f: () => void) => {
      try {
        f();
      } catch {
        /* the session ended meanwhile */
      }
    };
    this.link = {
      stdinCredit: (s) => this.protocol?.stdinCredit(s) ?? 0,
      sendStdin: (s, d) => guard(() => this.protocol!.stdin(s, d).forEach((f) => this.send(f))),
      sendEof: (s) => guard(() => this.send(this.protocol!.eof(s))),
      grant: (s, stream, n) => guard(() => this.send(this.protocol!.grant(s, stream, n))),
      signal: (s, name) => guard(() => this.send(this.protocol!.signal(s, name))),
      resize: (s, c, r) => guard(() => this.send(this.protocol!.resize(s, c, r))),
      close: (s) => guard(() => {
        const f = this.protocol!.close(s);
        if (f) this.send(f);
      }),
    };
  }

  get isReady(): boolean {
    return !!this.protocol?.ready && !!this.socket;
  }

  /** What the agent said about itself in its HELLO_ACK. */
  get info(): AgentInfo | null {
    return this.agentInfo;
  }

  /** A ready channel, connecting (and retrying until `timeoutMs`) if there is none. */
  ready(timeoutMs = 30_000): Promise<AgentInfo> {
    if (this.closed) return Promise.reject(new Error('guest agent client closed'));
    if (this.isReady) return Promise.resolve(this.agentInfo!);
    this.connecting ??= this.connectWithRetry(Date.now() + timeoutMs).finally(() => (this.connecting = null));
    return this.connecting;
  }

  /** Round trip of a PING in ms. */
  async ping(timeoutMs = 5_000): Promise<number> {
    await this.ready(timeoutMs);
    const t0 = performance.now();
    const { token, bytes } = this.protocol!.ping();
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pings.delete(token);
        reject(new Error(`the guest agent did not answer a ping within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pings.set(token, { resolve, reject, timer });
      this.send(bytes);
    });
    return performance.now() - t0;
  }

  exec(req: ExecRequest, timeoutMs = OPEN_TIMEOUT_MS): Promise<AgentChannel> {
    return this.open('exec', req, timeoutMs);
  }

  pty(req: PtyRequest = {}, timeoutMs = OPEN_TIMEOUT_MS): Promise<AgentChannel> {
    return this.open('pty', req, timeoutMs);
  }

  /** Gives the guest its identity in one request; resolves with the agent's report. */
  async identity(id: AgentIdentity, timeoutMs = 60_000): Promise<IdentityResult> {
    await this.ready(timeoutMs);
    const { session, bytes } = this.protocol!.identity(id);
    const result = await new Promise<IdentityResult>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.results.delete(session);
        reject(new Error(`the guest did not apply its identity within ${timeoutMs} ms`));
      }, timeoutMs);
      this.results.set(session, { resolve, reject, timer });
      this.send(bytes);
    });
    if (!result.ok) throw new Error(`the guest refused its identity: ${result.error ?? 'no reason given'}`);
    return result;
  }

  /** Closes the channel for good; open sessions end (the agent kills them). */
  close(): void {
    this.closed = true;
    this.lose(new Error('guest agent client closed'), false);
  }

  /** Drops the current connection (its sessions end); the next call connects with a new epoch. */
  reset(reason = 'reset by the daemon'): void {
    this.lose(new Error(reason), false);
  }

  private async open(kind: 'exec' | 'pty', req: ExecRequest | PtyRequest, timeoutMs: number): Promise<AgentChannel> {
    await this.ready(timeoutMs);
    const p = this.protocol!;
    const { session, bytes } = kind === 'exec' ? p.openExec(req as ExecRequest) : p.openPty(req as PtyRequest);
    const channel = new AgentChannel(session, kind, this.link, req.window ?? DEFAULT_WINDOW);
    this.channels.set(session, channel);
    return new Promise<AgentChannel>((resolve, reject) => {
      const timer = setTimeout(() => {
        const o = this.opens.get(session);
        if (o) o.abandoned = true;
        reject(new Error(`the guest agent did not start the ${kind} session within ${timeoutMs} ms`));
      }, timeoutMs);
      this.opens.set(session, { channel, resolve, reject, timer, abandoned: false });
      this.send(bytes);
    });
  }

  private send(bytes: Buffer): void {
    this.socket?.write(bytes);
  }

  private async connectWithRetry(deadline: number): Promise<AgentInfo> {
    const timeouts = this.opts.helloTimeoutsMs ?? HELLO_TIMEOUTS_MS;
    let lastErr: Error | null = null;
    let backoff = 10;
    for (let attempt = 0; !this.closed && Date.now() < deadline; attempt++) {
      const wait = Math.max(50, Math.min(timeouts[Math.min(attempt, timeouts.length - 1)], deadline - Date.now()));
      try {
        return await this.attempt(attempt > 0, wait);
      } catch (err) {
        lastErr = err as Error;
        if (err instanceof AgentVersionError) throw err;
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' || code === 'ECONNREFUSED') {
          // QEMU not there (yet): nothing listens on the path
          await new Promise((r) => setTimeout(r, backoff));
          backoff = Math.min(backoff * 2, 200);
        }
      }
    }
    throw new Error(`could not reach the guest agent${this.opts.name ? ` of ${this.opts.name}` : ''} on ${this.opts.socketPath}: ${lastErr?.message ?? 'closed'}`);
  }

  /** One socket, one HELLO; resolves when its answer arrives. */
  private attempt(flush: boolean, timeoutMs: number): Promise<AgentInfo> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(this.opts.socketPath);
      const protocol = new AgentProtocol();
      let settled = false;
      const fail = (err: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket.destroy();
        reject(err);
      };
      const timer = setTimeout(() => fail(new Error(`no answer to HELLO within ${timeoutMs} ms`)), timeoutMs);
      socket.on('error', (err) => fail(err));
      socket.on('close', () => {
        fail(new Error('the socket closed before the agent answered'));
        if (this.socket === socket) this.lose(new Error('the guest agent socket closed (QEMU gone?)'), false);
      });
      socket.once('connect', () => {
        if (flush) socket.write(flushBytes());
        socket.write(protocol.hello());
      });
      socket.on('data', (chunk: Buffer) => {
        if (settled) {
          if (this.socket === socket) this.receive(chunk);
          return;
        }
        let events: AgentEvent[];
        try {
          events = protocol.receive(chunk);
        } catch (err) {
          return fail(err as Error);
        }
        if (!events.length) return;
        const first = events[0];
        if (first.kind !== 'ready') return fail(new AgentProtocolError('the first frame was not HELLO_ACK'));
        settled = true;
        clearTimeout(timer);
        if (this.closed) {
          socket.destroy();
          return reject(new Error('guest agent client closed'));
        }
        this.socket = socket;
        this.protocol = protocol;
        this.agentInfo = first.info;
        if (protocol.droppedBytes) this.opts.log?.(`guest agent${this.name()}: skipped ${protocol.droppedBytes} stale bytes before the answer to HELLO`);
        resolve(first.info);
        this.emit('ready', first.info);
        this.dispatch(events.slice(1));
      });
    });
  }

  private name(): string {
    return this.opts.name ? ` of ${this.opts.name}` : '';
  }

  private receive(chunk: Buffer): void {
    let events: AgentEvent[];
    try {
      events = this.protocol!.receive(chunk);
    } catch (err) {
      return this.lose(err as Error, true);
    }
    this.dispatch(events);
  }

  private dispatch(events: AgentEvent[]): void {
    for (const e of events) {
      if (!this.socket) return; // lost while dispatching
      switch (e.kind) {
        case 'pong': {
          const p = this.pings.get(e.token);
          if (p) {
            this.pings.delete(e.token);
            clearTimeout(p.timer);
            p.resolve();
          }
          break;
        }
        case 'announce':
          this.lose(new Error(`the guest agent restarted (pid ${e.info.pid})`), true);
          return;
        case 'fault':
          this.lose(new Error(`the guest agent reported malformed input from the daemon: ${e.message}`), true);
          return;
        case 'opened': {
          const o = this.opens.get(e.session);
          const channel = this.channels.get(e.session);
          if (!o || !channel) break;
          this.opens.delete(e.session);
          clearTimeout(o.timer);
          channel.pid = e.pid;
          if (o.abandoned) channel.close();
          else o.resolve(channel);
          break;
        }
        case 'data':
          this.channels.get(e.session)?.onData(e.stream, e.data);
          break;
        case 'eof':
          this.channels.get(e.session)?.onEof(e.stream);
          break;
        case 'window':
          this.channels.get(e.session)?.onWindow();
          break;
        case 'exit': {
          const channel = this.channels.get(e.session);
          this.channels.delete(e.session);
          channel?.onExit({ code: e.code, signal: e.signal, timedOut: e.timedOut });
          break;
        }
        case 'error': {
          const o = this.opens.get(e.session);
          this.channels.delete(e.session);
          if (o) {
            this.opens.delete(e.session);
            clearTimeout(o.timer);
            o.reject(new Error(`the guest agent refused the session: ${e.message} (${e.code})`));
          }
          const r = this.results.get(e.session);
          if (r) {
            this.results.delete(e.session);
            clearTimeout(r.timer);
            r.reject(new Error(`the guest agent refused the request: ${e.message} (${e.code})`));
          }
          break;
        }
        case 'result': {
          const r = this.results.get(e.session);
          if (r) {
            this.results.delete(e.session);
            clearTimeout(r.timer);
            r.resolve(e.result);
          }
          break;
        }
        case 'ready':
          break;
      }
    }
  }

  /** The channel is gone: close the socket, end every session and request, say why once. */
  private lose(err: Error, log: boolean): void {
    const socket = this.socket;
    this.socket = null;
    this.protocol = null;
    socket?.destroy();
    if (log) this.opts.log?.(`guest agent${this.name()}: closing the channel: ${err.message}`);
    const reason = err.message;
    for (const [, c] of this.channels) c.onExit({ code: null, signal: null, timedOut: false, lost: reason });
    this.channels.clear();
    for (const [, o] of this.opens) {
      clearTimeout(o.timer);
      o.reject(new Error(`guest agent channel lost: ${reason}`));
    }
    this.opens.clear();
    for (const [, r] of this.results) {
      clearTimeout(r.timer);
      r.reject(new Error(`guest agent channel lost: ${reason}`));
    }
    this.results.clear();
    for (const [, p] of this.pings) {
      clearTimeout(p.timer);
      p.reject(new Error(`guest agent channel lost: ${reason}`));
    }
    this.pings.clear();
    if (socket) this.emit('lost', err);
  }
}
