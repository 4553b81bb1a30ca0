/**
 * The guest agent of a sprite as exec and terminals reach it: ready or a clear `unavailable` (the
 * daemon meanwhile has the guest restart it), and, for exec and terminals, the sprite woken first
 * and any operation on it (a restore, a create) waited out. Apart from the facade because each of
 * these waits and words its failure its own way.
 */
import { SpritelyError } from '../errors.ts';
import type { AgentChannel } from '../guest/agent-channel.ts';
import type { AgentClient } from '../guest/agent-client.ts';
import type { ExecRequest, PtyRequest } from '../guest/agent-protocol.ts';
import type { EngineContext } from './context.ts';
import type { SleepWake } from './sleep-wake.ts';

export class GuestAccess {
  constructor(
    private readonly ctx: EngineContext,
    private readonly sleepWake: SleepWake,
  ) {}

  /** The guest agent of a running sprite (exec and terminals ride on it), ready. */
  async agent(name: string): Promise<AgentClient> {
    const v = this.ctx.registry.view(name);
    const entry = this.ctx.live.get(name);
    if (v.state !== 'running' || !entry) {
      throw new SpritelyError('failed_precondition', `Sprite "${name}" is ${v.state}; start it first (spritely start ${name}).`);
    }
    try {
      await entry.agent.ready(this.ctx.timeouts.agentMs);
    } catch (err) {
      throw new SpritelyError('unavailable', `The guest agent in sprite "${name}" does not answer (${(err as Error).message}). The daemon asked the guest to restart it; try again in a few seconds.`);
    }
    return entry.agent;
  }

  /** The guest agent of a sprite, waking it first if it sleeps (and waiting for an operation on it to end: a restore, a create). */
  async agentAwake(name: string): Promise<AgentClient> {
    await this.sleepWake.ensureAwake(name);
    await this.ctx.locks.idle(name);
    return this.agent(name);
  }

  /** A command in the sprite (woken first) as an agent session; a guest agent that fails is a clear `unavailable`. */
  async exec(name: string, req: ExecRequest): Promise<AgentChannel> {
    const agent = await this.agentAwake(name);
    return agent.exec(req, this.ctx.timeouts.agentMs).catch((err: Error) => {
      throw new SpritelyError('unavailable', `The guest agent in sprite "${name}" could not start the command: ${err.message}.`);
    });
  }

  /** A program on a new pty in the sprite (woken first): a terminal, or `exec -t`. */
  async pty(name: string, req: PtyRequest): Promise<AgentChannel> {
    const agent = await this.agentAwake(name);
    return agent.pty(req, this.ctx.timeouts.agentMs).catch((err: Error) => {
      throw new SpritelyError('unavailable', `The guest agent in sprite "${name}" could not open a terminal: ${err.message}.`);
    });
  }
}
