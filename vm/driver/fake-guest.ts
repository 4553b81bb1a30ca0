/**
 * The fake driver's guest: an in-memory qemu-guest-agent (the real client in vm/guest/ talks to it
 * over an in-memory byte channel) and the guest end of the spritely-env port. What the guest does
 * on `exec` is scriptable; by default it accepts apply-identity (and records the identity), says
 * systemd is running, and succeeds at everything else. It can be told never to answer.
 */
import { Duplex } from 'node:stream';
import { JsonLineDecoder } from '../json-lines.ts';

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

/** The identity apply-identity was last given (`hostname` etc. as apply-identity reads them). */
export type AppliedIdentity = Record<string, string>;

function decodeIdentity(stdin: string): AppliedIdentity {
  const out: AppliedIdentity = {};
  for (const line of stdin.split('\n')) {
    const [k, v] = line.split(' ');
    if (k && v !== undefined) out[k] = Buffer.from(v, 'base64').toString('utf8');
  }
  return out;
}

export class FakeGuest {
  /** Every program run through the agent, in order. */
  readonly execs: GuestExecCall[] = [];
  /** Set by apply-identity runs that carried a hostname. */
  identity: AppliedIdentity | null = null;
  /** The guest agent never answers (a guest that hangs, or never boots). */
  silent = false;
  /** Overrides what an exec does; return undefined for the default. */
  onExec: ((call: GuestExecCall) => GuestExecAnswer | undefined) | null = null;
  /** Called when the guest is asked to power off. */
  onShutdown: (() => void) | null = null;
  private results = new Map<number, Required<GuestExecAnswer>>();
  private nextPid = 1;
  private envPeer: Duplex | null = null;
  private agentPeers = new Set<Duplex>();

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
    if (call.path === '/usr/lib/spritely/apply-identity') {
      const id = decodeIdentity(call.stdin);
      if (id.hostname !== undefined) this.identity = id;
      return {};
    }
    if (call.path === '/bin/systemctl' && call.args[0] === 'is-system-running') return { stdout: 'running\n' };
    return {};
  }

  /** Ends every connection into the guest (its machine is gone). */
  disconnect(): void {
    this.envPeer?.destroy();
    this.envPeer = null;
    for (const p of this.agentPeers) p.destroy();
    this.agentPeers.clear();
  }
}
