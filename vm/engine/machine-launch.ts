/**
 * How a machine starts, the one way for every verb (create, fork, cold boot, wake, restore):
 * admitted against the memory limit (warm spares give way first), launched by the driver, its
 * runtime file written, adopted as a live machine — or a warm spare adopted in its place. And
 * `startRestored`, how a machine restored from a saved state is let run: the guest agent's HELLO
 * goes out before the guest runs, so the agent answers the instant it does. Apart from
 * lifecycle.ts because sleep-wake and checkpoint restore start machines too.
 */
import fs from 'node:fs';
import type { MachineShape } from '../driver/driver.ts';
import { bootFiles, type ImageRecord } from '../images/image-store.ts';
import { spritePaths } from '../paths.ts';
import { writeRuntime, type Manifest, type Runtime } from '../store/sprite-manifest.ts';
import { type EngineContext } from './context.ts';
import type { LiveMachine } from './live-machines.ts';
import type { Spare } from './warm-spares.ts';

export function shapeOf(m: Pick<Manifest, 'memoryMiB' | 'cpus'>): MachineShape {
  return { memoryMiB: m.memoryMiB, cpus: m.cpus };
}

export class MachineLaunch {
  constructor(private readonly ctx: EngineContext) {}

  /**
   * Admits `name` against the memory limit (or throws, naming what to sleep); the RAM stays
   * reserved until the returned function is called.
   */
  admit(name: string, memoryMiB: number): () => void {
    const { live, registry, config, admission, spares } = this.ctx;
    const awake = () => [...live.names().map((n) => ({ name: n, memoryMiB: registry.find(n)?.memoryMiB ?? 0 })), ...spares.reserved()];
    try {
      return admission.reserve(name, memoryMiB, config.memoryLimitMiB, awake());
    } catch (err) {
      // warm spares are the first to go: a sprite that needs the RAM gets it
      if (!spares.reserved().length) throw err;
      spares.discardAll(`"${name}" needs the memory`);
      return admission.reserve(name, memoryMiB, config.memoryLimitMiB, awake());
    }
  }

  /**
   * Lets a machine restored from a saved state (or a paused spare) run: the agent's HELLO goes out
   * first, so it is waiting in the port when the guest runs; then the agent's answer (a resume of
   * its sessions, after a sleep). Records `restoreMs` (the hypervisor's part), `runningMs` (since
   * `t0`) and `agentMs`.
   */
  async startRestored(entry: LiveMachine, timings: Record<string, number>, t0: number, start: () => Promise<void> = () => entry.machine.waitRunning(this.ctx.timeouts.restoreMs)): Promise<void> {
    let t = Date.now();
    let ran!: () => void;
    let failed!: (e: Error) => void;
    const running = new Promise<void>((resolve, reject) => ((ran = resolve), (failed = reject)));
    running.catch(() => {});
    const hello = new Promise<void>((resolve) => {
      entry.agent.once('hello', resolve);
      setTimeout(resolve, 250).unref();
    });
    const ready = entry.agent.ready(this.ctx.timeouts.restoreMs + this.ctx.timeouts.guestAfterRestoreMs, { after: running });
    ready.catch(() => {});
    await hello;
    try {
      await start();
      ran();
    } catch (err) {
      failed(err as Error);
      throw err;
    }
    timings.restoreMs = Date.now() - t;
    timings.runningMs = Date.now() - t0;
    t = Date.now();
    await ready;
    timings.agentMs = Date.now() - t;
  }

  /**
   * Starts a machine for a sprite (booting, or restoring `restoreFrom`, saved with the snapshot
   * views `restoreAttached` attached) and takes ownership of it.
   */
  async launch(name: string, m: Manifest, image: ImageRecord, restoreFrom?: string, restoreAttached?: string[]): Promise<LiveMachine> {
    const { driver, io, live, layout } = this.ctx;
    const release = this.admit(name, m.memoryMiB);
    try {
      const p = spritePaths(layout, name);
      const accel = await driver.accelerator(bootFiles(image));
      const sshPort = await io.freePort();
      const urlHostPort = await io.freePort();
      const machine = await driver.launch({
        id: name,
        dir: p.dir,
        disk: p.disk,
        shape: shapeOf(m),
        boot: bootFiles(image),
        forwards: [
          { hostPort: sshPort, guestPort: 22 },
          { hostPort: urlHostPort, guestPort: m.urlPort },
        ],
        egressSocket: p.egressSocket,
        netSocket: p.netSocket,
        restoreFrom,
        ...(restoreFrom && restoreAttached?.length ? { restoreAttached } : {}),
      });
      const runtime: Runtime = { startedAt: new Date(io.now()).toISOString(), accel: accel.name, sshPort, urlHostPort, machine: machine.handle };
      try {
        await writeRuntime(p.runtime, runtime);
      } catch (err) {
        await machine.kill();
        throw err;
      }
      return live.adopt(name, machine, runtime);
    } finally {
      release();
    }
  }

  /**
   * A warm spare becomes sprite `name`: its disk and files move into the sprite's dir, its runtime
   * file is written, and it is adopted (still paused). Admitted like a launch: the spare's RAM
   * was counted as a spare's until now.
   */
  async adoptSpare(name: string, m: Manifest, spare: Spare): Promise<LiveMachine> {
    const { io, live, layout } = this.ctx;
    const release = this.admit(name, m.memoryMiB);
    try {
      const p = spritePaths(layout, name);
      await spare.machine.rehome({ id: name, dir: p.dir, disk: p.disk });
      fs.rmSync(spare.dir, { recursive: true, force: true });
      const runtime: Runtime = {
        startedAt: new Date(io.now()).toISOString(),
        accel: spare.accel,
        sshPort: spare.sshPort,
        urlHostPort: spare.urlHostPort,
        machine: spare.machine.handle,
        egressSocket: spare.egressSocket,
        netSocket: spare.netSocket,
      };
      try {
        await writeRuntime(p.runtime, runtime);
      } catch (err) {
        await spare.machine.kill();
        throw err;
      }
      return live.adopt(name, spare.machine, runtime);
    } finally {
      release();
    }
  }
}
