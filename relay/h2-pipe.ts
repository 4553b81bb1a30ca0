/**
 * Moving bodies between hops. Two things `stream.pipe` gets wrong here:
 * - When Node destroys an HTTP/2 session, its streams emit a normal-looking 'end' (rstCode 0); a plain
 *   pipe would end the next hop cleanly and a cut-off download or upload would look complete. `pipeH2`
 *   ends the next hop only on a real END_STREAM and destroys it otherwise.
 * - `pipe` stops at the destination's 16 KiB high-water mark, so each hop moves one socket write per
 *   event-loop turn and a 3-hop path crawls. `pump` keeps up to `PUMP_BUFFER` queued (the HTTP/2
 *   window, not this buffer, is what bounds memory per stream end to end).
 */
import type { Http2Stream } from 'node:http2';
import type { Readable, Writable } from 'node:stream';

/** Bytes a hop may queue in its destination before pausing its source. */
export const PUMP_BUFFER = 1 << 20;

/** Copies `from` into `to` with a deeper buffer than `pipe`; does not end `to`. */
export function pump(from: Readable, to: Writable, limit = PUMP_BUFFER): void {
  const onDrain = () => from.resume();
  from.on('data', (chunk: Buffer) => {
    if (to.destroyed) return;
    to.write(chunk);
    if (to.writableLength > limit && !from.isPaused()) {
      from.pause();
      to.once('drain', onDrain);
    }
  });
  to.once('close', () => to.off('drain', onDrain));
}

export function pipeH2(from: Http2Stream, to: Writable): void {
  pump(from, to);
  from.once('end', () => {
    if (from.destroyed) to.destroy();
    else to.end();
  });
  from.once('close', () => {
    if (!from.readableEnded) to.destroy();
  });
}
