/**
 * DNS over a stream (RFC 1035 §4.2.2, RFC 7766): each message is preceded by its length in two
 * octets. A guest falls back to it when an answer comes back truncated, and some programs use it
 * from the start; the guest side hands such a connection (any TCP connection to port 53) here, and
 * the sprite's DNS responder answers each message as it answers a datagram. Bounded like every
 * guest input: a message longer than a query can be ends the stream, at most MAX_INFLIGHT queries
 * are answered at once per stream (answers may come back out of order, which RFC 7766 allows:
 * the ID says which is which), and a stream idle for IDLE_MS is closed.
 */
import type { Duplex } from 'node:stream';
import { MAX_QUERY_BYTES } from './dns-message.ts';

export const IDLE_MS = 10_000;
export const MAX_INFLIGHT = 16;

/** Splits a byte stream into length-prefixed messages. Sans-IO. */
export class DnsStreamFramer {
  private buf = Buffer.alloc(0);
  failed: string | null = null;

  /** The whole messages `chunk` completes; after a failure, nothing more. */
  push(chunk: Uint8Array): Uint8Array[] {
    if (this.failed) return [];
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : Buffer.from(chunk);
    const out: Uint8Array[] = [];
    while (this.buf.length >= 2) {
      const len = this.buf.readUInt16BE(0);
      if (len < 12 || len > MAX_QUERY_BYTES) {
        this.failed = `a DNS message of ${len} octets over TCP (12 to ${MAX_QUERY_BYTES})`;
        this.buf = Buffer.alloc(0);
        return out;
      }
      if (this.buf.length < 2 + len) break;
      out.push(Uint8Array.prototype.slice.call(this.buf, 2, 2 + len));
      this.buf = this.buf.subarray(2 + len);
    }
    return out;
  }
}

/** One answer framed for the stream. */
export function frame(message: Uint8Array): Uint8Array {
  const out = new Uint8Array(2 + message.length);
  out[0] = message.length >> 8;
  out[1] = message.length & 0xff;
  out.set(message, 2);
  return out;
}

/**
 * Answers the DNS messages arriving on `stream` until it ends, fails or idles. `answer` is the
 * responder's (never throws; null: no answer). Resolves when the stream is closed.
 */
export function serveDnsStream(stream: Duplex, answer: (packet: Uint8Array) => Promise<Uint8Array | null>, opts: { idleMs?: number; log?: (line: string) => void } = {}): Promise<void> {
  return new Promise((resolve) => {
    const framer = new DnsStreamFramer();
    let inflight = 0;
    let ended = false;
    const idleMs = opts.idleMs ?? IDLE_MS;
    let idle = setTimeout(() => stream.destroy(), idleMs);
    const touch = () => {
      clearTimeout(idle);
      idle = setTimeout(() => stream.destroy(), idleMs);
    };
    const finishIfDone = () => {
      if (ended && inflight === 0 && queue.length === 0) stream.end();
    };
    // framed messages wait here; the stream is paused while any wait, so this holds at most one chunk's
    const queue: Uint8Array[] = [];
    const pump = () => {
      while (queue.length && inflight < MAX_INFLIGHT) {
        const msg = queue.shift()!;
        inflight++;
        void answer(msg).then((out) => {
          inflight--;
          if (out && !stream.destroyed) stream.write(frame(out));
          pump();
        });
      }
      if (queue.length === 0 && inflight < MAX_INFLIGHT && !ended) stream.resume();
      finishIfDone();
    };
    stream.on('data', (chunk: Buffer) => {
      touch();
      queue.push(...framer.push(chunk));
      if (framer.failed) {
        opts.log?.(`dns over tcp: ${framer.failed}; closing the connection`);
        stream.destroy();
        return;
      }
      if (queue.length) stream.pause();
      pump();
    });
    stream.on('end', () => {
      ended = true;
      finishIfDone();
    });
    stream.on('error', () => stream.destroy());
    stream.on('close', () => {
      clearTimeout(idle);
      resolve();
    });
  });
}
