/**
 * The machines that run now, one per awake sprite, with what hangs off each: its guest agent
 * client (exec, terminals, identity), its qemu-guest-agent link (readiness of a cold boot,
 * power-off, repair), its spritely-env channel, its egress proxy and its network stack's link
 * (vm/net/netstack-link.ts). A machine enters through `adopt` (after a launch, a re-attach or a
 * warm spare's hand-over) and leaves through `teardown` — the one path that ends it (or lets go
 * of it), closes everything around it and forgets its runtime file.
 *
 * The agent client belongs to the sprite rather than to one machine: a sleep that suspended it
 * (`teardown(..., { keepSessions: true })`) leaves it here, and the woken machine's `adopt` picks
 * it up, so terminal sessions resume on the same RAM.
 *
 * The sprite's network (vm/net/sprite-network.ts: its egress connector and refusal log) belongs
 * to the sprite too: each machine's egress proxy and network stack link decide through it, and
 * what it refused stays listed (`spritely net show NAME`) across the machine's restarts, sleeps
 * and restores, for the daemon's life, until the sprite is destroyed. A daemon restart starts every list empty.
 */
import fs from 'node:fs';
import type { EnvHandler } from '../checkpoints/env-channel.ts';
import { GUEST_PORTS, type ExitReason, type Machine } from '../driver/driver.ts';
import { AgentClient } from '../guest/agent-client.ts';
import { GuestAgentLink } from '../guest/guest-agent.ts';
import type { GuestControl } from '../guest/guest-control.ts';
import type { NetworkPolicy } from '../net/egress-policy.ts';
import type { RefusedDestination } from '../net/refusal-log.ts';
import { SpriteNetwork } from '../net/sprite-network.ts';
import { spritePaths, type Layout } from '../paths.ts';
import type { Runtime } from '../store/sprite-manifest.ts';
import type { EngineIo, EnvChannelLike, EgressLike } from './engine-io.ts';

export interface LiveMachine {
  name: string;
  machine: Machine;
  runtime: Runtime;
  /** The spritely agent: exec, terminals, identity, clock. */
  agent: AgentClient;
  /** qemu-guest-agent: a cold boot's readiness, power-off, sync, and repairing the spritely agent. */
  guest: GuestAgentLink;
  env: EnvChannelLike;
  egress: EgressLike;
  /** Where the machine's host network stack asks about each guest connection and DNS query. */
  net: EgressLike;
}

/** What the engine does about a machine's life (wired by the facade). */
export interface LiveHooks {
  /** The machine ended on its own (crash) or after a quit nobody is waiting for. */
  exited(name: string, reason: ExitReason, detail: string): void;
  /** The guest powered itself off. */
  poweredOff(name: string, machine: Machine): void;
  /** The guest agent has not answered for a while (`why`: the last error). */
  agentStuck(name: string, why: Error): Promise<void>;
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
  private agents = new Map<string, AgentClient>();
  private networks = new Map<string, SpriteNetwork>();

  constructor(
    private readonly layout: Layout,
    private readonly io: EngineIo,
    private readonly hooks: LiveHooks,
    /** After this long without an answer from a guest agent, `agentStuck` is called. */
    private readonly agentStuckMs: number,
  ) {}

  get(name: string): LiveMachine | undefined {
    return this.live.get(name);
  }

  names(): string[] {
    return [...this.live.keys()];
  }

  /** qemu-guest-agent of an awake sprite (connected, or connecting for up to `timeoutMs`). */
  guest(name: string, timeoutMs: number): Promise<GuestControl> {
    const l = this.live.get(name);
    if (!l) return Promise.reject(new Error(`sprite ${name} is not running`));
    return l.guest.ready(timeoutMs);
  }

  /** The sprite's agent client, made on first use; it reaches whichever machine the sprite has now. */
  private agentOf(name: string): AgentClient {
    let agent = this.agents.get(name);
    if (!agent) {
      agent = new AgentClient({
        connect: () => {
          const l = this.live.get(name);
          return l ? l.machine.openPort(GUEST_PORTS.agent) : Promise.reject(new Error(`sprite ${name} is not running`));
        },
        name,
        log: this.hooks.log,
        stuckAfterMs: this.agentStuckMs,
        // the guest's own DNS and TCP (docs/network.md), decided by the sprite's policy
        network: this.networkOf(name),
      });
      agent.on('stuck', (why) => void this.hooks.agentStuck(name, why).catch(() => {}));
      this.agents.set(name, agent);
    }
    return agent;
  }

  /** The sprite's network, made on first use and kept until the sprite is destroyed (forgetNetwork). */
  private networkOf(name: string): SpriteNetwork {
    let network = this.networks.get(name);
    if (!network) {
      network = new SpriteNetwork({
        sprite: name,
        policy: () => this.hooks.policy(name),
        onActivity: () => this.hooks.touch(name),
        log: (x) => this.hooks.log(`sprite ${name}: ${x}`),
        listedBy: `spritely net show ${name}`,
        now: () => this.io.now(),
      });
      this.networks.set(name, network);
    }
    return network;
  }

  /** What the sprite was last refused, newest first (nothing since the daemon started: []). */
  refused(name: string): RefusedDestination[] {
    return this.networks.get(name)?.refusals.list() ?? [];
  }

  /** The sprite is gone: its network's connections end and its refusals are forgotten. */
  forgetNetwork(name: string): void {
    this.networks.get(name)?.close();
    this.networks.delete(name);
  }

  /** Takes ownership of a running machine: links to it, and watches how it ends. */
  adopt(name: string, machine: Machine, runtime: Runtime): LiveMachine {
    const log = (x: string) => this.hooks.log(`sprite ${name}: ${x}`);
    const previous = this.live.get(name);
    if (previous) this.close(previous, 'its machine was replaced', false);
    const entry: LiveMachine = {
      name,
      machine,
      runtime,
      agent: this.agentOf(name),
      guest: new GuestAgentLink(() => machine.openPort(GUEST_PORTS.control), { log }),
      env: this.io.envChannel(() => machine.openPort(GUEST_PORTS.env), this.hooks.envHandler(name), log),
      egress: this.io.egressProxy({
        sprite: name,
        socketPath: runtime.egressSocket ?? spritePaths(this.layout, name).egressSocket,
        policy: () => this.hooks.policy(name),
        onActivity: () => this.hooks.touch(name),
        log,
        connector: this.networkOf(name).connector,
      }),
      net: this.io.netstackLink({
        socketPath: runtime.netSocket ?? spritePaths(this.layout, name).netSocket,
        network: this.networkOf(name),
        log,
      }),
    };
    this.live.set(name, entry);
    entry.egress.listen().catch((err: Error) => log(`egress proxy could not listen: ${err.message}`));
    entry.net.listen().catch((err: Error) => log(`the network stack's socket could not listen: ${err.message}`));
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
   * file goes too, unless it is left running for the next daemon. The agent's sessions end with
   * `why` — unless `keepSessions` (a sleep that suspended them) keeps them for the woken machine.
   */
  async teardown(name: string, how: Teardown, opts: { why?: string; keepSessions?: boolean } = {}): Promise<void> {
    const entry = this.live.get(name);
    if (!entry) {
      if (!opts.keepSessions) this.dropAgent(name, opts.why ?? 'the sprite is not running');
      return;
    }
    this.live.delete(name);
    this.close(entry, opts.why ?? whyOf(how), !!opts.keepSessions);
    if (how === 'quit') await entry.machine.quit();
    else if (how === 'kill') await entry.machine.kill();
    else if (how === 'detach') entry.machine.detach();
    if (how !== 'detach') fs.rmSync(spritePaths(this.layout, name).runtime, { force: true });
  }

  /** Ends the sessions a sleep kept (the sprite will not be resumed exactly: stopped, destroyed, booted instead). */
  dropAgent(name: string, why: string): void {
    const agent = this.agents.get(name);
    if (!agent) return;
    this.agents.delete(name);
    agent.close(why);
  }

  /** The daemon exits: every machine keeps running for the next daemon to re-attach (synchronous: nothing to wait for). */
  detachAll(): void {
    for (const name of this.names()) void this.teardown(name, 'detach', { why: 'the daemon stopped' });
    for (const name of [...this.agents.keys()]) this.dropAgent(name, 'the daemon stopped');
  }

  private close(entry: LiveMachine, why: string, keepSessions: boolean): void {
    if (!keepSessions || !entry.agent.isSuspended) this.dropAgent(entry.name, why);
    entry.guest.close();
    entry.env.close();
    entry.egress.close();
    entry.net.close();
    // the machine's connections end with it; the network (and what it refused) stays
    this.networks.get(entry.name)?.close();
  }
}

function whyOf(how: Teardown): string {
  switch (how) {
    case 'quit':
      return 'the sprite stopped';
    case 'kill':
      return 'the sprite was ended';
    case 'detach':
      return 'the daemon stopped';
    case 'gone':
      return 'the sprite’s machine ended';
  }
}
