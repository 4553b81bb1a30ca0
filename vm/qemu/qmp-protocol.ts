/**
 * The QEMU Machine Protocol without I/O: turns commands into lines and incoming messages into
 * resolved/rejected commands and events. Every command carries an `id`, so replies are matched
 * exactly even if QEMU interleaves events. The socket shell around it is qmp-client.ts.
 */
import { JsonLineDecoder } from '../json-lines.ts';

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
    super(`QMP ${command}: ${desc} (${errorClass})`);
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
  | { kind: 'garbage'; line: string };

export class QmpProtocol {
  private decoder = new JsonLineDecoder();
  private pending = new Map<string, Pending>();
  private nextId = 1;

  /** Returns the line to write and a promise for the command's `return` value. */
  command(execute: string, args?: Record<string, unknown>): { line: string; reply: Promise<unknown> } {
    const id = `c${this.nextId++}`;
    const msg: Record<string, unknown> = { execute, id };
    if (args && Object.keys(args).length) msg.arguments = args;
    const reply = new Promise<unknown>((resolve, reject) => this.pending.set(id, { command: execute, resolve, reject }));
    return { line: JSON.stringify(msg) + '\n', reply };
  }

  /** Feeds received text; settles matching commands and returns what else arrived. */
  receive(chunk: string): QmpOutput[] {
    const out: QmpOutput[] = [];
    const { messages, garbage } = this.decoder.feed(chunk);
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
        if ('error' in m) p.reject(new QmpError(m.error?.class ?? 'GenericError', m.error?.desc ?? 'unknown error', p.command));
        else p.resolve(m.return);
      } else {
        out.push({ kind: 'garbage', line: JSON.stringify(m) });
      }
    }
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
