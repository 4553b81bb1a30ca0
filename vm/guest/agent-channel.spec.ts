import { describe, expect, it } from 'vitest';
import { AgentChannel, type ChannelLink } from './agent-channel.ts';

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
});
