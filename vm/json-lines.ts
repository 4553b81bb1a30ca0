/**
 * Splits a byte stream into JSON messages, one per line, as QMP and the guest agent send them.
 * Pure: feed it chunks, it returns whole messages; a line that is not JSON is reported, not thrown.
 * Built on LineSplitter, so it is linear and bounded: a line over `maxLineBytes` is an overflow
 * (the caller closes the channel), never a buffer that grows.
 */
import { LineSplitter } from './line-splitter.ts';

/** The default cap on one message (QMP and the guest agent choose their own). */
export const DEFAULT_MAX_JSON_LINE = 16 * 1024 * 1024;
/** Garbage lines are reported cut to this many characters (they are for a log line, at most). */
const GARBAGE_SHOWN = 1000;

export interface JsonLines {
  messages: unknown[];
  /** Lines that were not JSON (cut to their first 1000 characters). */
  garbage: string[];
  /** A line passed the cap: nothing more is decoded until `reset`. */
  overflow: boolean;
}

export class JsonLineDecoder {
  private readonly splitter: LineSplitter;

  constructor(maxLineBytes = DEFAULT_MAX_JSON_LINE) {
    this.splitter = new LineSplitter(maxLineBytes);
  }

  get maxLineBytes(): number {
    return this.splitter.maxLineBytes;
  }

  feed(chunk: Buffer | string): JsonLines {
    const { lines, overflow } = this.splitter.push(typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk);
    const messages: unknown[] = [];
    const garbage: string[] = [];
    for (const raw of lines) {
      const line = raw.toString('utf8').trim();
      if (!line) continue;
      try {
        messages.push(JSON.parse(line));
      } catch {
        garbage.push(line.length > GARBAGE_SHOWN ? line.slice(0, GARBAGE_SHOWN) : line);
      }
    }
    return { messages, garbage, overflow };
  }

  reset(): void {
    this.splitter.reset();
  }
}
