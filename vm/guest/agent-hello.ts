/**
 * How agent-client.ts reaches a guest agent: one connection, one HELLO, and the retries around
 * it. The HELLO carries a random nonce and everything is ignored until the answer that echoes it;
 * if none comes in time the connection is dropped and the next attempt uses a new one (QEMU can be
 * left throttling the port by a write that happened while nobody was connected; only a disconnect
 * clears that), sending zeros first to end any half frame the agent may still hold. A resume
 * (after the sprite woke) keeps the epoch's protocol and finds its answer in-stream, after the
 * frames the agent had queued. The connection's state stays the client's, reached through
 * HelloHost.
 */
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { AgentProtocolError, flushBytes } from './agent-frames.ts';
import { AgentProtocol, AgentVersionError, type AgentEvent, type AgentInfo } from './agent-protocol.ts';

/** How long each HELLO waits for its answer; the last value repeats until the deadline. */
export const HELLO_TIMEOUTS_MS = [400, 800, 1500, 3000];
/** How long the answer to a resume may take once the machine runs. */
export const RESUME_TIMEOUT_MS = 5_000;

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

/** One HELLO: a resume or a new epoch, after zeros (`flush`), its answer awaited `timeoutMs` once `after` settles. */
export interface HelloAttempt {
  resume: boolean;
  flush?: boolean;
  timeoutMs: number;
  after?: Promise<unknown>;
}

export type HelloAnswer = Extract<AgentEvent, { kind: 'ready' | 'resumed' }>;

/** The client's side of an attempt: its connection state and what it does with the answer. */
export interface HelloHost {
  connect: AgentConnector;
  isClosed(): boolean;
  /** The client's connection now; a resume takes it at once, a new epoch once answered. */
  socket(): Duplex | null;
  setSocket(socket: Duplex | null): void;
  /** The epoch a resume goes on with. */
  epoch(): AgentProtocol | null;
  /** ` of NAME` for log lines, or nothing. */
  name(): string;
  log(msg: string): void;
  /** A HELLO went out. */
  hello(): void;
  /** A resume holds every frame the client sends until its answer. */
  hold(): void;
  /** Events of the epoch: a resume's before its answer, and any that follow an answer. */
  dispatch(events: AgentEvent[]): void;
  /** Bytes on the client's connection after the answer. */
  receive(chunk: Buffer): void;
  /** The client's connection closed. */
  socketClosed(): void;
  /** The answer arrived: the client takes the epoch (before the attempt resolves). */
  answered(protocol: AgentProtocol, answer: HelloAnswer, resume: boolean): void;
  /** After the attempt resolved: the client says so. */
  announce(answer: HelloAnswer): void;
  /** An attempt failed; the client has been failing since `since`. */
  failed(err: Error, since: number): void;
}

/**
 * One connection, one HELLO; resolves when its answer arrives. A resume keeps the protocol
 * (sessions, credit, a half frame from the old connection) and finds the answer in-stream.
 */
export async function sayHello(host: HelloHost, a: HelloAttempt): Promise<AgentInfo> {
  const socket = await host.connect();
  if (host.isClosed()) {
    socket.destroy();
    throw new Error('guest agent client closed');
  }
  const protocol = a.resume ? host.epoch()! : new AgentProtocol();
  const hello = a.resume ? protocol.resumeHello() : protocol.hello();
  if (a.resume) {
    host.hold();
    host.setSocket(socket);
  }
  return new Promise((resolve, reject) => {
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    const fail = (err: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (host.socket() === socket) host.setSocket(null);
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
      if (host.socket() === socket) host.socketClosed();
    });
    if (a.flush) socket.write(flushBytes());
    socket.write(hello);
    host.hello();
    socket.on('data', (chunk: Buffer) => {
      if (settled) {
        if (host.socket() === socket) host.receive(chunk);
        return;
      }
      let events: AgentEvent[];
      try {
        events = protocol.receive(chunk);
      } catch (err) {
        if (err instanceof AgentProtocolError && !(err instanceof AgentVersionError)) host.log(`guest agent${host.name()}: closing the connection: ${(err as Error).message}`);
        return fail(err as Error);
      }
      // when resuming, frames of the epoch go on before the answer: they are the old
      // connection's stream continued
      const at = events.findIndex((e) => e.kind === 'ready' || e.kind === 'resumed');
      if (at < 0) {
        if (a.resume) host.dispatch(events);
        else if (events.length) fail(new AgentProtocolError('the first frame was not HELLO_ACK'));
        return;
      }
      if (!a.resume && at > 0) return fail(new AgentProtocolError('the first frame was not HELLO_ACK'));
      if (a.resume) host.dispatch(events.slice(0, at));
      const answer = events[at] as HelloAnswer;
      settled = true;
      clearTimeout(timer);
      if (host.isClosed()) {
        socket.destroy();
        return reject(new Error('guest agent client closed'));
      }
      host.setSocket(socket);
      host.answered(protocol, answer, a.resume);
      resolve(answer.info);
      host.announce(answer);
      host.dispatch(events.slice(at + 1));
    });
  });
}

/**
 * New epochs until one is answered or `deadline` passes (at least one attempt): each HELLO
 * waits a little longer, and failures back off — briefly while nothing listens on the port
 * (the hypervisor not there yet), longer while something answers wrongly.
 */
export async function helloWithRetry(host: HelloHost, deadline: number, timeouts: number[], after?: Promise<unknown>): Promise<AgentInfo> {
  let lastErr: Error | null = null;
  let backoff = 10;
  let protocolBackoff = 50;
  const started = Date.now();
  for (let attempt = 0; !host.isClosed() && (attempt === 0 || Date.now() < deadline); attempt++) {
    const wait = Math.max(50, Math.min(timeouts[Math.min(attempt, timeouts.length - 1)], deadline - Date.now()));
    try {
      const info = await sayHello(host, { resume: false, flush: attempt > 0, timeoutMs: wait, after: attempt === 0 ? after : undefined });
      return info;
    } catch (err) {
      lastErr = err as Error;
      if (err instanceof AgentVersionError) throw err;
      host.failed(lastErr, started);
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
  throw new Error(`could not reach the guest agent${host.name()}: ${lastErr?.message ?? 'closed'}`);
}
