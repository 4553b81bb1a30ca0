/**
 * A fake spritely agent (specs only): the guest end of the agent port, speaking the real wire
 * format (agent-frames.ts), so the engine's specs on the fake driver exercise the real client — HELLO and resumed
 * epochs, exec and pty sessions with credit, signals, stdin EOF, timeouts, CLOSE, IDENTITY, PING.
 * Programs are small scripts (`true`, `false`, `echo`, `cat`, `sleep`, a pty "shell" that echoes)
 * and a spec can add its own (`programs`). It can be told to stay silent, or to misbehave
 * (`misbehave`: garbage, an oversized frame) as a hostile guest would. Its epoch and open sessions
 * are part of the guest's RAM: `snapshot` goes into a saved state, `restore` brings them back, so
 * a woken machine resumes as the real one does.
 */
import type { Duplex } from 'node:stream';
import { encodeFrame, FrameDecoder, FrameType, HELLO_MAGIC, MAX_PAYLOAD, NONCE_BYTES, PROTOCOL_VERSION, Stream, type Frame } from './agent-frames.ts';

/** What the real agent announces (resources/guest-agent/request.go: 1 MiB), so engine specs see the same flow. */
const STDIN_WINDOW = 1024 * 1024;
const DEFAULT_WINDOW = 256 * 1024;

export interface FakeRequest {
  argv: string[];
  env?: Record<string, string>;
  cwd?: string;
  timeoutMs?: number;
  window?: number;
  pty: boolean;
}

/** What a fake program can do; its session ends with `exit`. */
export interface FakeProgramIo {
  req: FakeRequest;
  hostname: () => string;
  out(data: string | Buffer): void;
  err(data: string | Buffer): void;
  exit(code: number | null, signal?: string | null): void;
  onStdin(fn: (data: Buffer) => void): void;
  onEof(fn: () => void): void;
  /** Default: the program dies of the signal. */
  onSignal(fn: (name: string) => void): void;
}

export type FakeProgram = (io: FakeProgramIo) => void;

export interface FakeAgentSnapshot {
  epoch: string | null;
  hostname: string;
  sessions: { id: number; pty: boolean; argv: string[] }[];
}

/** The identity the agent was last given (the JSON as sent). */
export type FakeIdentity = Record<string, unknown>;

interface Session {
  id: number;
  req: FakeRequest;
  credit: [number, number];
  queued: [Buffer[], Buffer[]];
  stdin: (data: Buffer) => void;
  eof: () => void;
  signal: (name: string) => void;
  ended: boolean;
  timer?: NodeJS.Timeout;
}

const builtins: Record<string, FakeProgram> = {
  true: (io) => io.exit(0),
  false: (io) => io.exit(1),
  echo: (io) => {
    io.out(io.req.argv.slice(1).join(' ') + '\n');
    io.exit(0);
  },
  cat: (io) => {
    io.onStdin((d) => io.out(d));
    io.onEof(() => io.exit(0));
  },
  sleep: () => {},
  hostname: (io) => {
    io.out(io.hostname() + '\n');
    io.exit(0);
  },
  shell: shell(true),
};

/** A pty's login shell: a prompt, echo, `exit` or ^D leaves (`first`: it just started and says its prompt). */
function shell(first: boolean): FakeProgram {
  return (io) => {
    const prompt = () => io.out(`root@${io.hostname()}:~# `);
    let line = '';
    if (first) prompt();
    io.onStdin((d) => {
      for (const ch of d.toString('latin1')) {
        if (ch === '\r' || ch === '\n') {
          io.out('\r\n');
          if (line.trim() === 'exit') return io.exit(0);
          line = '';
          prompt();
        } else if (ch === '\x04' && !line) return io.exit(0);
        else {
          line += ch;
          io.out(ch);
        }
      }
    });
    io.onEof(() => io.exit(0));
  };
}

/** The program behind a fake guest's agent port (it meets FakeAgentProgram of vm/driver/fake-guest.ts). */
export class FakeAgent {
  /** Spec-provided programs by argv[0] (checked before the built-in ones). */
  readonly programs = new Map<string, FakeProgram>();
  /** Every request the host made (exec and pty), in order. */
  readonly requests: FakeRequest[] = [];
  /** The identity last applied with a hostname; every IDENTITY request in `identities`. */
  identity: FakeIdentity | null = null;
  readonly identities: FakeIdentity[] = [];
  /** Never answers anything (a hung agent, or one that never started). */
  silent = false;
  /** Answer the next HELLO with garbage, or with a frame whose length lies beyond the maximum. */
  misbehave: 'garbage' | 'oversized' | null = null;
  /** Keep misbehaving (an impostor on the port) instead of only once. */
  misbehaveAlways = false;
  /** Refuse identities with this message. */
  refuseIdentity: string | null = null;
  /** HELLOs seen; resumed epochs. */
  hellos = 0;
  resumes = 0;
  hostname = 'golden';
  private epoch: string | null = null;
  private sessions = new Map<number, Session>();
  private port: Duplex | null = null;
  private nextPid = 100;

  /** The guest end of a new connection to the port (the previous one is gone, as on a real port). */
  attach(guest: Duplex): void {
    this.port?.destroy();
    this.port = guest;
    let hunting = true;
    let buf = Buffer.alloc(0);
    const decoder = new FrameDecoder();
    guest.on('error', () => {});
    guest.on('data', (chunk: Buffer) => {
      if (this.silent || this.port !== guest) return;
      if (hunting) {
        buf = Buffer.concat([buf, chunk]);
        const mark = Buffer.concat([Buffer.from([FrameType.Hello, 0, 0, 0, 0]), HELLO_MAGIC]);
        const at = buf.indexOf(mark, 4);
        if (at < 0) {
          buf = buf.subarray(Math.max(0, buf.length - mark.length - 4));
          return;
        }
        hunting = false;
        chunk = buf.subarray(at - 4);
        buf = Buffer.alloc(0);
      }
      let frames: Frame[];
      try {
        frames = decoder.push(chunk);
      } catch {
        hunting = true;
        return;
      }
      for (const f of frames) this.frame(f);
    });
  }

  /** The host's end went away (the machine ended): nothing more is sent. */
  detach(): void {
    this.port?.destroy();
    this.port = null;
  }

  /** The epoch and the sessions that go on, for a saved state. */
  snapshot(): unknown {
    return { epoch: this.epoch, hostname: this.hostname, sessions: [...this.sessions.values()].filter((s) => !s.ended).map((s) => ({ id: s.id, pty: s.req.pty, argv: s.req.argv })) };
  }

  /** Back to a saved moment: the sessions exist again (their programs wait for input). */
  restore(saved: unknown): void {
    const s = saved as FakeAgentSnapshot;
    this.epoch = s.epoch;
    this.hostname = s.hostname;
    for (const x of s.sessions) this.start(x.id, { argv: x.argv, pty: x.pty }, false);
  }

  /** Session ids open now. */
  get open(): number[] {
    return [...this.sessions.keys()];
  }

  private send(type: number, session: number, payload?: Buffer): void {
    if (this.port && !this.port.destroyed) this.port.write(encodeFrame(type, session, payload));
  }

  private info(resumed?: number[]): Buffer {
    return Buffer.from(JSON.stringify({ agent: 'spritely-agent', protocol: PROTOCOL_VERSION, pid: 1, maxSessions: 1024, maxPayload: MAX_PAYLOAD, ...(resumed ? { resumed } : {}) }));
  }

  private frame(f: Frame): void {
    switch (f.type) {
      case FrameType.Hello:
        return this.hello(f.payload);
      case FrameType.Ping:
        return this.send(FrameType.Pong, 0, f.payload);
      case FrameType.Exec:
      case FrameType.Pty: {
        const body = JSON.parse(f.payload.toString('utf8'));
        const req: FakeRequest = { ...body, argv: body.argv ?? [], pty: f.type === FrameType.Pty };
        this.requests.push(req);
        return this.start(f.session, req, true);
      }
      case FrameType.Identity:
        return this.applyIdentity(f.session, JSON.parse(f.payload.toString('utf8')));
      case FrameType.Data:
        return this.sessions.get(f.session)?.stdin(Buffer.from(f.payload.subarray(1)));
      case FrameType.Eof:
        return this.sessions.get(f.session)?.eof();
      case FrameType.Window: {
        const s = this.sessions.get(f.session);
        if (!s) return;
        s.credit[f.payload[0] - 1] += f.payload.readUInt32BE(1);
        return this.pump(s);
      }
      case FrameType.Signal:
        return this.sessions.get(f.session)?.signal(f.payload.toString('latin1'));
      case FrameType.Resize:
        return;
      case FrameType.Close: {
        const s = this.sessions.get(f.session);
        if (s) this.finish(s, null, 'KILL');
        return;
      }
    }
  }

  private hello(p: Buffer): void {
    this.hellos++;
    const nonce = p.subarray(HELLO_MAGIC.length, HELLO_MAGIC.length + NONCE_BYTES);
    const resume = p.length >= HELLO_MAGIC.length + NONCE_BYTES * 2 + 2 ? p.subarray(HELLO_MAGIC.length + NONCE_BYTES + 2).toString('hex') : null;
    if (this.misbehave === 'garbage') {
      if (!this.misbehaveAlways) this.misbehave = null;
      this.port?.write(Buffer.concat([encodeFrame(FrameType.HelloAck, 0, Buffer.concat([nonce, Buffer.from([0, PROTOCOL_VERSION]), this.info()])), Buffer.from([0, 0, 0, 9, 0x7e, 0, 0, 0, 0, 1, 2, 3, 4])]));
      return;
    }
    if (this.misbehave === 'oversized') {
      if (!this.misbehaveAlways) this.misbehave = null;
      const big = Buffer.alloc(9);
      big.writeUInt32BE(5 + MAX_PAYLOAD + 1000);
      big[4] = FrameType.Data;
      this.port?.write(Buffer.concat([encodeFrame(FrameType.HelloAck, 0, Buffer.concat([nonce, Buffer.from([0, PROTOCOL_VERSION]), this.info()])), big]));
      return;
    }
    const v = Buffer.alloc(2);
    v.writeUInt16BE(PROTOCOL_VERSION);
    if (resume && this.epoch && resume === this.epoch) {
      this.resumes++;
      this.send(FrameType.HelloAck, 0, Buffer.concat([nonce, v, this.info(this.open)]));
      for (const s of this.sessions.values()) this.pump(s);
      return;
    }
    for (const s of this.sessions.values()) this.finish(s, null, 'KILL', false);
    this.sessions.clear();
    this.epoch = nonce.toString('hex');
    this.send(FrameType.HelloAck, 0, Buffer.concat([nonce, v, this.info()]));
  }

  private applyIdentity(session: number, id: FakeIdentity): void {
    this.identities.push(id);
    if (this.refuseIdentity) {
      return this.send(FrameType.Result, session, Buffer.from(JSON.stringify({ ok: false, error: this.refuseIdentity, ms: 1 })));
    }
    if (typeof id.hostname === 'string') {
      this.identity = id;
      this.hostname = id.hostname;
    }
    this.send(FrameType.Result, session, Buffer.from(JSON.stringify({ ok: true, ms: 1 })));
  }

  private start(id: number, req: FakeRequest, announce: boolean): void {
    const window = req.window ?? DEFAULT_WINDOW;
    let onStdin: (d: Buffer) => void = () => {};
    let onEof: () => void = () => {};
    let onSignal: ((name: string) => void) | null = null;
    const s: Session = {
      id,
      req,
      credit: [window, req.pty ? 0 : window],
      queued: [[], []],
      stdin: (d) => {
        onStdin(d);
        this.send(FrameType.Window, id, Buffer.from([Stream.Stdin, ...u32(d.length)]));
      },
      eof: () => (req.pty ? onStdin(Buffer.from('\x04')) : onEof()),
      signal: (name) => (onSignal ? onSignal(name) : this.finish(s, null, name)),
      ended: false,
    };
    this.sessions.set(id, s);
    if (announce) this.send(FrameType.Opened, id, Buffer.from(JSON.stringify({ pid: this.nextPid++, stdinWindow: STDIN_WINDOW })));
    if (req.timeoutMs) s.timer = setTimeout(() => this.finish(s, null, 'KILL', true, true), req.timeoutMs);
    const io: FakeProgramIo = {
      req,
      hostname: () => this.hostname,
      out: (d) => this.output(s, 0, Buffer.from(d)),
      err: (d) => this.output(s, req.pty ? 0 : 1, Buffer.from(d)),
      exit: (code, signal = null) => this.finish(s, code, signal),
      onStdin: (fn) => (onStdin = fn),
      onEof: (fn) => (onEof = fn),
      onSignal: (fn) => (onSignal = fn),
    };
    const name = req.pty && !req.argv.length ? 'shell' : (req.argv[0] ?? '').split('/').pop()!;
    const program = this.programs.get(name) ?? builtins[name];
    if (!announce) {
      // restored from a saved state: it was running; a shell or a cat goes on, others wait
      if (name === 'shell') shell(false)(io);
      else if (name === 'cat') builtins.cat(io);
      return;
    }
    if (!program) {
      io.err(`spritely-agent: cannot run ${req.argv[0]}: no such file or directory\n`);
      return io.exit(127);
    }
    program(io);
  }

  private output(s: Session, i: 0 | 1, data: Buffer): void {
    if (s.ended || !data.length) return;
    s.queued[i].push(data);
    this.pump(s);
  }

  /** Sends queued output within the host's credit. */
  private pump(s: Session): void {
    for (const i of [0, 1] as const) {
      while (s.queued[i].length && s.credit[i] > 0) {
        const head = s.queued[i][0];
        const n = Math.min(head.length, s.credit[i], MAX_PAYLOAD - 1);
        s.credit[i] -= n;
        if (n === head.length) s.queued[i].shift();
        else s.queued[i][0] = head.subarray(n);
        this.send(FrameType.Data, s.id, Buffer.concat([Buffer.from([i + 1]), head.subarray(0, n)]));
      }
    }
    if (s.ended && !s.queued[0].length && !s.queued[1].length && this.sessions.get(s.id) === s) this.sendExit(s);
  }

  private exits = new Map<Session, string>();

  private finish(s: Session, code: number | null, signal: string | null, tell = true, timedOut = false): void {
    if (s.ended) return;
    s.ended = true;
    clearTimeout(s.timer);
    if (!tell) {
      this.sessions.delete(s.id);
      return;
    }
    if (signal) s.queued = [[], []]; // killed: what it had not written is gone
    this.exits.set(s, JSON.stringify({ code, signal, timedOut }));
    this.pump(s);
  }

  private sendExit(s: Session): void {
    this.sessions.delete(s.id);
    this.send(FrameType.Exit, s.id, Buffer.from(this.exits.get(s)!));
    this.exits.delete(s);
  }
}

function u32(n: number): number[] {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return [...b];
}
