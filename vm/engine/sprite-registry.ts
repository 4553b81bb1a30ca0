/**
 * The sprites the engine knows: their manifests (read at start, then changed only through `save`,
 * which writes the file atomically before the change counts), their views, and the announcement
 * of every change (the API's events follow it).
 */
import type { DiskOps } from '../driver/driver.ts';
import { SpritelyError } from '../errors.ts';
import { assertSpriteName } from '../names.ts';
import { spritePaths, type Layout } from '../paths.ts';
import type { SpriteLocks } from '../store/sprite-lock.ts';
import { writeManifest, type Manifest } from '../store/sprite-manifest.ts';
import type { Activity } from './idle.ts';
import type { LiveMachines } from './live-machines.ts';
import { diskBytesOf, usageOf, type SpriteUsage } from './metering.ts';
import { spriteView, type SpriteView } from './sprite-view.ts';

export interface RegistryDeps {
  layout: Layout;
  disks: DiskOps;
  live: LiveMachines;
  locks: SpriteLocks;
  activity: Activity;
  now: () => number;
  /** Called with the new view after every change. */
  changed: (view: SpriteView) => void;
}

export function notFound(name: string): SpritelyError {
  return new SpritelyError('not_found', `No sprite named "${name}". \`spritely list\` shows your sprites.`);
}

export class SpriteRegistry {
  private manifests = new Map<string, Manifest>();

  constructor(private readonly deps: RegistryDeps) {}

  has(name: string): boolean {
    return this.manifests.has(name);
  }

  names(): string[] {
    return [...this.manifests.keys()].sort();
  }

  find(name: string): Manifest | undefined {
    return this.manifests.get(name);
  }

  /** The manifest of `name`; a clear not_found (after checking the name) when there is none. */
  must(name: string): Manifest {
    assertSpriteName(name);
    const m = this.manifests.get(name);
    if (!m) throw notFound(name);
    return m;
  }

  /** Takes a manifest read from disk (no write, no announcement). */
  load(m: Manifest): void {
    this.manifests.set(m.name, m);
  }

  /** Writes the manifest (atomically), then makes it the truth and announces the change. */
  async save(m: Manifest): Promise<void> {
    await writeManifest(spritePaths(this.deps.layout, m.name).manifest, m);
    this.manifests.set(m.name, m);
    this.announce(m.name);
  }

  /** Changes the manifest in memory only (metering of a machine that just died, saved with the crash). */
  replace(m: Manifest): void {
    this.manifests.set(m.name, m);
  }

  forget(name: string): void {
    this.manifests.delete(name);
  }

  announce(name: string): void {
    if (this.manifests.has(name)) this.deps.changed(this.view(name));
  }

  view(name: string): SpriteView {
    const m = this.must(name);
    const live = this.deps.live.get(name);
    return spriteView(m, live ? { runtime: live.runtime, pid: live.machine.pid } : null, this.deps.locks.operation(name), this.usage(name), this.deps.now());
  }

  list(): SpriteView[] {
    return this.names().map((n) => this.view(n));
  }

  usage(name: string): SpriteUsage {
    const m = this.must(name);
    const p = spritePaths(this.deps.layout, name);
    const live = this.deps.live.get(name);
    const current = live ? { startedAt: live.runtime.startedAt, cpuSeconds: live.machine.cpuSeconds() } : null;
    return usageOf(m, current, diskBytesOf(this.deps.disks, p.dir, p.disk, m.sleep?.file ?? null), this.deps.activity.lastActivity(name), this.deps.now());
  }
}
