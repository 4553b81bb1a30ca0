/**
 * The host end of `spritely-env`: the guest's own requests (checkpoint create/list/restore) over
 * the sprite's dedicated guest port (a byte channel the driver hands out only to this daemon). It is scoped to that one sprite by construction — a request cannot name
 * another sprite or reach any other API — and works with the guest's network cut off.
 *
 * Protocol: one JSON request per line, `{"id": "<random>", "op": "...", ...}`; the answer is
 * `=BEGIN <id>`, text lines, then `=OK` or `=ERR <message>`. The guest script skips anything
 * before its own `=BEGIN`, so stale bytes from an earlier, interrupted request are harmless.
 */
import type { Duplex } from 'node:stream';
import { z } from 'zod';

export const EnvRequest = z.discriminatedUnion('op', [
  z.object({ id: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/), op: z.literal('checkpoint.create'), comment: z.string().max(10_000).optional(), json: z.boolean().optional() }),
  z.object({ id: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/), op: z.literal('checkpoint.list'), json: z.boolean().optional() }),
  z.object({ id: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/), op: z.literal('checkpoint.restore'), checkpoint: z.string().max(20), backup: z.boolean().optional() }),
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
  const body = result.ok ? (result.text ? result.text.replace(/\r/g, '').replace(/\n?$/, '\n') : '') + '=OK\n' : `=ERR ${oneLine(result.error)}\n`;
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

/** The most a request line may hold before the buffer is dropped (the guest is untrusted). */
const MAX_REQUEST_BYTES = 1024 * 1024;

export class EnvChannel {
  private socket: Duplex | null = null;
  private closed = false;
  private buffer = '';
  private retry: NodeJS.Timeout | null = null;
  private queued: string[] = [];

  constructor(
    private readonly open: () => Promise<Duplex>,
    private readonly handle: EnvHandler,
    private readonly log: (msg: string) => void,
  ) {
    this.connect();
  }

  private connect(): void {
    if (this.closed) return;
    this.open().then(
      (s) => {
        if (this.closed) return void s.destroy();
        this.socket = s;
        s.setEncoding('utf8');
        s.on('data', (chunk: string) => this.onData(chunk));
        s.on('error', () => {});
        s.on('close', () => {
          if (this.socket === s) this.socket = null;
          this.reconnectLater();
        });
        for (const t of this.queued.splice(0)) s.write(t);
      },
      () => this.reconnectLater(),
    );
  }

  private reconnectLater(): void {
    if (this.closed) return;
    this.retry = setTimeout(() => this.connect(), 500);
  }

  private onData(chunk: string): void {
    this.buffer += chunk;
    if (this.buffer.length > MAX_REQUEST_BYTES) this.buffer = '';
    let nl: number;
    while ((nl = this.buffer.indexOf('\n')) >= 0) {
      const line = this.buffer.slice(0, nl).trim();
      this.buffer = this.buffer.slice(nl + 1);
      if (line) void this.serve(line);
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

  /** Writes to the guest (also used to re-answer a request after its machine was restored). */
  write(text: string): void {
    if (this.socket?.writable) this.socket.write(text);
    else if (this.queued.length < 16) this.queued.push(text);
    else this.log(`spritely-env: no connection to answer: ${text.split('\n')[0]}`);
  }

  close(): void {
    this.closed = true;
    if (this.retry) clearTimeout(this.retry);
    this.socket?.destroy();
  }
}
