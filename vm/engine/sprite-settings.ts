/**
 * Settings a user changes on a sprite or on the daemon: idle timeouts, the memory limit, what a
 * sprite may reach, and which guest port its local URL forwards to (changed live on a running
 * machine). Each change to a sprite runs under its lock and is saved in its manifest.
 */
import { SpritelyError } from '../errors.ts';
import { formatNetworkPolicy, type NetworkPolicy } from '../net/egress-policy.ts';
import type { EngineContext } from './context.ts';
import type { SpriteView } from './sprite-view.ts';

export class SpriteSettings {
  constructor(private readonly ctx: EngineContext) {}

  /**
   * Seconds without use before a sprite sleeps (0 = never): for one sprite (null: it follows the
   * daemon-wide default again), or the daemon-wide default.
   */
  async setIdleTimeout(seconds: number | null, sprite?: string | null): Promise<void> {
    const { registry, locks, config } = this.ctx;
    if (!sprite) {
      if (seconds === null) throw new SpritelyError('invalid_argument', 'Only a sprite can go back to the default idle timeout; the daemon-wide one takes seconds (0 = never).');
      return config.setIdleTimeout(seconds);
    }
    registry.must(sprite);
    await locks.run(sprite, 'configuring', async () => registry.save({ ...registry.must(sprite), idleTimeoutSec: seconds }));
  }

  idleTimeoutOf(name: string): number {
    return this.ctx.registry.find(name)?.idleTimeoutSec ?? this.ctx.config.idleTimeoutSec;
  }

  /** What the sprite may reach; applies to the next connection the guest opens (no restart). */
  async setNetwork(name: string, policy: NetworkPolicy): Promise<SpriteView> {
    const { registry, locks, log } = this.ctx;
    registry.must(name);
    await locks.run(name, 'configuring', async () => registry.save({ ...registry.must(name), network: policy }));
    log(`sprite ${name}: network ${formatNetworkPolicy(policy)}`);
    return registry.view(name);
  }

  /** Which guest port the local URL forwards to; applied to a running sprite right away. */
  async setUrlPort(name: string, port: number): Promise<void> {
    const { registry, locks, live } = this.ctx;
    registry.must(name);
    await locks.run(name, 'configuring', async () => {
      const m = registry.must(name);
      if (m.urlPort === port) return;
      const entry = live.get(name);
      if (entry) {
        try {
          await entry.machine.setForward({ hostPort: entry.runtime.urlHostPort, guestPort: port });
        } catch (err) {
          throw new SpritelyError('internal', (err as Error).message);
        }
      }
      await registry.save({ ...m, urlPort: port });
    });
  }
}
