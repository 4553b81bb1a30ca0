import { describe, expect, it } from 'vitest';
import { AgentChannel, type ChannelLink } from './agent-channel.ts';
import { MAX_PAYLOAD } from './agent-frames.ts';

const W = 128 * 1024;
const tick = () => new Promise((r) => setTimeout(r, 5));

function channel(kind: 'exec' | 'pty' = 'exec', credit = 0) {
  const grants: Array<[number, number]> = [];
  const stdin: Buffer[] = [];
  const calls: string[] = [];
  let stdinCredit = credit;
  const link: ChannelLink = {
    stdinCredit: () => stdinCredit,
    sendStdin: (_s, d) => {
      stdinCredit -= d.length;
      stdin.push(Buffer.from(d));
    },
    sendEof: () => calls.push('eof'),
    grant: (_s, stream, n) => grants.push([stream, n]),
    signal: (_s, n) => calls.push(`signal ${n}`),
    resize: (_s, c, r) => calls.push(`resize ${c}x${r}`),
    close: () => calls.push('close'),
  };
  const ch = new AgentChannel(1, kind, link, W);
  return { ch, grants, stdin, calls, addCredit: (n: number) => ((stdinCredit += n), ch.onWindow()) };
}

describe('AgentChannel output credit', () => {
  it('a paused channel grants nothing; resuming grants what was read, a quarter window at a time', async () => {
    const { ch, grants } = channel();
    for (let i = 0; i < 4; i++) ch.onData(1, Buffer.alloc(32 * 1024));
    ch.pause();
    await tick();
    expect(grants).toEqual([]);
    expect(ch.readableLength).toBe(W);
    let got = 0;
    ch.on('data', (d) => (got += d.length));
    ch.resume();
    await tick();
    expect(got).toBe(W);
    expect(grants).toEqual([[1, 32768], [1, 32768], [1, 32768], [1, 32768]]);
  });

  it('grants while flowing, on read() one chunk at a time, and for stderr', async () => {
    const flowing = channel();
    flowing.ch.on('data', () => {});
    for (let i = 0; i < 8; i++) {
      flowing.ch.onData(1, Buffer.alloc(16 * 1024));
      await tick();
    }
    expect(flowing.grants.reduce((n, [, b]) => n + b, 0)).toBe(W);

    const manual = channel();
    for (let i = 0; i < 128; i++) manual.ch.onData(1, Buffer.alloc(1024));
    for (let i = 0; i < 128; i++) {
      expect(manual.ch.read(1024)).toHaveLength(1024);
      await tick();
    }
    expect(manual.grants.reduce((n, [, b]) => n + b, 0)).toBe(W);

    const err = channel();
    for (let i = 0; i < 4; i++) err.ch.onData(2, Buffer.alloc(32 * 1024));
    err.ch.stderr.on('data', () => {});
    await tick();
    expect(err.grants).toEqual([[2, 32768], [2, 32768], [2, 32768], [2, 32768]]);
  });

  it('never grants more than was read: unread bytes are never re-granted', async () => {
    const { ch, grants } = channel();
    for (let i = 0; i < 40; i++) ch.onData(1, Buffer.alloc(4096));
    for (let i = 0; i < 10; i++) ch.read(4096);
    await tick();
    const granted = grants.reduce((n, [, b]) => n + b, 0);
    expect(granted).toBeLessThanOrEqual(10 * 4096);
    expect(granted).toBe(32768);
  });
});

describe('AgentChannel lifecycle', () => {
  it('exit, then close once stdout and stderr are read; done resolves with the exit', async () => {
    const { ch } = channel();
    let out = '';
    ch.on('data', (d) => (out += d));
    const exits: unknown[] = [];
    ch.on('exit', (code, signal) => exits.push([code, signal]));
    ch.onData(1, Buffer.from('x'));
    ch.onExit({ code: 0, signal: null, timedOut: false });
    const done = await ch.done;
    expect(out).toBe('x');
    expect(exits).toEqual([[0, null]]);
    expect(done).toEqual({ code: 0, signal: null, timedOut: false });
  });

  it('output nobody reads is drained at exit; a paused consumer keeps its data until it resumes', async () => {
    const unread = channel();
    unread.ch.onData(2, Buffer.from('ignored'));
    unread.ch.onExit({ code: 1, signal: null, timedOut: false });
    expect((await unread.ch.done).code).toBe(1);

    const paused = channel();
    paused.ch.pause();
    paused.ch.stderr.on('data', () => {});
    paused.ch.onData(1, Buffer.from('kept'));
    paused.ch.onExit({ code: 0, signal: null, timedOut: false });
    let closed = false;
    paused.ch.on('close', () => (closed = true));
    await tick();
    expect(closed).toBe(false);
    let out = '';
    paused.ch.on('data', (d) => (out += d));
    paused.ch.resume();
    await paused.ch.done;
    expect(out).toBe('kept');
  });

  it('a lost channel ends with the reason; later writes are dropped, not errors', async () => {
    const { ch, stdin } = channel('exec', 100);
    ch.resume();
    ch.onExit({ code: null, signal: null, timedOut: false, lost: 'socket closed' });
    expect((await ch.done).lost).toBe('socket closed');
    expect(ch.write('x')).toBe(false);
    expect(stdin).toEqual([]);
  });

  it('stdin waits for credit, EOF after it; signal, resize (pty only) and close go to the link', async () => {
    const { ch, stdin, calls, addCredit } = channel('exec', 3);
    ch.end('abcdef');
    await tick();
    expect(Buffer.concat(stdin).toString()).toBe('abc');
    expect(calls).toEqual([]);
    addCredit(10);
    await tick();
    expect(Buffer.concat(stdin).toString()).toBe('abcdef');
    expect(calls).toEqual(['eof']);
    ch.signal('INT');
    ch.setWindow(30, 100);
    ch.close();
    expect(calls).toEqual(['eof', 'signal INT', 'close']);
    const pty = channel('pty', 0);
    pty.ch.setWindow(30, 100);
    pty.ch.resize(120, 40);
    expect(pty.calls).toEqual(['resize 100x30', 'resize 120x40']);
  });

  it('stdin written in one turn goes out in full frames; a tail waits for the turn to end, never longer', async () => {
    const FRAME = MAX_PAYLOAD - 1;
    const { ch, stdin, calls } = channel('exec', 10 * FRAME);
    for (let i = 0; i < 20; i++) ch.write(Buffer.alloc(10_240, i)); // a tar's records
    ch.write(Buffer.alloc(65_536, 0xee)); // a pipe read
    const sent = 20 * 10_240 + 65_536;
    const full = Math.floor(sent / FRAME);
    expect(full).toBe(4);
    expect(stdin.map((b) => b.length)).toEqual(Array(full).fill(FRAME));
    await new Promise((r) => setImmediate(r));
    expect(stdin.map((b) => b.length)).toEqual([...Array(full).fill(FRAME), sent - full * FRAME]);
    expect(Buffer.concat(stdin)).toEqual(Buffer.concat([...Array.from({ length: 20 }, (_, i) => Buffer.alloc(10_240, i)), Buffer.alloc(65_536, 0xee)]));
    // a keystroke on its own goes out within the turn; end() sends what is held before EOF
    ch.write('k');
    await new Promise((r) => setImmediate(r));
    expect(stdin.at(-1)!.toString()).toBe('k');
    ch.write('last');
    ch.end();
    await tick();
    expect(stdin.at(-1)!.toString()).toBe('last');
    expect(calls).toEqual(['eof']);
  });

  it('held stdin still waits for credit, and the writer feels the backpressure', async () => {
    const { ch, stdin, addCredit } = channel('exec', 100);
    expect(ch.write(Buffer.alloc(60))).toBe(true);
    await new Promise((r) => setImmediate(r));
    expect(Buffer.concat(stdin).length).toBe(60);
    ch.write(Buffer.alloc(200));
    await tick();
    expect(Buffer.concat(stdin).length).toBe(100); // the credit, no more
    let drained = false;
    ch.once('drain', () => (drained = true));
    let written = 260;
    for (let i = 0; i < 100; i++) {
      written += 1024;
      if (!ch.write(Buffer.alloc(1024))) break;
    }
    expect(written).toBeLessThan(260 + 100 * 1024); // backpressure before all 100 KiB are queued
    await tick();
    expect(drained).toBe(false);
    expect(Buffer.concat(stdin).length).toBe(100);
    addCredit(1_000_000);
    await tick();
    await tick();
    expect(drained).toBe(true);
    expect(Buffer.concat(stdin).length).toBe(written);
  });
});

