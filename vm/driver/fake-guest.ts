/**
 * The fake driver's guest: an in-memory qemu-guest-agent (the real client in vm/guest/ talks to it
 * over an in-memory byte channel), a slot for the program behind the spritely agent's port (the
 * engine's spec fixture plugs in vm/guest/fake-agent.ts, the real wire format) and the guest end of
 * the spritely-env port. What qemu-guest-agent does on `exec` is scriptable; by default it says
 * systemd is running and succeeds at everything else. It can be told never to answer (`silent`:
 * neither agent answers).
 */
import { Duplex } from 'node:stream';
import { JsonLineDecoder } from '../json-lines.ts';

/** The program behind the spritely agent's port; its state is part of the guest's RAM. */
export interface FakeAgentProgram {
  silent: boolean;
  /** The guest end of a new connection to the port. */
  attach(guest: Duplex): void;
  /** The machine ended. */
  detach(): void;
  /** Its state, saved with the guest's RAM. */
  snapshot(): unknown;
  restore(saved: unknown): void;
}

/** Two connected in-memory byte streams: what one side writes, the other reads. */
export function duplexPair(): [Duplex, Duplex] {
  const make = (peer: () => Duplex) =>
    new Duplex({
      read() {},
      write(chunk: Buffer, _enc, cb) {
        if (!peer().destroyed) peer().push(chunk);
        cb();
      },
      final(cb) {
        if (!peer().destroyed) peer().push(null);
        cb();
      },
      destroy(err, cb) {
        if (!peer().destroyed) peer().destroy();
        cb(err);
      },
    });
  const a: Duplex = make(() => b);
  const b: Duplex = make(() => a);
  return [a, b];
}

export interface GuestExecCall {
  path: string;
  args: string[];
  stdin: string;
}

export interface GuestExecAnswer {
  exitCode?: number;
  stdout?: string;
  stderr?: string;
}

export class FakeGuest {
  /** Every program run through qemu-guest-agent, in order. */
  readonly execs: GuestExecCall[] = [];
  /** Neither agent ever answers (a guest that hangs, or never boots). */
  private isSilent = false;

  /** `agent`: the program behind the spritely agent's port (the fake driver's `makeAgent`), if any. */
  constructor(readonly agent: FakeAgentProgram | null = null) {}
  /** Overrides what an exec does; return undefined for the default. */
  onExec: ((call: GuestExecCall) => GuestExecAnswer | undefined) | null = null;
  /** Called when the guest is asked to power off. */
  onShutdown: (() => void) | null = null;
  private results = new Map<number, Required<GuestExecAnswer>>();
  private nextPid = 1;
  private envPeer: Duplex | null = null;
  private agentPeers = new Set<Duplex>();

  get silent(): boolean {
    return this.isSilent;
  }

  set silent(v: boolean) {
    this.isSilent = v;
    if (this.agent) this.agent.silent = v;
  }

  /** A new connection to the spritely agent's port. */
  connectSpritelyAgent(): Duplex {
    if (!this.agent) throw new Error('this fake guest runs no spritely agent');
    const [host, guest] = duplexPair();
    this.agent.attach(guest);
    return host;
  }

  /** A new connection to the guest agent port. */
  connectAgent(): Duplex {
    const [host, guest] = duplexPair();
    const decoder = new JsonLineDecoder();
    guest.on('data', (chunk: Buffer) => {
      if (this.silent) return;
      const text = chunk.toString('latin1').replace(/\xff/g, '');
      for (const msg of decoder.feed(text).messages) this.answer(guest, msg as { execute?: string; arguments?: Record<string, any> });
    });
    guest.on('error', () => {});
    guest.on('close', () => this.agentPeers.delete(guest));
    this.agentPeers.add(guest);
    return host;
  }

  /** A new connection to the spritely-env port; the guest's end is `env`. */
  connectEnv(): Duplex {
    const [host, guest] = duplexPair();
    guest.on('error', () => {});
    this.envPeer?.destroy();
    this.envPeer = guest;
    return host;
  }

  /** The guest's end of the spritely-env port (the latest connection), where a spec writes requests. */
  get env(): Duplex | null {
    return this.envPeer;
  }

  private answer(guest: Duplex, msg: { execute?: string; arguments?: Record<string, any> }): void {
    const reply = (value: unknown, prefix = '') => {
      if (!guest.destroyed) guest.write(prefix + JSON.stringify({ return: value }) + '\n', 'latin1');
    };
    switch (msg.execute) {
      case 'guest-sync-delimited':
        return reply(msg.arguments?.id, '\xff');
      case 'guest-ping':
        return reply({});
      case 'guest-shutdown':
        return this.onShutdown?.();
      case 'guest-exec': {
        const a = msg.arguments ?? {};
        const call: GuestExecCall = { path: String(a.path), args: (a.arg ?? []) as string[], stdin: a['input-data'] ? Buffer.from(a['input-data'], 'base64').toString('utf8') : '' };
        this.execs.push(call);
        const pid = this.nextPid++;
        const r = this.onExec?.(call) ?? this.defaultExec(call);
        this.results.set(pid, { exitCode: r.exitCode ?? 0, stdout: r.stdout ?? '', stderr: r.stderr ?? '' });
        return reply({ pid });
      }
      case 'guest-exec-status': {
        const r = this.results.get(msg.arguments?.pid);
        if (!r) return void guest.write(JSON.stringify({ error: { class: 'GenericError', desc: 'no such pid' } }) + '\n');
        return reply({ exited: true, exitcode: r.exitCode, 'out-data': Buffer.from(r.stdout).toString('base64'), 'err-data': Buffer.from(r.stderr).toString('base64') });
      }
      default:
        guest.write(JSON.stringify({ error: { class: 'CommandNotFound', desc: `unknown command ${msg.execute}` } }) + '\n');
    }
  }

  private defaultExec(call: GuestExecCall): GuestExecAnswer {
    if (call.path === '/bin/systemctl' && call.args[0] === 'is-system-running') return { stdout: 'running\n' };
    return {};
  }

  /** Ends every connection into the guest (its machine is gone). */
  disconnect(): void {
    this.agent?.detach();
    this.envPeer?.destroy();
    this.envPeer = null;
    for (const p of this.agentPeers) p.destroy();
    this.agentPeers.clear();
  }
}
