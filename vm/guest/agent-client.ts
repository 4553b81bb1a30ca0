/**
 * The daemon's connection to one sprite's guest agent: a byte channel to the guest's agent port
 * (the caller's connector: under QEMU the port's unix socket) under the sans-IO protocol of
 * agent-protocol.ts. It connects lazily and again whenever needed: one HELLO per connection,
 * retried on a new one until answered (agent-hello.ts). Anything malformed from the guest closes
 * this channel — logged once — and fails its sessions (agent-sessions.ts); the next call connects
 * again with a new epoch, and meanwhile the client probes whether the agent answers again
 * (agent-liveness.ts).
 *
 * Across a sleep the client can keep its sessions: `suspend` holds every outgoing frame and
 * makes sure the agent has read all that was sent (a PING answered), the machine is saved and
 * ends, and the next connection (to the woken machine, the same RAM) asks the agent to resume the
 * epoch instead of starting one: shells and their output go on where they were.
 *
 * Nothing here imports the engine.
 */
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { AgentChannel, type ChannelLink } from './agent-channel.ts';
import { HELLO_TIMEOUTS_MS, helloWithRetry, RESUME_TIMEOUT_MS, sayHello, type AgentConnector, type HelloHost } from './agent-hello.ts';
import { AgentLiveness } from './agent-liveness.ts';
import type { GuestNetwork } from '../net/sprite-network.ts';
import { AgentRelay } from './agent-relay.ts';
import { CloseReason, RELAY_EVENT_KINDS, type RelayEvent } from './agent-relay-protocol.ts';
import {
  AgentProtocol, AgentVersionError, DEFAULT_WINDOW, type AgentEvent, type AgentIdentity, type AgentInfo, type ExecRequest,
  type IdentityResult, type PtyRequest,
} from './agent-protocol.ts';
import { AgentSessions, type SessionEvent } from './agent-sessions.ts';

export { HELLO_TIMEOUTS_MS, unixSocket, type AgentConnector } from './agent-hello.ts';

const OPEN_TIMEOUT_MS = 30_000;
/** Frames held while suspended, at most (stdin credit bounds them long before). */
const MAX_HELD_BYTES = 8 * 1024 * 1024;

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
  /** The sprite's network: the guest's TCP connections and DNS queries are carried to it (agent-relay.ts). */
  network?: GuestNetwork;
}

export interface ReadyOptions {
  /** The HELLO is sent at once, but its answer is waited for only once this settles (the machine runs). */
  after?: Promise<unknown>;
}

export class AgentClient extends EventEmitter<{ hello: []; ready: [AgentInfo]; resumed: [AgentInfo]; lost: [Error]; stuck: [Error] }> {
  private socket: Duplex | null = null;
  private protocol: AgentProtocol | null = null;
  private connecting: Promise<AgentInfo> | null = null;
  private closed = false;
  private agentInfo: AgentInfo | null = null;
  /** Frames sent while suspended or resuming, in order (null: not holding). */
  private held: Buffer[] | null = null;
  private heldBytes = 0;
  /** Suspended with a quiet stream: the sessions wait for a resume. */
  private suspended = false;
  private readonly liveness: AgentLiveness;
  private readonly sessions: AgentSessions;
  private readonly link: ChannelLink;
  private readonly host: HelloHost;
  private readonly relay: AgentRelay | null;

  constructor(private readonly opts: AgentClientOptions) {
    super();
    this.relay = opts.network
      ? new AgentRelay(opts.network, { protocol: () => (this.socket && this.protocol?.ready ? this.protocol.relay : null), write: (b) => this.send(b) }, opts.log)
      : null;
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
    this.liveness = new AgentLiveness({
      stuckAfterMs: () => this.opts.stuckAfterMs,
      isClosed: () => this.closed,
      isSuspended: () => this.suspended,
      stuck: (err) => this.emit('stuck', err),
      probe: (timeoutMs) => this.ready(timeoutMs).then(() => this.pingNow(2_000)),
    });
    this.sessions = new AgentSessions(() => this.liveness.healthy());
    this.host = {
      connect: () => this.opts.connect(),
      isClosed: () => this.closed,
      socket: () => this.socket,
      setSocket: (s) => (this.socket = s),
      epoch: () => this.protocol,
      name: () => this.name(),
      log: (msg) => this.opts.log?.(msg),
      hello: () => this.emit('hello'),
      hold: () => (this.held ??= []),
      dispatch: (events) => this.dispatch(events),
      receive: (chunk) => this.receive(chunk),
      socketClosed: () => this.onSocketClosed(),
      answered: (protocol, answer, resume) => this.answered(protocol, answer, resume),
      announce: (answer) => (answer.kind === 'resumed' ? this.emit('resumed', answer.info) : this.emit('ready', answer.info)),
      failed: (err, since) => this.liveness.failed(err, since),
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
    return this.sessions.channels.size;
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
        this.sessions.pings.delete(token);
        reject(new Error(`the guest agent did not answer a ping within ${timeoutMs} ms`));
      }, timeoutMs);
      this.sessions.pings.set(token, { resolve: () => resolve(performance.now() - t0), reject, timer });
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
        this.sessions.results.delete(session);
        reject(new Error(`the guest did not apply its identity within ${timeoutMs} ms`));
        this.checkAlive(sentAt);
      }, timeoutMs);
      this.sessions.results.set(session, { resolve, reject, timer });
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
    // a sleeping sprite holds nothing open outside: its relayed connections end with a reset
    // (the guest hears it before the PING below is answered)
    this.relay?.closeAll();
    if (!this.isReady) return this.sessions.channels.size === 0 && this.sessions.opens.size === 0;
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
    this.liveness.stop();
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
    this.sessions.channels.set(session, channel);
    const sentAt = Date.now();
    return new Promise<AgentChannel>((resolve, reject) => {
      const timer = setTimeout(() => {
        const o = this.sessions.opens.get(session);
        if (o) o.abandoned = true;
        reject(new Error(`the guest agent did not start the ${kind} session within ${timeoutMs} ms`));
        this.checkAlive(sentAt);
      }, timeoutMs);
      this.sessions.opens.set(session, { channel, resolve, reject, timer, abandoned: false });
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
        return await sayHello(this.host, { resume: true, timeoutMs: Math.max(50, Math.min(RESUME_TIMEOUT_MS, deadline - Date.now())), after });
      } catch (err) {
        if (err instanceof AgentVersionError) throw err;
        this.lose(new Error(`the sessions could not be resumed after the sprite woke (${(err as Error).message})`), true);
      }
    }
    return helloWithRetry(this.host, deadline, this.opts.helloTimeoutsMs ?? HELLO_TIMEOUTS_MS, after);
  }

  /** A HELLO was answered on the client's (new) connection: take the epoch, before the attempt resolves. */
  private answered(protocol: AgentProtocol, answer: Extract<AgentEvent, { kind: 'ready' | 'resumed' }>, resume: boolean): void {
    this.protocol = protocol;
    this.agentInfo = answer.info;
    // the agent ends its relayed connections at every HELLO, resumed or not: so does this side
    this.relay?.reset();
    if (answer.kind === 'resumed') {
      for (const id of answer.gone) this.sessions.end(id, 'the session ended while the sprite slept');
      this.opts.log?.(`guest agent${this.name()}: resumed ${answer.info.resumed?.length ?? 0} session(s) after waking`);
      this.release();
      return;
    }
    if (resume) {
      // the agent began a new epoch: the sessions of the old one are gone, held frames with them
      this.held = null;
      this.heldBytes = 0;
      this.sessions.failAll('the guest agent started over while the sprite slept');
    }
    if (protocol.droppedBytes) this.opts.log?.(`guest agent${this.name()}: skipped ${protocol.droppedBytes} stale bytes before the answer to HELLO`);
  }

  private name(): string {
    return this.opts.name ? ` of ${this.opts.name}` : '';
  }

  /** The connection ended (the machine quit, or was saved and quit): suspended sessions wait; others are lost. */
  private onSocketClosed(): void {
    if (this.suspended) {
      this.socket = null;
      this.sessions.failPings('the sprite went to sleep');
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

  private dispatch(events: AgentEvent[]): void {
    for (const e of events) {
      if (!this.protocol) return; // lost while dispatching
      if (e.kind === 'announce') {
        this.suspended = false;
        this.lose(new Error(`the guest agent restarted (pid ${e.info.pid})`), true);
        return;
      }
      if (e.kind === 'fault') {
        this.suspended = false;
        this.lose(new Error(`the guest agent reported malformed input from the daemon: ${e.message}`), true);
        return;
      }
      if (RELAY_EVENT_KINDS.has(e.kind)) this.onRelay(e as RelayEvent);
      else this.sessions.route(e as SessionEvent);
    }
  }

  /** The network relay's events: to the sprite's network, or refused when this client has none. */
  private onRelay(e: RelayEvent): void {
    if (this.relay) return this.relay.onEvent(e);
    const refusal = e.kind === 'tcp-connect' ? this.protocol?.relay.close(e.session, CloseReason.Refused, 'spritely: this sprite has no network carrier') : null;
    if (refusal) this.send(refusal);
  }

  /** The channel is gone: close the connection, end every session and request, say why once. */
  private lose(err: Error, log: boolean): void {
    const socket = this.socket;
    const hadSessions = this.sessions.busy;
    this.socket = null;
    this.protocol = null;
    this.held = null;
    this.heldBytes = 0;
    this.suspended = false;
    this.relay?.reset();
    socket?.destroy();
    if (log) this.opts.log?.(`guest agent${this.name()}: closing the channel: ${err.message}`);
    this.sessions.failAll(err.message);
    if (socket || hadSessions) this.emit('lost', err);
    // the guest broke the channel (malformed frames, a restart, a fault): find out whether it
    // answers again, without waiting for a caller
    if (log && !this.closed) this.liveness.failed(err);
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
      this.liveness.failingFrom(since);
      this.lose(new Error(`the guest agent stopped answering (no answer to a request for ${Math.round((Date.now() - since) / 1000)} s, nor to a PING)`), true);
    });
  }
}
