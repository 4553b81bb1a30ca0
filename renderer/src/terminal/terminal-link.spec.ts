import { describe, expect, it } from 'vitest';
import { FakeTransport } from '../testing/fake-transport.ts';
import { ACK_BATCH_BYTES, AckBatcher, TerminalLink, type LinkStatus, type TermLike } from './terminal-link.ts';

class FakeTimers {
  queue: { fn: () => void; ms: number; id: number }[] = [];
  private n = 0;
  setTimeout = (fn: () => void, ms: number) => {
    const id = ++this.n;
    this.queue.push({ fn, ms, id });
    return id;
  };
  clearTimeout = (id: unknown) => {
    this.queue = this.queue.filter((t) => t.id !== id);
  };
  runAll() {
    const q = this.queue;
    this.queue = [];
    for (const t of q) t.fn();
  }
}

class FakeTerm implements TermLike {
  cols = 80;
  rows = 24;
  written = '';
  resets = 0;
  /** Parse callbacks run only when the test says so (like a busy xterm). */
  parsedLater: (() => void)[] = [];
  sync = true;
  write(data: Uint8Array | string, cb?: () => void) {
    this.written += typeof data === 'string' ? data : new TextDecoder().decode(data);
    if (cb) this.sync ? cb() : this.parsedLater.push(cb);
  }
  reset() {
    this.resets++;
    this.written = '';
  }
}

function setup(session: string | null = null) {
  const t = new FakeTransport();
  const term = new FakeTerm();
  const timers = new FakeTimers();
  const sessions: (string | null)[] = [];
  const statuses: LinkStatus[] = [];
  const link = new TerminalLink(t, 'box', term, session, { onSession: (s) => sessions.push(s), onStatus: (s) => statuses.push(s) }, timers);
  link.connect();
  return { t, term, timers, sessions, statuses, link, sock: () => t.terminals.at(-1)! };
}

describe('AckBatcher', () => {
  it('acks in batches, and the remainder after a quiet moment', () => {
    const timers = new FakeTimers();
    const sent: number[] = [];
    const a = new AckBatcher((n) => sent.push(n), timers);
    a.parsed(3000);
    expect(sent).toEqual([]);
    a.parsed(3000);
    expect(sent).toEqual([6000]);
    a.parsed(10);
    timers.runAll();
    expect(sent).toEqual([6000, 10]);
    a.parsed(10);
    a.reset();
    timers.runAll();
    expect(sent).toEqual([6000, 10]);
  });
});

describe('TerminalLink', () => {
  it('opens a new session with the terminal size and remembers its id', () => {
    const { sock, sessions, statuses, term } = setup();
    expect(sock().opts).toEqual({ cols: 80, rows: 24, session: null });
    sock().server({ type: 'session', session: 'S1', replayed: 0 });
    expect(sessions).toEqual(['S1']);
    expect(statuses).toEqual(['connecting', 'open']);
    sock().output('root@box:~# ');
    expect(term.written).toBe('root@box:~# ');
  });

  it('acks only what xterm has parsed (a flood cannot run ahead of the window)', () => {
    const { sock, term } = setup();
    sock().server({ type: 'session', session: 'S1', replayed: 0 });
    term.sync = false;
    const chunk = new Uint8Array(40_000).fill(120);
    sock().output(chunk);
    sock().output(chunk);
    sock().output(chunk);
    expect(sock().acked).toBe(0);
    term.parsedLater.shift()!();
    expect(sock().acked).toBe(40_000);
    term.parsedLater.splice(0).forEach((f) => f());
    expect(sock().acked).toBe(120_000);
    expect(ACK_BATCH_BYTES).toBeLessThan(5_001);
  });

  it('sends keystrokes as UTF-8 bytes', () => {
    const { sock, link } = setup();
    sock().server({ type: 'session', session: 'S1', replayed: 0 });
    link.input('echo é\r');
    expect(sock().input).toBe('echo é\r');
  });

  it('re-attaches with its session after a drop, clearing the screen before the replay', () => {
    const { sock, link, timers, term, t } = setup();
    sock().server({ type: 'session', session: 'S1', replayed: 0 });
    sock().output('before');
    sock().close('network');
    expect(link.currentStatus).toBe('reconnecting');
    timers.runAll();
    expect(t.terminals).toHaveLength(2);
    expect(sock().opts.session).toBe('S1');
    sock().server({ type: 'session', session: 'S1', replayed: 0 });
    expect(term.resets).toBe(1);
    sock().output('before');
    expect(term.written).toBe('before');
    expect(link.currentStatus).toBe('open');
  });

  it("a lost way to the sprite (a remote host's connection: `unavailable`) reconnects on its own to the same session", () => {
    const { sock, link, timers, term, t } = setup();
    sock().server({ type: 'session', session: 'S1', replayed: 0 });
    sock().server({ type: 'error', code: 'unavailable', message: 'Lost the connection to host "box" (the connection ended).' });
    expect(term.written).toContain('Lost the connection to host "box"');
    expect(term.written).toContain('Reconnecting…');
    sock().close('host connection lost');
    expect(link.currentStatus).toBe('reconnecting');
    // still down: the daemon says so again; it keeps trying
    timers.runAll();
    sock().server({ type: 'error', code: 'unavailable', message: 'Host "box" is unreachable.' });
    sock().close('unavailable');
    expect(link.currentStatus).toBe('reconnecting');
    timers.runAll();
    expect(t.terminals).toHaveLength(3);
    expect(sock().opts.session).toBe('S1');
    sock().server({ type: 'session', session: 'S1', replayed: 0 });
    expect(link.currentStatus).toBe('open');
  });

  it('attaches to a remembered session after a reload without clearing', () => {
    const { sock, term } = setup('S9');
    expect(sock().opts.session).toBe('S9');
    sock().server({ type: 'session', session: 'S9', replayed: 0 });
    expect(term.resets).toBe(0);
  });

  it('opens a fresh shell when the remembered session is gone', () => {
    const { sock, sessions, t } = setup('OLD');
    sock().server({ type: 'error', code: 'not_found', message: 'No terminal session "OLD"' });
    expect(sessions).toEqual([null]);
    expect(t.terminals).toHaveLength(2);
    expect(sock().opts.session).toBeNull();
  });

  it('after the shell exits, Enter starts a new one', () => {
    const { sock, link, term, t, sessions } = setup();
    sock().server({ type: 'session', session: 'S1', replayed: 0 });
    sock().server({ type: 'exit', code: 0, signal: null });
    expect(term.written).toMatch(/Press Enter/);
    expect(sessions).toEqual(['S1', null]);
    link.input('x');
    expect(t.terminals).toHaveLength(1);
    link.input('\r');
    expect(t.terminals).toHaveLength(2);
    expect(sock().opts.session).toBeNull();
  });

  it("shows the daemon's error and retries on Enter", () => {
    const { sock, link, term, t } = setup();
    sock().server({ type: 'error', code: 'failed_precondition', message: 'Sprite "box" is stopped; start it first.' });
    sock().close();
    expect(link.currentStatus).toBe('failed');
    expect(term.written).toContain('Sprite "box" is stopped; start it first.');
    link.input('\r');
    expect(t.terminals).toHaveLength(2);
  });

  it('closing the tab hangs up; disposing only detaches', () => {
    const a = setup();
    a.sock().server({ type: 'session', session: 'S1', replayed: 0 });
    a.link.dispose();
    expect(a.sock().detached).toBe(true);
    expect(a.sock().hungUp).toBe(false);
    const b = setup();
    b.sock().server({ type: 'session', session: 'S2', replayed: 0 });
    b.link.hangUp();
    expect(b.sock().hungUp).toBe(true);
    expect(b.sessions).toEqual(['S2', null]);
  });

  it('sends resizes only while open', () => {
    const { sock, link } = setup();
    link.resize(100, 40);
    expect(sock().control).toEqual([]);
    sock().server({ type: 'session', session: 'S1', replayed: 0 });
    link.resize(100, 40);
    expect(sock().control).toContainEqual({ type: 'resize', cols: 100, rows: 40 });
  });
});
