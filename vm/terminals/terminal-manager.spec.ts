import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { TerminalSession, type ShellChannel, type TerminalClient } from './terminal-manager.ts';

/** Enough of an agent channel for a session: data in, writes recorded. */
function fakeChannel() {
  const ch = Object.assign(new EventEmitter(), {
    stderr: new EventEmitter(),
    written: [] as Buffer[],
    pause() {},
    resume() {},
    write(d: Buffer) {
      ch.written.push(d);
      return true;
    },
    setWindow() {},
    close() {
      ch.emit('close');
    },
  });
  return ch;
}

function client(log: string[]): TerminalClient {
  return {
    attached: (n) => log.push(`attached ${n}`),
    send: (d) => log.push(`data ${d.toString()}`),
    exited: (code) => log.push(`exit ${code}`),
    lost: (why) => log.push(`lost ${why}`),
  };
}

describe('TerminalSession', () => {
  it('says how many bytes it replays on attach, before replaying them, then streams', async () => {
    const ch = fakeChannel();
    const s = new TerminalSession('dev', ch as unknown as ShellChannel);
    ch.emit('data', Buffer.from('hello '));
    ch.stderr.emit('data', Buffer.from('world'));
    const log: string[] = [];
    expect(s.attach(client(log))).toBe(11);
    expect(log).toEqual(['attached 11', 'data hello world']);
    const fresh: string[] = [];
    const empty = new TerminalSession('dev', fakeChannel() as unknown as ShellChannel);
    expect(empty.attach(client(fresh))).toBe(0);
    expect(fresh).toEqual(['attached 0']);
    s.close();
    empty.close();
    expect(log.at(-1)).toBe('exit null');
  });
});
