/**
 * What a sprite tried to reach and was refused, for the person who wonders why something in it
 * fails: the last LIST_SIZE refusals (time, name, address, port, protocol, why), for `spritely net
 * show NAME` and the UI's sprite header (list(), read through the sprite's SpriteNetwork), and the daemon log. The guest decides how often
 * it is refused, so the log is rate-limited: one line per destination (host) per interval, at most
 * LINES_PER_INTERVAL lines per interval in all, and what was held back is counted and summed up
 * in one "N more refused" line when the interval ends. Guest text (names) reaches the list and
 * the log only through safeText().
 */
import { safeText } from '../safe-text.ts';

export type RefusedProtocol = 'tcp' | 'udp' | 'dns';

export interface Refusal {
  protocol: RefusedProtocol;
  /** The host name the guest asked for (as written, or as its DNS query named it). */
  name: string | null;
  /** The address it asked for or that the name led to, canonical. */
  address: string | null;
  /** The destination port (DNS: none). */
  port: number | null;
  /** One sentence, no final period: the decision's reason. */
  reason: string;
}

export interface RefusedDestination extends Refusal {
  /** ISO 8601. */
  at: string;
  /** How many times in a row this same refusal happened (the list keeps one row for a burst). */
  count: number;
}

export const LIST_SIZE = 32;
export const INTERVAL_MS = 60_000;
export const LINES_PER_INTERVAL = 60;
/** Destinations remembered for rate limiting; beyond it, new destinations are held back too. */
const MAX_KEYS = 1024;

export interface RefusalLogOptions {
  sprite: string;
  /**
   * Where the person finds the whole list, named in the summary line (e.g. `spritely net show
   * dev`), once something shows it.
   */
  listedBy?: string;
  /** A daemon log line (the caller prefixes the sprite). */
  log?: (line: string) => void;
  listSize?: number;
  intervalMs?: number;
  linesPerInterval?: number;
  /** Default Date.now; tests pass a clock. */
  now?: () => number;
  /** Whether to end an interval on a timer (the daemon); tests call flush(). Default true. */
  timer?: boolean;
}

/** The line the daemon logs for one refusal. */
export function refusalLine(r: Refusal): string {
  const where = destination(r);
  return `${r.protocol === 'dns' ? 'dns' : r.protocol === 'udp' ? 'udp' : 'egress'} refused: ${where}: ${safeText(r.reason, { maxChars: 300 })}`;
}

function destination(r: Refusal): string {
  const host = r.name ?? (r.address === null ? '?' : r.address.includes(':') ? `[${r.address}]` : r.address);
  const via = r.name && r.address ? ` (${r.address})` : '';
  return r.port === null ? `${host}${via}` : `${host}:${r.port}${via}`;
}

export class RefusalLog {
  private readonly entries: RefusedDestination[] = [];
  /** Destination key → when its last line was logged. */
  private readonly lastLine = new Map<string, number>();
  private windowStart = 0;
  private linesInWindow = 0;
  private heldBack = 0;
  private readonly heldKeys = new Set<string>();
  private summaryTimer: NodeJS.Timeout | null = null;
  private prunedAt = -Infinity;

  constructor(private readonly opts: RefusalLogOptions) {}

  private now(): number {
    return (this.opts.now ?? Date.now)();
  }

  record(refusal: Refusal): void {
    const r: Refusal = { ...refusal, name: refusal.name === null ? null : safeText(refusal.name, { maxChars: 260 }), reason: safeText(refusal.reason, { maxChars: 500 }) };
    const now = this.now();
    this.remember(r, now);
    const interval = this.opts.intervalMs ?? INTERVAL_MS;
    if (now - this.windowStart >= interval) this.flush();
    // a destination is a host: the policy does not depend on the port, and a port scan is one line
    const key = `${r.protocol}|${r.name ?? ''}|${r.address ?? ''}`;
    const last = this.lastLine.get(key);
    const fresh = last === undefined || now - last >= interval;
    const roomForKey = last !== undefined || this.lastLine.size < MAX_KEYS || this.pruneKeys(now, interval);
    if (fresh && roomForKey && this.linesInWindow < (this.opts.linesPerInterval ?? LINES_PER_INTERVAL)) {
      this.lastLine.set(key, now);
      this.linesInWindow++;
      this.opts.log?.(refusalLine(r));
      return;
    }
    this.heldBack++;
    if (this.heldKeys.size < MAX_KEYS) this.heldKeys.add(key);
    if (!this.summaryTimer && this.opts.timer !== false) {
      this.summaryTimer = setTimeout(() => {
        this.summaryTimer = null;
        this.flush();
      }, Math.max(0, this.windowStart + interval - now));
      this.summaryTimer.unref();
    }
  }

  /** Ends the current interval: logs the summary of what was held back, if anything was. */
  flush(): void {
    const now = this.now();
    if (this.heldBack > 0) {
      const secs = Math.round((now - this.windowStart) / 1000);
      const n = this.heldKeys.size;
      const where = this.opts.listedBy ? `; the latest: ${this.opts.listedBy}` : '';
      this.opts.log?.(`${this.heldBack} more refused (${n}${n >= MAX_KEYS ? '+' : ''} destination${n === 1 ? '' : 's'}) in the last ${secs} s, not logged one by one${where}`);
    }
    this.heldBack = 0;
    this.heldKeys.clear();
    this.linesInWindow = 0;
    this.windowStart = now;
    if (this.summaryTimer) clearTimeout(this.summaryTimer);
    this.summaryTimer = null;
  }

  /** The last refusals, newest first (what `net show` and the UI show). */
  list(): RefusedDestination[] {
    return this.entries.map((e) => ({ ...e })).reverse();
  }

  /** Stops the summary timer (the sprite stopped). */
  close(): void {
    this.flush();
  }

  private remember(r: Refusal, now: number): void {
    const last = this.entries[this.entries.length - 1];
    if (last && last.protocol === r.protocol && last.name === r.name && last.address === r.address && last.port === r.port && last.reason === r.reason) {
      last.count++;
      last.at = new Date(now).toISOString();
      return;
    }
    this.entries.push({ ...r, at: new Date(now).toISOString(), count: 1 });
    if (this.entries.length > (this.opts.listSize ?? LIST_SIZE)) this.entries.shift();
  }

  /** Forgets destinations whose interval is over; at most once a second (a flood calls it often). */
  private pruneKeys(now: number, interval: number): boolean {
    if (now - this.prunedAt >= 1000) {
      this.prunedAt = now;
      for (const [k, t] of this.lastLine) if (now - t >= interval) this.lastLine.delete(k);
    }
    return this.lastLine.size < MAX_KEYS;
  }
}
