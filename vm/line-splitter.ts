/**
 * Splits a byte stream from an untrusted peer into lines, in linear time and bounded memory. Every
 * line-based channel a guest can write into (the qemu-guest-agent port, spritely-env, QMP, which
 * relays guest-influenced text) goes through it: a decoder that appends each chunk to a buffer and
 * searches that whole buffer again for a newline is quadratic — 64 MiB without a newline took about
 * two minutes of daemon CPU, stalling every API call and every sprite's egress — and one that never
 * caps a line lets a guest fill the daemon's memory.
 *
 * Here each byte is searched once (only the newly arrived chunk is scanned; the unfinished line is
 * kept as the chunks it came in, never searched again), copied at most once (when its line ends),
 * and a line longer than `maxLineBytes` is reported as an overflow as soon as the bytes waiting for
 * a line end pass the cap: nothing more is buffered, and the caller closes the channel. Bytes, not
 * strings: a newline never occurs inside a UTF-8 sequence, so splitting bytes never cuts a
 * character in two, whatever the chunk boundaries.
 */

export interface SplitResult {
  /** The complete lines in this chunk, without their `\n` (a `\r` before it is kept). */
  lines: Buffer[];
  /** A line passed the cap (in this chunk or an earlier one): the channel should be closed. */
  overflow: boolean;
}

const NL = 0x0a;

export class LineSplitter {
  private parts: Buffer[] = [];
  private pending = 0;
  private overflowed = false;

  constructor(readonly maxLineBytes: number) {
    if (!Number.isInteger(maxLineBytes) || maxLineBytes < 1) throw new RangeError(`maxLineBytes must be a positive integer, not ${maxLineBytes}`);
  }

  /** Bytes held now: the start of a line whose end has not come yet. */
  get buffered(): number {
    return this.pending;
  }

  /** True once a line passed the cap; every later push returns no lines. */
  get overflow(): boolean {
    return this.overflowed;
  }

  push(chunk: Buffer): SplitResult {
    const lines: Buffer[] = [];
    if (this.overflowed) return { lines, overflow: true };
    let start = 0;
    for (let nl = chunk.indexOf(NL); nl >= 0; nl = chunk.indexOf(NL, start)) {
      if (this.pending + (nl - start) > this.maxLineBytes) return this.fail(lines);
      const tail = chunk.subarray(start, nl);
      lines.push(this.parts.length ? Buffer.concat([...this.parts, tail], this.pending + tail.length) : tail);
      this.parts = [];
      this.pending = 0;
      start = nl + 1;
    }
    if (start < chunk.length) {
      if (this.pending + (chunk.length - start) > this.maxLineBytes) return this.fail(lines);
      this.parts.push(start === 0 ? chunk : chunk.subarray(start));
      this.pending += chunk.length - start;
    }
    return { lines, overflow: false };
  }

  /** Forgets the unfinished line and any overflow (a new connection, or a resynchronisation). */
  reset(): void {
    this.parts = [];
    this.pending = 0;
    this.overflowed = false;
  }

  private fail(lines: Buffer[]): SplitResult {
    this.overflowed = true;
    this.parts = [];
    this.pending = 0;
    return { lines, overflow: true };
  }
}
