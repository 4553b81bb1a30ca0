/**
 * A scripted daemon for unit and component tests: records calls, answers them with handlers the
 * test sets, pushes events, and hands out terminal sockets the test can drive. Never used by the
 * e2e tests, which talk to the real daemon.
 */
import type { ConnectionState, EventMessage, EventsHandlers, MethodInput, MethodName, MethodOutput, Sprite, TerminalOpenOptions, TerminalServerMessage, TerminalSocket, TerminalSocketHandlers, Transport } from '../transport.ts';

export function sprite(name: string, over: Partial<Sprite> = {}): Sprite {
  const base = {
    name,
    state: 'running',
    operation: null,
    image: 'debian-12-5976cd2da0fe',
    createdAt: new Date(Date.now() - 3600_000).toISOString(),
    startedAt: new Date(Date.now() - 125_000).toISOString(),
    uptimeSeconds: 125,
    memoryMiB: 1024,
    cpus: 2,
    diskGiB: 100,
    accel: 'tcg',
    pid: 1234,
    sshPort: 40022,
    lastError: null,
    urlPort: 8080,
    idleTimeoutSec: null,
    network: 'internet',
    usage: { awakeSeconds: 125, cpuSeconds: 12.5, diskBytes: 20 * 1024 ** 2, lastActiveAt: null },
  };
  // A cast, not a literal: the fake keeps compiling while the contract's Sprite grows fields.
  return { ...base, ...over } as Sprite;
}

export class FakeTerminalSocket implements TerminalSocket {
  sent: Uint8Array[] = [];
  control: unknown[] = [];
  acked = 0;
  detached = false;
  hungUp = false;
  constructor(
    readonly sprite: string,
    readonly opts: TerminalOpenOptions,
    readonly handlers: TerminalSocketHandlers,
  ) {}
  send(bytes: Uint8Array): void {
    this.sent.push(bytes);
  }
  resize(cols: number, rows: number): void {
    this.control.push({ type: 'resize', cols, rows });
  }
  ack(bytes: number): void {
    this.acked += bytes;
    this.control.push({ type: 'ack', bytes });
  }
  hangUp(): void {
    this.hungUp = true;
  }
  detach(): void {
    this.detached = true;
  }
  // test side
  server(m: TerminalServerMessage): void {
    this.handlers.onMessage(m);
  }
  output(text: string | Uint8Array): void {
    this.handlers.onData(typeof text === 'string' ? new TextEncoder().encode(text) : text);
  }
  close(reason = ''): void {
    this.handlers.onClose({ code: 1006, reason });
  }
  get input(): string {
    return this.sent.map((b) => new TextDecoder().decode(b)).join('');
  }
}

type Handler = (input: any) => unknown;

export class FakeTransport implements Transport {
  calls: { method: string; input: unknown }[] = [];
  handlers: Partial<Record<MethodName, Handler>> = {};
  methods = new Set<string>(['sprites.list', 'sprites.create', 'sprites.start', 'sprites.stop', 'sprites.destroy', 'images.list', 'daemon.info']);
  terminals: FakeTerminalSocket[] = [];
  private subs = new Set<EventsHandlers>();
  /** What the daemon knows, for `sprites.get` (kept from emitted events). */
  known = new Map<string, Sprite>();

  /** Calls that change something (reads left out). */
  get writes(): { method: string; input: unknown }[] {
    return this.calls.filter((c) => c.method !== 'sprites.get' && c.method !== 'sprites.list');
  }

  async call<M extends MethodName>(method: M, input?: MethodInput<M>): Promise<MethodOutput<M>> {
    this.calls.push({ method, input });
    const h = this.handlers[method];
    if (!h && method === 'sprites.get') {
      const s = this.known.get((input as { name: string }).name);
      if (!s) throw new Error('not found');
      return s as MethodOutput<M>;
    }
    if (!h) throw new Error(`FakeTransport: no handler for ${method}`);
    return (await h(input)) as MethodOutput<M>;
  }

  has(method: string): boolean {
    return this.methods.has(method);
  }

  subscribe(h: EventsHandlers): () => void {
    this.subs.add(h);
    h.onState('connecting');
    return () => this.subs.delete(h);
  }

  openTerminal(name: string, opts: TerminalOpenOptions, handlers: TerminalSocketHandlers): TerminalSocket {
    const s = new FakeTerminalSocket(name, opts, handlers);
    this.terminals.push(s);
    return s;
  }

  // test side
  emit(e: EventMessage): void {
    if (e.type === 'hello') for (const s of e.sprites) this.known.set(s.name, s);
    if (e.type === 'sprite.changed') this.known.set(e.sprite.name, e.sprite);
    if (e.type === 'sprite.removed') this.known.delete(e.name);
    for (const h of this.subs) {
      if (e.type === 'hello') h.onState('online');
      h.onEvent(e);
    }
  }
  state(s: ConnectionState, detail?: string): void {
    for (const h of this.subs) h.onState(s, detail);
  }
  get subscribers(): number {
    return this.subs.size;
  }
}

/** In-memory Storage. */
export class MemoryStorage {
  data = new Map<string, string>();
  getItem(k: string): string | null {
    return this.data.get(k) ?? null;
  }
  setItem(k: string, v: string): void {
    this.data.set(k, v);
  }
}
