/**
 * What a guest agent client waits on, for agent-client.ts: its open sessions (each an
 * AgentChannel), the sessions still opening, the identity requests and the PINGs sent, each with
 * its timer. The events of one epoch are routed here to whoever waits for them, and when the
 * channel is lost everything here ends at once, saying why. Kept apart from the connection so
 * that the bookkeeping of an epoch reads in one place.
 */
import type { AgentChannel } from './agent-channel.ts';
import type { AgentEvent, IdentityResult } from './agent-protocol.ts';
import type { RelayEvent } from './agent-relay-protocol.ts';

export interface PendingOpen {
  channel: AgentChannel;
  resolve: (c: AgentChannel) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
  abandoned: boolean;
}

export interface Pending<T> {
  resolve: (v: T) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

/** The events of an epoch that concern its sessions and requests. */
export type SessionEvent = Exclude<AgentEvent, { kind: 'announce' | 'fault' } | RelayEvent>;

export class AgentSessions {
  readonly channels = new Map<number, AgentChannel>();
  readonly opens = new Map<number, PendingOpen>();
  readonly results = new Map<number, Pending<IdentityResult>>();
  readonly pings = new Map<string, Pending<void>>();

  /** `healthy` is called for every answer that shows the agent alive. */
  constructor(private readonly healthy: () => void) {}

  /** Sessions or requests are waiting (pings aside). */
  get busy(): boolean {
    return this.channels.size + this.opens.size + this.results.size > 0;
  }

  /** Hands one event to whoever waits for it. */
  route(e: SessionEvent): void {
    switch (e.kind) {
      case 'pong': {
        this.healthy();
        const p = this.pings.get(e.token);
        if (p) {
          this.pings.delete(e.token);
          clearTimeout(p.timer);
          p.resolve();
        }
        break;
      }
      case 'opened': {
        this.healthy();
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
        this.healthy();
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

  /** One session ends as lost (e.g. gone while the sprite slept). */
  end(session: number, lost: string): void {
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

  /** Every unanswered PING fails with `reason` (the sessions stay). */
  failPings(reason: string): void {
    for (const [, p] of this.pings) {
      clearTimeout(p.timer);
      p.reject(new Error(reason));
    }
    this.pings.clear();
  }

  /** Every session and request ends (as lost, saying why). */
  failAll(reason: string): void {
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
    this.failPings(`guest agent channel lost: ${reason}`);
  }
}
