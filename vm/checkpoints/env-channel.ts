/**
 * The host end of `spritely-env`: the guest's own requests (checkpoint create/list/restore/mount/
 * unmount/diff) over
 * the sprite's dedicated guest port (a byte channel the driver hands out only to this daemon). It is scoped to that one sprite by construction — a request cannot name
 * another sprite or reach any other API — and works with the guest's network cut off.
 *
 * Protocol: one JSON request per line, `{"id": "<random>", "op": "...", ...}`; the answer is
 * `=BEGIN <id>`, text lines, then `=OK` or `=ERR <message>`. The guest script skips anything
 * before its own `=BEGIN`, so stale bytes from an earlier, interrupted request are harmless.
 *
 * The guest is untrusted, so the channel is bounded: lines are split in linear time and capped
 * (line-splitter.ts), requests are served one at a time with a short queue (more are answered
 * "busy" at once), and a guest that sends a line over the cap, floods requests or does not read
 * its answers has its connection closed — logged once — and reopened after a back-off (1 s,
 * doubling up to a minute), during which what it writes waits in the guest (or is dropped by the
 * hypervisor). What a guest may ask, and how often, is the handler's business
 * (vm/engine/checkpoint-verbs.ts and guest-checkpoint-limits.ts).
 */
import type { Duplex } from 'node:stream';
import { z } from 'zod';
import { LineSplitter } from '../line-splitter.ts';
import { safeText } from '../safe-text.ts';

const Id = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/);
const CheckpointRef = z.string().max(20);

export const EnvRequest = z.discriminatedUnion('op', [
  z.object({ id: Id, op: z.literal('checkpoint.create'), comment: z.string().max(10_000).optional(), json: z.boolean().optional() }),
  z.object({ id: Id, op: z.literal('checkpoint.list'), json: z.boolean().optional() }),
  z.object({ id: Id, op: z.literal('checkpoint.restore'), checkpoint: CheckpointRef, backup: z.boolean().optional() }),
  z.object({ id: Id, op: z.literal('checkpoint.mount'), checkpoint: CheckpointRef }),
  z.object({ id: Id, op: z.literal('checkpoint.unmount'), checkpoint: CheckpointRef, force: z.boolean().optional() }),
  z.object({
    id: Id,
    op: z.literal('checkpoint.diff'),
    from: CheckpointRef,
    to: z.union([CheckpointRef, z.literal('now')]).optional(),
    paths: z.array(z.string().max(4096)).max(100).optional(),
    patch: z.boolean().optional(),
    json: z.boolean().optional(),
  }),
]);
export type EnvRequest = z.infer<typeof EnvRequest>;

export interface EnvReply {
  text: string;
  /** Runs after the reply was written (a restore replaces the machine that asked). */
  after?: () => void;
}

export type EnvHandler = (req: EnvRequest) => Promise<EnvReply>;

export function formatReply(id: string, result: { ok: true; text: string } | { ok: false; error: string }): string {
  const oneLine = (s: string) => s.replace(/[\r\n]+/g, ' ');
  // a text line that starts with "=" would read as the end of the answer: it gets a space first
  const text = result.ok && result.text ? result.text.replace(/\r/g, '').replace(/^=/gm, ' =').replace(/\n?$/, '\n') : '';
  const body = result.ok ? text + '=OK\n' : `=ERR ${oneLine(result.error)}\n`;
  return `=BEGIN ${id}\n${body}`;
}

/** Parses one request line; returns the request or an error reply addressed to whatever id it had. */
export function parseRequest(line: string): { req: EnvRequest } | { reply: string } {
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch {
    return { reply: formatReply('unknown', { ok: false, error: 'request is not JSON' }) };
  }
  const r = EnvRequest.safeParse(raw);
  if (r.success) return { req: r.data };
  const id = typeof (raw as { id?: unknown })?.id === 'string' && /^[A-Za-z0-9_-]{1,64}$/.test((raw as { id: string }).id) ? (raw as { id: string }).id : 'unknown';
  return { reply: formatReply(id, { ok: false, error: `bad request: ${r.error.issues[0]?.message ?? 'invalid'}` }) };
}

/** The longest request line (a comment is at most 10 000 characters). */
export const MAX_REQUEST_BYTES = 256 * 1024;
/** Requests that may wait while one is served; more are answered "busy" at once. */
export const MAX_WAITING = 8;
/** Requests in one second past which a guest is flooding (spritely-env asks one at a time). */
export const MAX_REQUESTS_PER_SECOND = 50;
/** Answers the guest has not read; past this it is not reading, and the channel is closed. */
export const MAX_UNREAD_BYTES = 1024 * 1024;

export interface EnvBackoff {
  firstMs: number;
  maxMs: number;
  /** A guest that behaved this long since its last misbehaviour starts again from `firstMs`. */
  forgiveAfterMs: number;
}

export const DEFAULT_ENV_BACKOFF: EnvBackoff = { firstMs: 1000, maxMs: 60_000, forgiveAfterMs: 10 * 60_000 };

export class EnvChannel {
  private socket: Duplex | null = null;
  private closed = false;
  private readonly splitter = new LineSplitter(MAX_REQUEST_BYTES);
  private retry: NodeJS.Timeout | null = null;
  private queued: string[] = [];
  private waiting: string[] = [];
  private serving = false;
  private backoffMs = 0;
  private lastMisbehaviour = 0;
  private windowStart = 0;
  private inWindow = 0;

  constructor(
    private readonly open: () => Promise<Duplex>,
    private readonly handle: EnvHandler,
    private readonly log: (msg: string) => void,
    private readonly backoff: EnvBackoff = DEFAULT_ENV_BACKOFF,
  ) {
    this.connect();
  }

  private connect(): void {
    if (this.closed) return;
    this.open().then(
      (s) => {
        if (this.closed) return void s.destroy();
        this.socket = s;
        this.splitter.reset();
        s.on('data', (chunk: Buffer) => this.onData(s, chunk));
        s.on('error', () => {});
        s.on('close', () => {
          if (this.socket !== s) return;
          this.socket = null;
          this.reconnectLater(500);
        });
        for (const t of this.queued.splice(0)) this.write(t);
      },
      () => this.reconnectLater(500),
    );
  }

  private reconnectLater(ms: number): void {
    if (this.closed || this.retry) return;
    this.retry = setTimeout(() => {
      this.retry = null;
      this.connect();
    }, ms);
  }

  private onData(s: Duplex, chunk: Buffer): void {
    if (this.socket !== s) return;
    const { lines, overflow } = this.splitter.push(chunk);
    for (const raw of lines) {
      const line = raw.toString('utf8').trim();
      if (!line) continue;
      const now = Date.now();
      if (now - this.windowStart >= 1000) {
        this.windowStart = now;
        this.inWindow = 0;
      }
      if (++this.inWindow > MAX_REQUESTS_PER_SECOND) return this.misbehaved(`sent more than ${MAX_REQUESTS_PER_SECOND} requests in a second`);
      if (this.waiting.length >= MAX_WAITING) {
        const id = parseRequest(line);
        const to = 'req' in id ? id.req.id : /^=BEGIN (\S+)/.exec(id.reply)![1];
        this.write(formatReply(to, { ok: false, error: `busy: ${MAX_WAITING} requests are already waiting; ask again when they are answered` }));
      } else {
        this.waiting.push(line);
        void this.pump();
      }
    }
    if (overflow) this.misbehaved(`sent a request line longer than ${MAX_REQUEST_BYTES} bytes`);
  }

  private async pump(): Promise<void> {
    if (this.serving) return;
    this.serving = true;
    try {
      for (let line = this.waiting.shift(); line !== undefined; line = this.waiting.shift()) await this.serve(line);
    } finally {
      this.serving = false;
    }
  }

  private async serve(line: string): Promise<void> {
    const parsed = parseRequest(line);
    if ('reply' in parsed) return this.write(parsed.reply);
    try {
      const reply = await this.handle(parsed.req);
      this.write(formatReply(parsed.req.id, { ok: true, text: reply.text }));
      if (reply.after) setTimeout(reply.after, 200);
    } catch (err) {
      this.write(formatReply(parsed.req.id, { ok: false, error: (err as Error).message }));
    }
  }

  /**
   * The guest broke the channel's rules: its connection is closed (what it sent and what waits is
   * dropped), logged once, and reopened after the back-off.
   */
  private misbehaved(why: string): void {
    const s = this.socket;
    if (!s) return;
    this.socket = null;
    this.waiting = [];
    this.splitter.reset();
    s.destroy();
    const now = Date.now();
    const b = this.backoff;
    this.backoffMs = this.backoffMs && now - this.lastMisbehaviour < b.forgiveAfterMs ? Math.min(this.backoffMs * 2, b.maxMs) : b.firstMs;
    this.lastMisbehaviour = now;
    this.log(`spritely-env channel closed: the guest ${why}; reopening it in ${this.backoffMs / 1000} s`);
    this.reconnectLater(this.backoffMs);
  }

  /** Writes to the guest (also used to re-answer a request after its machine was restored). */
  write(text: string): void {
    const s = this.socket;
    if (s?.writable) {
      if (s.writableLength > MAX_UNREAD_BYTES) return this.misbehaved(`did not read its answers (more than ${MAX_UNREAD_BYTES} bytes unread)`);
      s.write(text);
    } else if (this.queued.length < 16) this.queued.push(text);
    else this.log(`spritely-env: no connection to answer: ${safeText(text.split('\n')[0], { maxChars: 200 })}`);
  }

  close(): void {
    this.closed = true;
    if (this.retry) clearTimeout(this.retry);
    this.socket?.destroy();
  }
}
