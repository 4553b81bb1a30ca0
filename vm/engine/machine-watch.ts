/**
 * What the engine does when a machine acts on its own: it ended (a crash is recorded with what it
 * last said; an end nobody waits for is announced), its guest powered off (recorded as stopped),
 * or its guest agent stopped answering (a guest that killed, stopped or replaced it: the guest is
 * asked over qemu-guest-agent, the independent channel, what systemd knows, and the agent is
 * restarted; callers meanwhile get a clear error after their own timeout, never a hung daemon).
 */
import type { ExitReason, Machine } from '../driver/driver.ts';
import { withAwakePeriodClosed, type EngineContext } from './context.ts';
import { repairAgent } from './guest-setup.ts';
import type { Lifecycle } from './lifecycle.ts';

export class MachineWatch {
  constructor(
    private readonly ctx: EngineContext,
    private readonly lifecycle: Lifecycle,
  ) {}

  async exited(name: string, reason: ExitReason, detail: string): Promise<void> {
    const { registry, live, driver, log } = this.ctx;
    const m = registry.find(name);
    const crashed = m && reason === 'crash';
    if (crashed) {
      // Recorded (metered, with why) before the machine is forgotten, so no view ever shows it
      // crashed without the reason; the manifest file follows.
      const why = `${driver.displayName} exited unexpectedly: ${detail}`;
      log(`sprite ${name}: crashed: ${why}`);
      registry.replace({ ...withAwakePeriodClosed(this.ctx, m), status: 'crashed', lastError: why });
    }
    await live.teardown(name, 'gone');
    if (crashed) await registry.save(registry.must(name)).catch((err: Error) => log(`sprite ${name}: ${err.message}`));
    else registry.announce(name);
  }

  poweredOff(name: string, machine: Machine): void {
    const { locks, live, log } = this.ctx;
    if (locks.operation(name)) return;
    log(`sprite ${name}: the guest powered off`);
    locks
      .run(name, 'stopping', async () => {
        if (live.get(name)?.machine === machine) await this.lifecycle.finishStop(name);
      })
      .catch((err) => log(`sprite ${name}: ${err.message}`));
  }

  private repairing = new Set<string>();

  async agentStuck(name: string, why: Error): Promise<void> {
    const { live, log, locks } = this.ctx;
    // not while the machine is being made, booted, woken or restored: that operation waits for the agent itself
    if (this.repairing.has(name) || !live.get(name) || locks.operation(name)) return;
    this.repairing.add(name);
    try {
      const said = await repairAgent(await live.guest(name, Math.min(5_000, this.ctx.timeouts.agentMs)));
      log(`sprite ${name}: its guest agent did not answer for ${this.ctx.timeouts.agentStuckMs / 1000} s (${why.message}); asked the guest to restart it: ${said}`);
    } catch (err) {
      log(`sprite ${name}: its guest agent did not answer for ${this.ctx.timeouts.agentStuckMs / 1000} s (${why.message}), and qemu-guest-agent did not answer either: ${(err as Error).message}`);
    } finally {
      this.repairing.delete(name);
    }
  }
}
