/**
 * The daemon's connection to one sprite's guest agent: a byte channel to the guest's agent port
 * (the caller's connector: under QEMU the port's unix socket) under the sans-IO protocol of
 * agent-protocol.ts. It says HELLO with a random nonce and ignores everything until the answer
 * that echoes it; if none comes in time it drops the connection and tries again on a new one
 * (QEMU can be left throttling the port by a write that happened while nobody was connected; only
 * a disconnect clears that), sending zeros first to end any half frame the agent may still hold.
 * Anything malformed from the guest closes this channel — logged once — and fails its sessions;
 * the next call connects again with a new epoch. It connects lazily and again whenever needed.
 *
 * Across a sleep the client can keep its sessions: `suspend` holds every outgoing frame and
 * makes sure the agent has read all that was sent (a PING answered), the machine is saved and
 * ends, and the next connection (to the woken machine, the same RAM) asks the agent to resume the
 * epoch instead of starting one: shells and their output go on where they were.
 *
 * Nothing here imports the engine.
 */
import { EventEmitter } from 'node:events';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { AgentChannel, type ChannelLink } from './agent-channel.ts';
import { AgentProtocolError, flushBytes } from './agent-frames.ts';
import {
  AgentProtocol, AgentVersionError, DEFAULT_WINDOW, type AgentEvent, type AgentIdentity, type AgentInfo, type ExecRequest,
  type IdentityResult, type PtyRequest,
} from './agent-protocol.ts';

/** How long each HELLO waits for its answer; the last value repeats until the deadline. */
export const HELLO_TIMEOUTS_MS = [400, 800, 1500, 3000];
/** How long the answer to a resume may take once the machine runs. */
const RESUME_TIMEOUT_MS = 5_000;
const OPEN_TIMEOUT_MS = 30_000;
/** Frames held while suspended, at most (stdin credit bounds them long before). */
const MAX_HELD_BYTES = 8 * 1024 * 1024;
/** Probing a broken agent: first after this long, then backing off to PROBE_MAX_MS. */
const PROBE_FIRST_MS = 200;
const PROBE_MAX_MS = 5_000;
const STUCK_AGAIN_MS = 60_000;

/** Opens a new byte channel to the guest's agent port. */
export type AgentConnector = () => Promise<Duplex>;

/** A connector to a unix socket (the agent's `--listen unix:PATH` in tests, a port's socket by path). */
export function unixSocket(path: string): AgentConnector {
  return () =>
    new Promise((resolve, reject) => {
      const s = net.connect(path);
      s.once('connect', () => {
        s.off('error', reject);
        resolve(s);
      });
      s.once('error', reject);
    });
}

export interface AgentClientOptions {
  connect: AgentConnector;
  /** For log lines, e.g. the sprite's name. */
  name?: string;
  log?: (msg: string) => void;
  helloTimeoutsMs?: number[];
  /**
   * After this long failing (no answer, or only wrong ones), `stuck` is emitted (again every minute
   * while it goes on; default 10 s). After a channel broke abnormally the client probes the agent
   * by itself (reconnect + PING, backing off to every 5 s) until it answers, so a guest that
   * replaced its agent is noticed even when nobody is waiting.
   */
  stuckAfterMs?: number;
}

export interface ReadyOptions {
  /** The HELLO is sent at once, but its answer is waited for only once this settles (the machine runs). */
  after?: Promise<unknown>;
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

export class AgentClient extends EventEmitter<{ hello: []; ready: [AgentInfo]; resumed: [AgentInfo]; lost: [Error]; stuck: [Error] }> {
  private socket: Duplex | null = null;
  private protocol: AgentProtocol | null = null;
  private connecting: Promise<AgentInfo> | null = null;
  private closed = false;
  private agentInfo: AgentInfo | null = null;
  private channels = new Map<number, AgentChannel>();
  private opens = new Map<number, PendingOpen>();
  private results = new Map<number, Pending<IdentityResult>>();
  private pings = new Map<string, Pending<void>>();
  /** Frames sent while suspended or resuming, in order (null: not holding). */
  private held: Buffer[] | null = null;
  private heldBytes = 0;
  /** Suspended with a quiet stream: the sessions wait for a resume. */
  private suspended = false;
  /** Since when connecting or the channel has been failing (null: healthy). */
  private failingSince: number | null = null;
  private stuckAt = -Infinity;
  private probeTimer: NodeJS.Timeout | null = null;
  private probeDelay = PROBE_FIRST_MS;
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

  /** Suspended: sessions are kept for the next connection to resume. */
  get isSuspended(): boolean {
    return this.suspended;
  }

  /** Sessions open now (exec and pty). */
  get sessionCount(): number {
    return this.channels.size;
  }

  /** What the agent said about itself in its HELLO_ACK. */
  get info(): AgentInfo | null {
    return this.agentInfo;
  }

  /** A ready channel, connecting (and retrying until `timeoutMs`) if there is none; resumes a suspended epoch first. */
  ready(timeoutMs = 30_000, opts: ReadyOptions = {}): Promise<AgentInfo> {
    if (this.closed) return Promise.reject(new Error('guest agent client closed'));
    if (this.isReady) return Promise.resolve(this.agentInfo!);
    this.connecting ??= this.connect(Date.now() + timeoutMs, opts.after).finally(() => (this.connecting = null));
    return this.connecting;
  }

  /** Round trip of a PING in ms. */
  async ping(timeoutMs = 5_000): Promise<number> {
    await this.ready(timeoutMs);
    return this.pingNow(timeoutMs);
  }

  private pingNow(timeoutMs: number): Promise<number> {
    const t0 = performance.now();
    const { token, bytes } = this.protocol!.ping();
    return new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pings.delete(token);
        reject(new Error(`the guest agent did not answer a ping within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pings.set(token, { resolve: () => resolve(performance.now() - t0), reject, timer });
      this.socket?.write(bytes); // past any hold: it is how suspend knows the agent read everything before it
    });
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
    const sentAt = Date.now();
    const result = await new Promise<IdentityResult>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.results.delete(session);
        reject(new Error(`the guest did not apply its identity within ${timeoutMs} ms`));
        this.checkAlive(sentAt);
      }, timeoutMs);
      this.results.set(session, { resolve, reject, timer });
      this.send(bytes);
    });
    if (!result.ok) throw new Error(`the guest refused its identity: ${result.error ?? 'no reason given'}`);
    return result;
  }

  /**
   * The machine is about to be saved (sleep): holds every frame from now on and waits until the
   * agent has answered a PING, i.e. has read everything sent before. True: the stream is whole
   * and the sessions can be resumed by the next connection; false: they will be lost.
   */
  async suspend(timeoutMs = 2_000): Promise<boolean> {
    if (!this.isReady) return this.channels.size === 0 && this.opens.size === 0;
    this.held ??= [];
    try {
      await this.pingNow(timeoutMs);
    } catch {
      this.release();
      return false;
    }
    this.suspended = true;
    return true;
  }

  /** Gives up a suspension (the save failed and the machine runs on): held frames go out now. */
  unsuspend(): void {
    this.suspended = false;
    if (this.isReady) this.release();
  }

  /** Closes the channel for good; open sessions end (the agent kills them), lost with `reason`. */
  close(reason = 'guest agent client closed'): void {
    this.closed = true;
    this.suspended = false;
    if (this.probeTimer) clearTimeout(this.probeTimer);
    this.probeTimer = null;
    this.lose(new Error(reason), false);
  }

  /** Drops the current connection (its sessions end, as lost with `reason`); the next call connects with a new epoch. */
  reset(reason = 'reset by the daemon'): void {
    this.suspended = false;
    this.lose(new Error(reason), false);
  }

  private async open(kind: 'exec' | 'pty', req: ExecRequest | PtyRequest, timeoutMs: number): Promise<AgentChannel> {
    await this.ready(timeoutMs);
    const p = this.protocol!;
    const { session, bytes } = kind === 'exec' ? p.openExec(req as ExecRequest) : p.openPty(req as PtyRequest);
    const channel = new AgentChannel(session, kind, this.link, req.window ?? DEFAULT_WINDOW);
    this.channels.set(session, channel);
    const sentAt = Date.now();
    return new Promise<AgentChannel>((resolve, reject) => {
      const timer = setTimeout(() => {
        const o = this.opens.get(session);
        if (o) o.abandoned = true;
        reject(new Error(`the guest agent did not start the ${kind} session within ${timeoutMs} ms`));
        this.checkAlive(sentAt);
      }, timeoutMs);
      this.opens.set(session, { channel, resolve, reject, timer, abandoned: false });
      this.send(bytes);
    });
  }

  private send(bytes: Buffer): void {
    if (this.held) {
      this.held.push(bytes);
      this.heldBytes += bytes.length;
      if (this.heldBytes > MAX_HELD_BYTES) this.reset(`more than ${MAX_HELD_BYTES} bytes waited for the sprite to wake`);
      return;
    }
    this.socket?.write(bytes);
  }

  /** Sends what was held, in order, and stops holding. */
  private release(): void {
    const held = this.held ?? [];
    this.held = null;
    this.heldBytes = 0;
    for (const b of held) this.socket?.write(b);
  }

  private async connect(deadline: number, after?: Promise<unknown>): Promise<AgentInfo> {
    if (this.suspended && this.protocol) {
      this.suspended = false;
      try {
        return await this.attempt({ resume: true, timeoutMs: Math.max(50, Math.min(RESUME_TIMEOUT_MS, deadline - Date.now())), after });
      } catch (err) {
        if (err instanceof AgentVersionError) throw err;
        this.lose(new Error(`the sessions could not be resumed after the sprite woke (${(err as Error).message})`), true);
      }
    }
    return this.connectWithRetry(deadline, after);
  }

  private async connectWithRetry(deadline: number, after?: Promise<unknown>): Promise<AgentInfo> {
    const timeouts = this.opts.helloTimeoutsMs ?? HELLO_TIMEOUTS_MS;
    let lastErr: Error | null = null;
    let backoff = 10;
    let protocolBackoff = 50;
    const started = Date.now();
    {
      for (let attempt = 0; !this.closed && (attempt === 0 || Date.now() < deadline); attempt++) {
        const wait = Math.max(50, Math.min(timeouts[Math.min(attempt, timeouts.length - 1)], deadline - Date.now()));
        try {
          const info = await this.attempt({ resume: false, flush: attempt > 0, timeoutMs: wait, after: attempt === 0 ? after : undefined });
          return info;
        } catch (err) {
          lastErr = err as Error;
          if (err instanceof AgentVersionError) throw err;
          this.noteFailure(lastErr, started);
          const code = (err as NodeJS.ErrnoException).code;
          if (code === 'ENOENT' || code === 'ECONNREFUSED') {
            // the hypervisor not there (yet): nothing listens on the port
            await new Promise((r) => setTimeout(r, backoff));
            backoff = Math.min(backoff * 2, 200);
          } else if (err instanceof AgentProtocolError) {
            // something answers, wrongly (a guest that replaced its agent): not in a tight loop
            await new Promise((r) => setTimeout(r, protocolBackoff));
            protocolBackoff = Math.min(protocolBackoff * 2, 1000);
          }
        }
      }
    }
    throw new Error(`could not reach the guest agent${this.name()}: ${lastErr?.message ?? 'closed'}`);
  }

  /**
   * One connection, one HELLO; resolves when its answer arrives. A resume keeps the protocol
   * (sessions, credit, a half frame from the old connection) and finds the answer in-stream.
   */
  private async attempt(a: { resume: boolean; flush?: boolean; timeoutMs: number; after?: Promise<unknown> }): Promise<AgentInfo> {
    const socket = await this.opts.connect();
    if (this.closed) {
      socket.destroy();
      throw new Error('guest agent client closed');
    }
    const protocol = a.resume ? this.protocol! : new AgentProtocol();
    const hello = a.resume ? protocol.resumeHello() : protocol.hello();
    if (a.resume) {
      this.held ??= [];
      this.socket = socket;
    }
    return new Promise((resolve, reject) => {
      let settled = false;
      let timer: NodeJS.Timeout | undefined;
      const fail = (err: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (this.socket === socket) this.socket = null;
        socket.destroy();
        reject(err);
      };
      const arm = () => {
        if (!settled) timer = setTimeout(() => fail(new Error(`no answer to HELLO within ${a.timeoutMs} ms`)), a.timeoutMs);
      };
      if (a.after) a.after.then(arm, (err: Error) => fail(err));
      else arm();
      socket.on('error', (err) => fail(err));
      socket.on('close', () => {
        fail(new Error('the connection closed before the agent answered'));
        if (this.socket === socket) this.onSocketClosed();
      });
      if (a.flush) socket.write(flushBytes());
      socket.write(hello);
      this.emit('hello');
      socket.on('data', (chunk: Buffer) => {
        if (settled) {
          if (this.socket === socket) this.receive(chunk);
          return;
        }
        let events: AgentEvent[];
        try {
          events = protocol.receive(chunk);
        } catch (err) {
          if (err instanceof AgentProtocolError && !(err instanceof AgentVersionError)) this.opts.log?.(`guest agent${this.name()}: closing the connection: ${(err as Error).message}`);
          return fail(err as Error);
        }
        // when resuming, frames of the epoch go on before the answer: they are the old
        // connection's stream continued
        const at = events.findIndex((e) => e.kind === 'ready' || e.kind === 'resumed');
        if (at < 0) {
          if (a.resume) this.dispatch(events);
          else if (events.length) fail(new AgentProtocolError('the first frame was not HELLO_ACK'));
          return;
        }
        if (!a.resume && at > 0) return fail(new AgentProtocolError('the first frame was not HELLO_ACK'));
        if (a.resume) this.dispatch(events.slice(0, at));
        const answer = events[at] as Extract<AgentEvent, { kind: 'ready' | 'resumed' }>;
        settled = true;
        clearTimeout(timer);
        if (this.closed) {
          socket.destroy();
          return reject(new Error('guest agent client closed'));
        }
        this.socket = socket;
        this.protocol = protocol;
        this.agentInfo = answer.info;
        if (answer.kind === 'resumed') {
          for (const id of answer.gone) this.endChannel(id, 'the session ended while the sprite slept');
          this.opts.log?.(`guest agent${this.name()}: resumed ${answer.info.resumed?.length ?? 0} session(s) after waking`);
          this.release();
          resolve(answer.info);
          this.emit('resumed', answer.info);
        } else {
          if (a.resume) {
            // the agent began a new epoch: the sessions of the old one are gone, held frames with them
            this.held = null;
            this.heldBytes = 0;
            this.failAll('the guest agent started over while the sprite slept');
          }
          if (protocol.droppedBytes) this.opts.log?.(`guest agent${this.name()}: skipped ${protocol.droppedBytes} stale bytes before the answer to HELLO`);
          resolve(answer.info);
          this.emit('ready', answer.info);
        }
        this.dispatch(events.slice(at + 1));
      });
    });
  }

  private name(): string {
    return this.opts.name ? ` of ${this.opts.name}` : '';
  }

  /** The connection ended (the machine quit, or was saved and quit): suspended sessions wait; others are lost. */
  private onSocketClosed(): void {
    if (this.suspended) {
      this.socket = null;
      for (const [, p] of this.pings) {
        clearTimeout(p.timer);
        p.reject(new Error('the sprite went to sleep'));
      }
      this.pings.clear();
      return;
    }
    this.lose(new Error('the guest agent connection closed (the machine ended?)'), false);
  }

  private receive(chunk: Buffer): void {
    let events: AgentEvent[];
    try {
      events = this.protocol!.receive(chunk);
    } catch (err) {
      this.suspended = false;
      return this.lose(err as Error, true);
    }
    this.dispatch(events);
  }

  private endChannel(session: number, lost: string): void {
    const channel = this.channels.get(session);
    this.channels.delete(session);
    const o = this.opens.get(session);
    if (o) {
      this.opens.delete(session);
      clearTimeout(o.timer);
      o.reject(new Error(`guest agent session lost: ${lost}`));
    }
    channel?.onExit({ code: null, signal: null, timedOut: false, lost });
  }

  private dispatch(events: AgentEvent[]): void {
    for (const e of events) {
      if (!this.protocol) return; // lost while dispatching
      switch (e.kind) {
        case 'pong': {
          this.noteHealthy();
          const p = this.pings.get(e.token);
          if (p) {
            this.pings.delete(e.token);
            clearTimeout(p.timer);
            p.resolve();
          }
          break;
        }
        case 'announce':
          this.suspended = false;
          this.lose(new Error(`the guest agent restarted (pid ${e.info.pid})`), true);
          return;
        case 'fault':
          this.suspended = false;
          this.lose(new Error(`the guest agent reported malformed input from the daemon: ${e.message}`), true);
          return;
        case 'opened': {
          this.noteHealthy();
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
          this.noteHealthy();
          const r = this.results.get(e.session);
          if (r) {
            this.results.delete(e.session);
            clearTimeout(r.timer);
            r.resolve(e.result);
          }
          break;
        }
        case 'ready':
        case 'resumed':
          break;
      }
    }
  }

  /** Every session and request ends (as lost, saying why). */
  private failAll(reason: string): void {
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
  }

  /** The channel is gone: close the connection, end every session and request, say why once. */
  private lose(err: Error, log: boolean): void {
    const socket = this.socket;
    const hadSessions = this.channels.size + this.opens.size + this.results.size > 0;
    this.socket = null;
    this.protocol = null;
    this.held = null;
    this.heldBytes = 0;
    this.suspended = false;
    socket?.destroy();
    if (log) this.opts.log?.(`guest agent${this.name()}: closing the channel: ${err.message}`);
    this.failAll(err.message);
    if (socket || hadSessions) this.emit('lost', err);
    // the guest broke the channel (malformed frames, a restart, a fault): find out whether it
    // answers again, without waiting for a caller
    if (log && !this.closed) this.noteFailure(err);
  }

  /**
   * A request went unanswered since `since`: a PING tells a slow agent from a gone one (stopped,
   * replaced: the connection to the port stays up while nothing reads it). Gone: the channel is
   * dropped as broken, failing since the request was sent.
   */
  private checkAlive(since: number): void {
    if (!this.isReady) return;
    const socket = this.socket;
    this.pingNow(3_000).catch(() => {
      if (this.socket !== socket || this.closed) return;
      this.failingSince ??= since;
      this.lose(new Error(`the guest agent stopped answering (no answer to a request for ${Math.round((Date.now() - since) / 1000)} s, nor to a PING)`), true);
    });
  }

  /** Something failed: account for it, say `stuck` once it has gone on too long, and probe. */
  private noteFailure(err: Error, since = Date.now()): void {
    if (this.closed) return;
    const now = Date.now();
    this.failingSince ??= since;
    const stuckAfter = this.opts.stuckAfterMs ?? 10_000;
    if (now - this.failingSince >= stuckAfter && now - this.stuckAt >= STUCK_AGAIN_MS) {
      this.stuckAt = now;
      this.emit('stuck', err);
    }
    this.scheduleProbe();
  }

  private noteHealthy(): void {
    this.failingSince = null;
    this.stuckAt = -Infinity;
    this.probeDelay = PROBE_FIRST_MS;
    if (this.probeTimer) clearTimeout(this.probeTimer);
    this.probeTimer = null;
  }

  /** Reconnects and pings a broken agent, backing off, until it answers (or the client closes or suspends). */
  private scheduleProbe(): void {
    if (this.closed || this.suspended || this.probeTimer) return;
    this.probeTimer = setTimeout(() => {
      this.probeTimer = null;
      if (this.closed || this.suspended || this.failingSince === null) return;
      const stuckAfter = this.opts.stuckAfterMs ?? 10_000;
      this.ready(Math.max(stuckAfter, 1000))
        .then(() => this.pingNow(2_000))
        .catch((err: Error) => this.noteFailure(err));
    }, this.probeDelay);
    this.probeTimer.unref?.();
    this.probeDelay = Math.min(this.probeDelay * 2, PROBE_MAX_MS);
  }
}
