import { PassThrough, Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { pump } from './h2-pipe.ts';

/** A sink that holds every write until `release()`, like a socket whose peer stopped reading. */
function stuckSink() {
  const pending: (() => void)[] = [];
  const sink = new Writable({
    highWaterMark: 16,
    write(_chunk, _encoding, callback) {
      pending.push(callback);
    },
  });
  return { sink, release: () => pending.splice(0).forEach((callback) => callback()) };
}

describe('pump', () => {
  it('queues past the high-water mark up to its limit, then pauses the source until drained', async () => {
    const source = new PassThrough();
    const { sink, release } = stuckSink();
    pump(source, sink, 100);
    source.write(Buffer.alloc(60));
    source.write(Buffer.alloc(60));
    await new Promise((resolve) => setImmediate(resolve));
    expect(source.isPaused()).toBe(true);
    expect(sink.writableLength).toBe(120);
    release();
    await new Promise((resolve) => setImmediate(resolve));
    release();
    await new Promise((resolve) => setImmediate(resolve));
    expect(source.isPaused()).toBe(false);
  });

  it('does not pause below the limit', async () => {
    const source = new PassThrough();
    const { sink } = stuckSink();
    pump(source, sink, 1000);
    source.write(Buffer.alloc(500));
    await new Promise((resolve) => setImmediate(resolve));
    expect(source.isPaused()).toBe(false);
  });
});
