/**
 * JSON-lines reading and writing for the control stream. The framing that matters (flow control,
 * multiplexing) is HTTP/2's; this only splits one stream's bytes into messages and bounds their size.
 */
import type { Duplex } from 'node:stream';
import type { z } from 'zod';

/** Splits incoming chunks into complete lines; returns the leftover tail. Pure. */
export function splitLines(buffered: string, chunk: string): { lines: string[]; rest: string } {
  const text = buffered + chunk;
  const parts = text.split('\n');
  const rest = parts.pop() ?? '';
  return { lines: parts.filter((line) => line.trim() !== ''), rest };
}

/**
 * Reads schema-checked messages from `stream`; a malformed or oversized line destroys the stream
 * (the peer is broken, not a user), which ends the tunnel and lets the client reconnect.
 */
export function readJsonLines<T>(stream: Duplex, schema: z.ZodType<T>, onMessage: (message: T) => void, maxLineBytes = 4 << 20): void {
  let rest = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    const split = splitLines(rest, chunk);
    rest = split.rest;
    if (rest.length > maxLineBytes) {
      stream.destroy(new Error('control message too long'));
      return;
    }
    for (const line of split.lines) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(line);
      } catch {
        stream.destroy(new Error('control message is not JSON'));
        return;
      }
      const result = schema.safeParse(parsed);
      if (!result.success) {
        stream.destroy(new Error(`invalid control message: ${result.error.message}`));
        return;
      }
      onMessage(result.data);
    }
  });
}

export function writeJsonLine(stream: Duplex, message: unknown): void {
  if (!stream.destroyed && stream.writable) stream.write(`${JSON.stringify(message)}\n`);
}
