/**
 * How the engine is put together: its parts built around one driver and wired to each other (the
 * live machines tell the machine watch when one ends, the registry announces through the engine's
 * events, warm spares ask the memory limit and the golden state, …), and the context they share.
 * Apart from engine.ts so that the facade reads as its verbs; the wiring is all in one place.
 */
import type { EventEmitter } from 'node:events';
import type { CheckpointView } from '../checkpoints/checkpoint-ops.ts';
import { RamCompressor } from '../checkpoints/ram-compressor.ts';
import type { Driver } from '../driver/driver.ts';
import { findGolden } from '../images/golden.ts';
import { bootFiles, ImageStore, type ImageProgress } from '../images/image-store.ts';
import type { Layout } from '../paths.ts';
import type { KeyPair } from '../ssh/keys.ts';
import { SpriteLocks } from '../store/sprite-lock.ts';
import { Admission } from './admission.ts';
import { CheckpointBrowse } from './checkpoint-browse.ts';
import { CheckpointVerbs } from './checkpoint-verbs.ts';
import { DEFAULT_TIMEOUTS, type EngineContext, type EngineTimeouts } from './context.ts';
import { DaemonConfig } from './daemon-config.ts';
import { realIo, type EngineIo } from './engine-io.ts';
import { GuestAccess } from './guest-access.ts';
import { Activity } from './idle.ts';
import { IdleSleep } from './idle-sleep.ts';
import { Lifecycle } from './lifecycle.ts';
import { LiveMachines } from './live-machines.ts';
import { MachineLaunch } from './machine-launch.ts';
import { MachineWatch } from './machine-watch.ts';
import { NewMachines } from './new-machine.ts';
import { SleepWake } from './sleep-wake.ts';
import { SpriteRegistry } from './sprite-registry.ts';
import { SpriteSettings } from './sprite-settings.ts';
import type { SpriteView } from './sprite-view.ts';
import { WarmSpares } from './warm-spares.ts';

export interface EngineEvents {
  sprite: [SpriteView];
  checkpoints: [string, CheckpointView[]];
  removed: [string];
  imageProgress: [ImageProgress];
  log: [string];
}

export interface EngineOptions {
  driver: Driver;
  /** The engine's other I/O; the real one unless a spec passes fakes. */
  io?: EngineIo;
  images?: ImageStore;
  timeouts?: Partial<EngineTimeouts>;
  /** How long after a create the next warm spare is made (default 3 s; specs: 0). */
  spareDelayMs?: number;
  /** Compress checkpoints' RAM states in the background (default: yes, unless SPRITELY_COMPRESS_RAM=0). */
  compressRam?: boolean;
  /** How many of each sprite's newest checkpoint RAM states stay raw (default 2, SPRITELY_RAW_RECENT). */
  keepRecentRaw?: number;
}

/** Every part of one engine; the facade routes each verb to one of them. */
export interface EngineParts {
  readonly ctx: EngineContext;
  readonly images: ImageStore;
  readonly locks: SpriteLocks;
  readonly compressor: RamCompressor;
  readonly registry: SpriteRegistry;
  readonly live: LiveMachines;
  readonly activity: Activity;
  readonly config: DaemonConfig;
  readonly spares: WarmSpares;
  readonly launcher: MachineLaunch;
  readonly newMachines: NewMachines;
  readonly lifecycle: Lifecycle;
  readonly sleepWake: SleepWake;
  readonly checkpoints: CheckpointVerbs;
  readonly browse: CheckpointBrowse;
  readonly settings: SpriteSettings;
  readonly watch: MachineWatch;
  readonly guests: GuestAccess;
  readonly idle: IdleSleep;
}

/** Builds the parts of an engine on `layout` that announce through `events` (the engine itself). */
export function assembleEngine(layout: Layout, opts: EngineOptions, events: EventEmitter<EngineEvents>): EngineParts {
  const io = opts.io ?? realIo;
  const driver = opts.driver;
  const log = (msg: string): void => void events.emit('log', msg);
  let clientKeyPair: KeyPair | null = null;
  const images = opts.images ?? new ImageStore(layout.imagesDir, log, driver.disks);
  const locks = new SpriteLocks((name) => registry.announce(name));
  const activity = new Activity(() => io.now());
  const config = new DaemonConfig(layout.configFile, () => io.hostMemoryMiB());
  const timeouts = { ...DEFAULT_TIMEOUTS, ...opts.timeouts };
  const live: LiveMachines = new LiveMachines(layout, io, {
    exited: (name, reason, detail) => void watch.exited(name, reason, detail),
    poweredOff: (name, machine) => watch.poweredOff(name, machine),
    agentStuck: (name, why) => watch.agentStuck(name, why),
    envHandler: (name) => checkpoints.envHandler(name),
    policy: (name) => registry.find(name)?.network ?? { mode: 'none', allow: [] },
    touch: (name) => activity.touch(name),
    log,
  }, timeouts.agentStuckMs);
  const compressor = new RamCompressor(io.compress, log, (name) => registry.find(name) && ctx.checkpointsChanged(name), opts.compressRam ?? process.env.SPRITELY_COMPRESS_RAM !== '0', opts.keepRecentRaw);
  const registry: SpriteRegistry = new SpriteRegistry({ layout, disks: driver.disks, live, locks, activity, now: () => io.now(), changed: (v) => events.emit('sprite', v) });
  const spares = new WarmSpares({
    layout,
    driver,
    io,
    enabled: () => config.warmSpare,
    image: (id) => images.get(id) ?? undefined,
    golden: (image, shape) => findGolden(newMachines.goldenRequest(image, shape)),
    memory: () => ({ usedMiB: live.names().reduce((sum, n) => sum + (registry.find(n)?.memoryMiB ?? 0), 0), limitMiB: config.memoryLimitMiB }),
    accel: async (image) => (await driver.accelerator(bootFiles(image))).name,
    restoreMs: timeouts.restoreMs,
    log,
    fillDelayMs: opts.spareDelayMs,
  });
  const ctx: EngineContext = {
    timeouts,
    layout,
    driver,
    io,
    images,
    locks,
    registry,
    live,
    activity,
    config,
    admission: new Admission(),
    spares,
    diskMarks: new Map(),
    compressor,
    get browse() {
      return browse;
    },
    clientKey: () => (clientKeyPair ??= io.clientKey(layout.keysDir)),
    log,
    removed: (name) => {
      live.forgetNetwork(name);
      events.emit('removed', name);
    },
    checkpointsChanged: (name) => events.emit('checkpoints', name, checkpoints.list(name)),
    imageProgress: (p) => events.emit('imageProgress', p),
  };
  const browse = new CheckpointBrowse(ctx, () => config.checkpointMounts);
  const launcher = new MachineLaunch(ctx);
  const newMachines = new NewMachines(ctx, launcher);
  const lifecycle = new Lifecycle(ctx, launcher);
  const sleepWake = new SleepWake(ctx, launcher, lifecycle);
  const checkpoints = new CheckpointVerbs(ctx, launcher);
  const settings = new SpriteSettings(ctx);
  const watch = new MachineWatch(ctx, lifecycle);
  const guests = new GuestAccess(ctx, sleepWake);
  const idle = new IdleSleep(ctx, settings, sleepWake);
  return { ctx, images, locks, compressor, registry, live, activity, config, spares, launcher, newMachines, lifecycle, sleepWake, checkpoints, browse, settings, watch, guests, idle };
}
