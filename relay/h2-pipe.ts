/**
 * Piping an HTTP/2 stream's body onward without hiding truncation. When Node destroys an HTTP/2
 * session, its streams emit a normal-looking 'end' (rstCode 0) — a plain `pipe` would then end the
 * next hop cleanly and a cut-off download or upload would look complete. Here the next hop is ended
 * only on a real END_STREAM and destroyed otherwise.
 */
import type { Http2Stream } from 'node:http2';
import type { Writable } from 'node:stream';

export function pipeH2(from: Http2Stream, to: Writable): void {
  from.pipe(to, { end: false });
  from.once('end', () => {
    if (from.destroyed) to.destroy();
    else to.end();
  });
  from.once('close', () => {
    if (!from.readableEnded) to.destroy();
  });
}
