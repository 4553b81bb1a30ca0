/**
 * Interactive shells in sprites that outlive the window showing them. A session is one pty session
 * on the sprite's guest agent; clients attach and detach (a reload, a closed window, a second tab),
 * and each attach first replays the newest scrollback so nothing that happened meanwhile is lost.
 * Output is batched and credit-flow-controlled per client; a session nobody attaches to for a
 * while is hung up. A session survives its sprite's sleep (the agent resumes it on the woken
 * machine); one whose machine was replaced (a restore, a stop) is *lost*, not exited: its clients
 * are told so and reconnect to a new shell.
 */
import crypto from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Readable } from 'node:stream';
import { SpritelyError } from '../errors.ts';
import type { PtyRequest } from '../guest/agent-protocol.ts';
import { FlowGate, OutputBatcher, RingBuffer, TERMINAL_HIGH_WATER, TERMINAL_LOW_WATER } from './flow-control.ts';

/** What a session needs of its channel (an AgentChannel of a pty). */
export interface ShellChannel extends EventEmitter {
  readonly stderr: Readable | EventEmitter;
  write(data: Buffer): boolean;
  pause(): unknown;
  resume(): unknown;
  setWindow(rows: number, cols: number, height: number, width: number): void;
  close(): void;
  /** Set once the session ended: `lost` says why when it did not end by itself. */
  readonly exited?: { code: number | null; signal: string | null; lost?: string } | null;
}

/** What the manager needs to open shells (the sprite's guest agent). */
export interface ShellOpener {
  pty(req: PtyRequest): Promise<ShellChannel>;
}

export const SCROLLBACK_BYTES = 1024 * 1024;
export const DETACHED_GRACE_MS = 10 * 60 * 1000;

export interface TerminalClient {
  /** Called on attach with how many bytes of scrollback are replayed next. */
  attached(replayed: number): void;
  send(data: Buffer): void;
  exited(code: number | null, signal: string | null): void;
  /** The shell is gone without having exited (its machine was restored, stopped, or the daemon lost it). */
  lost(reason: string): void;
}

export function clampSize(cols: unknown, rows: unknown): { cols: number; rows: number } {
  const fix = (v: unknown, dflt: number, max: number) => {
    const n = Math.floor(Number(v));
    return Number.isFinite(n) && n >= 1 ? Math.min(n, max) : dflt;
  };
  return { cols: fix(cols, 80, 1000), rows: fix(rows, 24, 500) };
}

export class TerminalSession extends EventEmitter<{ closed: [] }> {
  readonly id = crypto.randomBytes(12).toString('base64url');
  private scrollback = new RingBuffer(SCROLLBACK_BYTES);
  private clients = new Set<TerminalClient>();
  private gate: FlowGate;
  private batcher: OutputBatcher;
  private exit: { code: number | null; signal: string | null; lost?: string } | null = null;
  private graceTimer: NodeJS.Timeout | null = null;

  constructor(
    readonly sprite: string,
    private readonly channel: ShellChannel,
  ) {
    super();
    this.gate = new FlowGate(TERMINAL_HIGH_WATER, TERMINAL_LOW_WATER, () => void channel.pause(), () => void channel.resume());
    this.batcher = new OutputBatcher((data) => {
      this.scrollback.push(data);
      for (const c of this.clients) {
        c.send(data);
        this.gate.sent(c, data.length);
      }
    });
    const onData = (d: Buffer) => this.batcher.push(d);
    channel.on('data', onData);
    channel.stderr.on('data', onData);
    channel.on('exit', (code: number | null, signal?: string | null, info?: { lost?: string }) => {
      this.exit = { code: code ?? null, signal: signal ?? null, lost: info?.lost };
    });
    channel.on('close', () => {
      this.batcher.flush();
      const e = this.exit ?? { code: null, signal: null, lost: channel.exited?.lost };
      for (const c of this.clients) {
        if (e.lost) c.lost(e.lost);
        else c.exited(e.code, e.signal);
      }
      this.clients.clear();
      this.exit = e;
      if (this.graceTimer) clearTimeout(this.graceTimer);
      this.emit('closed');
    });
    this.armGrace();
  }

  get isOpen(): boolean {
    return this.exit === null;
  }

  /** Attaches a client: says how much is replayed, replays the scrollback, then streams live output. Returns bytes replayed. */
  attach(client: TerminalClient): number {
    if (this.graceTimer) clearTimeout(this.graceTimer);
    this.graceTimer = null;
    this.batcher.flush();
    const replay = this.scrollback.contents();
    client.attached(replay.length);
    this.gate.add(client);
    this.clients.add(client);
    if (replay.length) {
      client.send(replay);
      this.gate.sent(client, replay.length);
    }
    return replay.length;
  }

  detach(client: TerminalClient): void {
    this.clients.delete(client);
    this.gate.remove(client);
    if (!this.clients.size) this.armGrace();
  }

  ack(client: TerminalClient, bytes: number): void {
    this.gate.acked(client, bytes);
  }

  write(data: Buffer): void {
    if (this.isOpen) this.channel.write(data);
  }

  resize(cols: unknown, rows: unknown): void {
    const s = clampSize(cols, rows);
    if (this.isOpen) this.channel.setWindow(s.rows, s.cols, 0, 0);
  }

  close(): void {
    if (this.isOpen) this.channel.close();
  }

  private armGrace(): void {
    if (this.graceTimer) clearTimeout(this.graceTimer);
    this.graceTimer = setTimeout(() => this.close(), DETACHED_GRACE_MS);
    this.graceTimer.unref();
  }
}

export class TerminalManager {
  private sessions = new Map<string, TerminalSession>();

  async open(sprite: string, agent: ShellOpener, size: { cols: unknown; rows: unknown }): Promise<TerminalSession> {
    const { cols, rows } = clampSize(size.cols, size.rows);
    const channel = await agent.pty({ term: 'xterm-256color', cols, rows });
    const session = new TerminalSession(sprite, channel);
    this.sessions.set(session.id, session);
    session.on('closed', () => this.sessions.delete(session.id));
    return session;
  }

  get(id: string, sprite: string): TerminalSession {
    const s = this.sessions.get(id);
    if (!s || s.sprite !== sprite) throw new SpritelyError('not_found', `No terminal session "${id}" on sprite "${sprite}" (it ended, or the daemon restarted).`);
    return s;
  }

  list(sprite?: string): TerminalSession[] {
    return [...this.sessions.values()].filter((s) => !sprite || s.sprite === sprite);
  }

  closeAll(sprite?: string): void {
    for (const s of this.list(sprite)) s.close();
  }
}
