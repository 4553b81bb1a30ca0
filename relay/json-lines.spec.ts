import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { readJsonLines, splitLines } from './json-lines.ts';

describe('splitLines', () => {
  it('returns complete lines and keeps the tail', () => {
    expect(splitLines('', 'a\nb\nc')).toEqual({ lines: ['a', 'b'], rest: 'c' });
    expect(splitLines('c', 'd\n\n')).toEqual({ lines: ['cd'], rest: '' });
    expect(splitLines('', 'partial')).toEqual({ lines: [], rest: 'partial' });
  });
});

describe('readJsonLines', () => {
  const schema = z.object({ n: z.number() });
  it('delivers schema-checked messages split across chunks', () => {
    const stream = new PassThrough();
    const got: unknown[] = [];
    readJsonLines(stream, schema, (m) => got.push(m));
    stream.write('{"n":1}\n{"n"');
    stream.write(':2}\n');
    return new Promise<void>((resolve) =>
      setImmediate(() => {
        expect(got).toEqual([{ n: 1 }, { n: 2 }]);
        resolve();
      }),
    );
  });
  it.each(['not json\n', '{"n":"x"}\n'])('destroys the stream on %j', (line) => {
    const stream = new PassThrough();
    readJsonLines(stream, schema, () => undefined);
    const error = new Promise<Error>((resolve) => stream.once('error', resolve));
    stream.write(line);
    return expect(error).resolves.toBeInstanceOf(Error);
  });
  it('destroys the stream when a line grows past the limit', () => {
    const stream = new PassThrough();
    readJsonLines(stream, schema, () => undefined, 10);
    const error = new Promise<Error>((resolve) => stream.once('error', resolve));
    stream.write('{"n":1234567890');
    return expect(error).resolves.toMatchObject({ message: 'control message too long' });
  });
});
