/**
 * Whether a sprite's guest agent is alive, for agent-client.ts. A guest owns its agent: it can
 * stop it, replace it or make it answer wrongly, and the connection to the port stays up while
 * nothing reads it. So the client tracks since when it has been failing, says `stuck` once that
 * has gone on too long (again every minute while it lasts), and after a channel broke abnormally
 * probes the agent by itself — reconnect and PING, backing off — until it answers, so a guest that
 * replaced its agent is noticed even when nobody is waiting. Any answer makes it healthy again.
 */

/** Probing a broken agent: first after this long, then backing off to PROBE_MAX_MS. */
const PROBE_FIRST_MS = 200;
const PROBE_MAX_MS = 5_000;
const STUCK_AGAIN_MS = 60_000;

/** What the liveness tracker needs from its client. */
export interface LivenessHost {
  /** After this long failing, `stuck` (undefined: 10 s). */
  stuckAfterMs(): number | undefined;
  isClosed(): boolean;
  isSuspended(): boolean;
  /** The agent has been failing for too long. */
  stuck(err: Error): void;
  /** Reconnects (waiting up to `timeoutMs`) and pings the agent. */
  probe(timeoutMs: number): Promise<unknown>;
}

export class AgentLiveness {
  /** Since when connecting or the channel has been failing (null: healthy). */
  private failingSince: number | null = null;
  private stuckAt = -Infinity;
  private probeTimer: NodeJS.Timeout | null = null;
  private probeDelay = PROBE_FIRST_MS;

  constructor(private readonly host: LivenessHost) {}

  /** Counts as failing since `since` unless it already was. */
  failingFrom(since: number): void {
    this.failingSince ??= since;
  }

  /** Something failed: account for it, say `stuck` once it has gone on too long, and probe. */
  failed(err: Error, since = Date.now()): void {
    if (this.host.isClosed()) return;
    const now = Date.now();
    this.failingSince ??= since;
    const stuckAfter = this.host.stuckAfterMs() ?? 10_000;
    if (now - this.failingSince >= stuckAfter && now - this.stuckAt >= STUCK_AGAIN_MS) {
      this.stuckAt = now;
      this.host.stuck(err);
    }
    this.scheduleProbe();
  }

  /** The agent answered. */
  healthy(): void {
    this.failingSince = null;
    this.stuckAt = -Infinity;
    this.probeDelay = PROBE_FIRST_MS;
    this.stop();
  }

  /** No more probes (the client closed). */
  stop(): void {
    if (this.probeTimer) clearTimeout(this.probeTimer);
    this.probeTimer = null;
  }

  /** Reconnects and pings a broken agent, backing off, until it answers (or the client closes or suspends). */
  private scheduleProbe(): void {
    if (this.host.isClosed() || this.host.isSuspended() || this.probeTimer) return;
    this.probeTimer = setTimeout(() => {
      this.probeTimer = null;
      if (this.host.isClosed() || this.host.isSuspended() || this.failingSince === null) return;
      const stuckAfter = this.host.stuckAfterMs() ?? 10_000;
      this.host.probe(Math.max(stuckAfter, 1000)).catch((err: Error) => this.failed(err));
    }, this.probeDelay);
    this.probeTimer.unref?.();
    this.probeDelay = Math.min(this.probeDelay * 2, PROBE_MAX_MS);
  }
}
