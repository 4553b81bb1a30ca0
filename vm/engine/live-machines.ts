/**
 * The machines that run now, one per awake sprite, with what hangs off each: its SSH link, its
 * guest agent, its spritely-env channel and its egress proxy. A machine enters through `adopt`
 * (after a launch or a re-attach) and leaves through `teardown` — the one path that ends it (or
 * lets go of it), closes everything around it and forgets its runtime file.
 */
import fs from 'node:fs';
import type { EnvHandler } from '../checkpoints/env-channel.ts';
import { GUEST_PORTS, type ExitReason, type Machine } from '../driver/driver.ts';
import { GuestAgentLink } from '../guest/guest-agent.ts';
import type { GuestControl } from '../guest/guest-control.ts';
import type { NetworkPolicy } from '../net/egress-policy.ts';
import { spritePaths, type Layout } from '../paths.ts';
import type { Runtime } from '../store/sprite-manifest.ts';
import type { EngineIo, EnvChannelLike, EgressLike, SshChannels } from './engine-io.ts';

export interface LiveMachine {
  name: string;
  machine: Machine;
  runtime: Runtime;
  ssh: SshChannels;
  guest: GuestAgentLink;
  env: EnvChannelLike;
  egress: EgressLike;
}

/** What the engine does about a machine's life (wired by the facade). */
export interface LiveHooks {
  /** The machine ended on its own (crash) or after a quit nobody is waiting for. */
  exited(name: string, reason: ExitReason, detail: string): void;
  /** The guest powered itself off. */
  poweredOff(name: string, machine: Machine): void;
  /** SSH into it has failed for a while. */
  sshStuck(name: string): Promise<void>;
  /** What the guest may ask over spritely-env. */
  envHandler(name: string): EnvHandler;
  /** The sprite's network policy, read per connection. */
  policy(name: string): NetworkPolicy;
  touch(name: string): void;
  log(msg: string): void;
}

/** How a machine leaves: ended cleanly, ended at once, left running (the daemon exits), or already gone. */
export type Teardown = 'quit' | 'kill' | 'detach' | 'gone';

export class LiveMachines {
  private live = new Map<string, LiveMachine>();

  constructor(
    private readonly layout: Layout,
    private readonly io: EngineIo,
    private readonly clientKey: () => { privateKey: string },
    private readonly hooks: LiveHooks,
  ) {}

  get(name: string): LiveMachine | undefined {
    return this.live.get(name);
  }

  names(): string[] {
    return [...this.live.keys()];
  }

  /** The guest agent of an awake sprite (connected, or connecting for up to `timeoutMs`). */
  guest(name: string, timeoutMs: number): Promise<GuestControl> {
    const l = this.live.get(name);
    if (!l) return Promise.reject(new Error(`sprite ${name} is not running`));
    return l.guest.ready(timeoutMs);
  }

  /** Takes ownership of a running machine: links to it, and watches how it ends. */
  adopt(name: string, machine: Machine, runtime: Runtime, hostKeyPub: string): LiveMachine {
    const log = (x: string) => this.hooks.log(`sprite ${name}: ${x}`);
    const entry: LiveMachine = {
      name,
      machine,
      runtime,
      ssh: this.io.sshLink({ name, port: runtime.sshPort, privateKey: this.clientKey().privateKey, hostKeyPub, log: this.hooks.log, onStuck: () => this.hooks.sshStuck(name) }),
      guest: new GuestAgentLink(() => machine.openPort(GUEST_PORTS.control)),
      env: this.io.envChannel(() => machine.openPort(GUEST_PORTS.env), this.hooks.envHandler(name), log),
      egress: this.io.egressProxy({
        sprite: name,
        socketPath: spritePaths(this.layout, name).egressSocket,
        policy: () => this.hooks.policy(name),
        onActivity: () => this.hooks.touch(name),
        log,
      }),
    };
    this.close(this.live.get(name));
    this.live.set(name, entry);
    entry.egress.listen().catch((err: Error) => log(`egress proxy could not listen: ${err.message}`));
    const current = () => this.live.get(name)?.machine === machine;
    machine.on('poweroff', () => {
      if (current()) this.hooks.poweredOff(name, machine);
    });
    machine.on('exit', (reason, detail) => {
      if (current()) this.hooks.exited(name, reason, detail);
    });
    return entry;
  }

  /**
   * The one way a machine leaves the engine. It is forgotten first (so its own exit event is not
   * mistaken for a crash), everything around it is closed, then it is ended as asked; its runtime
   * file goes too, unless it is left running for the next daemon.
   */
  async teardown(name: string, how: Teardown): Promise<void> {
    const entry = this.live.get(name);
    if (!entry) return;
    this.live.delete(name);
    this.close(entry);
    if (how === 'quit') await entry.machine.quit();
    else if (how === 'kill') await entry.machine.kill();
    else if (how === 'detach') entry.machine.detach();
    if (how !== 'detach') fs.rmSync(spritePaths(this.layout, name).runtime, { force: true });
  }

  /** The daemon exits: every machine keeps running for the next daemon to re-attach (synchronous: nothing to wait for). */
  detachAll(): void {
    for (const name of this.names()) void this.teardown(name, 'detach');
  }

  private close(entry: LiveMachine | undefined): void {
    if (!entry) return;
    entry.ssh.close();
    entry.guest.close();
    entry.env.close();
    entry.egress.close();
  }
}
