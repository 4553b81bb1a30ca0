/**
 * Interactive shells in sprites that outlive the window showing them. A session is one SSH shell
 * channel; clients attach and detach (a reload, a closed window, a second tab), and each attach
 * first replays the newest scrollback so nothing that happened meanwhile is lost. Output is
 * batched and credit-flow-controlled per client; a session nobody attaches to for a while is
 * hung up.
 */
import crypto from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { ClientChannel } from 'ssh2';
import { SpritelyError } from '../errors.ts';
import type { SshChannels } from '../ssh/ssh-link.ts';
import { FlowGate, OutputBatcher, RingBuffer, TERMINAL_HIGH_WATER, TERMINAL_LOW_WATER } from './flow-control.ts';

export const SCROLLBACK_BYTES = 1024 * 1024;
export const DETACHED_GRACE_MS = 10 * 60 * 1000;

export interface TerminalClient {
  /** Called on attach with how many bytes of scrollback are replayed next. */
  attached(replayed: number): void;
  send(data: Buffer): void;
  exited(code: number | null, signal: string | null): void;
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
  private exit: { code: number | null; signal: string | null } | null = null;
  private graceTimer: NodeJS.Timeout | null = null;

  constructor(
    readonly sprite: string,
    private readonly channel: ClientChannel,
  ) {
    super();
    this.gate = new FlowGate(TERMINAL_HIGH_WATER, TERMINAL_LOW_WATER, () => channel.pause(), () => channel.resume());
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
    channel.on('exit', (code: number | null, signal?: string) => {
      this.exit = { code: code ?? null, signal: signal ?? null };
    });
    channel.on('close', () => {
      this.batcher.flush();
      const e = this.exit ?? { code: null, signal: null };
      for (const c of this.clients) c.exited(e.code, e.signal);
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

  async open(sprite: string, link: SshChannels, size: { cols: unknown; rows: unknown }): Promise<TerminalSession> {
    const { cols, rows } = clampSize(size.cols, size.rows);
    const channel = await link.shell({ term: 'xterm-256color', cols, rows, width: 0, height: 0 });
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
