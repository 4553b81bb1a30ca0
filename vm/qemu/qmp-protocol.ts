/**
 * The QEMU Machine Protocol without I/O: turns commands into lines and incoming messages into
 * resolved/rejected commands and events. Every command carries an `id`, so replies are matched
 * exactly even if QEMU interleaves events. The socket shell around it is qmp-client.ts.
 *
 * QEMU is not the guest, but it relays text the guest influences (error descriptions, event data),
 * so its lines are decoded like any guest channel's: linear and capped (`MAX_QMP_LINE`; a longer
 * line is an `overflow` and the shell closes the connection), and the error text that reaches a
 * message is made inert (safe-text.ts).
 */
import { JsonLineDecoder } from '../json-lines.ts';
import { safeText } from '../safe-text.ts';

/** The longest QMP line accepted. QEMU's replies to what we ask are a few KiB at most. */
export const MAX_QMP_LINE = 16 * 1024 * 1024;

export interface QmpEvent {
  event: string;
  data?: Record<string, unknown>;
  timestamp?: { seconds: number; microseconds: number };
}

export class QmpError extends Error {
  override name = 'QmpError';
  constructor(
    readonly errorClass: string,
    readonly desc: string,
    readonly command: string,
  ) {
    super(`QMP ${command}: ${safeText(desc, { maxChars: 500 })} (${safeText(errorClass, { maxChars: 60 })})`);
  }
}

interface Pending {
  command: string;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
}

export type QmpOutput =
  | { kind: 'greeting'; version: unknown }
  | { kind: 'event'; event: QmpEvent }
  | { kind: 'garbage'; line: string }
  /** A line passed MAX_QMP_LINE: nothing more is decoded; the connection must be closed. */
  | { kind: 'overflow'; maxLineBytes: number };

export class QmpProtocol {
  private readonly decoder: JsonLineDecoder;
  private pending = new Map<string, Pending>();
  private nextId = 1;

  constructor(maxLineBytes = MAX_QMP_LINE) {
    this.decoder = new JsonLineDecoder(maxLineBytes);
  }

  /** Returns the line to write and a promise for the command's `return` value. */
  command(execute: string, args?: Record<string, unknown>): { line: string; reply: Promise<unknown> } {
    const id = `c${this.nextId++}`;
    const msg: Record<string, unknown> = { execute, id };
    if (args && Object.keys(args).length) msg.arguments = args;
    const reply = new Promise<unknown>((resolve, reject) => this.pending.set(id, { command: execute, resolve, reject }));
    return { line: JSON.stringify(msg) + '\n', reply };
  }

  /** Feeds received bytes; settles matching commands and returns what else arrived. */
  receive(chunk: Buffer | string): QmpOutput[] {
    const out: QmpOutput[] = [];
    const { messages, garbage, overflow } = this.decoder.feed(chunk);
    for (const line of garbage) out.push({ kind: 'garbage', line });
    for (const raw of messages) {
      const m = raw as Record<string, any>;
      if (m && typeof m === 'object' && 'QMP' in m) {
        out.push({ kind: 'greeting', version: m.QMP?.version });
      } else if (m && typeof m.event === 'string') {
        out.push({ kind: 'event', event: m as QmpEvent });
      } else if (m && typeof m.id === 'string' && this.pending.has(m.id)) {
        const p = this.pending.get(m.id)!;
        this.pending.delete(m.id);
        if ('error' in m) p.reject(new QmpError(String(m.error?.class ?? 'GenericError'), String(m.error?.desc ?? 'unknown error'), p.command));
        else p.resolve(m.return);
      } else {
        out.push({ kind: 'garbage', line: JSON.stringify(m).slice(0, 1000) });
      }
    }
    if (overflow) out.push({ kind: 'overflow', maxLineBytes: this.decoder.maxLineBytes });
    return out;
  }

  /** Rejects every command still waiting (the connection is gone). */
  failAll(err: Error): void {
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }

  get pendingCount(): number {
    return this.pending.size;
  }
}
