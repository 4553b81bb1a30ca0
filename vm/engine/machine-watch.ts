/**
 * What the engine does when a machine acts on its own: it ended (a crash is recorded with what it
 * last said; an end nobody waits for is announced), its guest powered off (recorded as stopped),
 * or SSH into it keeps failing (the guest is asked why over its control channel, and repairs what
 * it can; the link keeps retrying meanwhile).
 */
import type { ExitReason, Machine } from '../driver/driver.ts';
import { STUCK_AFTER_MS } from '../ssh/ssh-link.ts';
import { withAwakePeriodClosed, type EngineContext } from './context.ts';
import { diagnoseSsh } from './guest-setup.ts';
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

  async sshStuck(name: string): Promise<void> {
    const { live, log } = this.ctx;
    try {
      const said = await diagnoseSsh(await live.guest(name, 5_000));
      log(`sprite ${name}: SSH unreachable for ${STUCK_AFTER_MS / 1000} s; the guest says: ${said}`);
    } catch (err) {
      log(`sprite ${name}: SSH unreachable for ${STUCK_AFTER_MS / 1000} s, and its guest agent did not answer: ${(err as Error).message}`);
    }
  }
}
