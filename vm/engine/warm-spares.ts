/**
 * Warm spares: for each machine shape creates use (image + memory + cpus), one machine restored
 * from the golden state ahead of time and left paused — no identity, no network, no CPU — so a
 * create only hands it its identity instead of restoring a state (docs/architecture.md). A spare
 * lives in `<data dir>/spares/ID/` (its overlay disk, its record, the driver's logs) until a create
 * takes it: its files then move into the sprite's dir and it becomes that sprite's machine.
 *
 * Spares are a head start, never a cost anyone pays for: they are made only when their RAM fits
 * under the memory limit beside the awake sprites, they are given up first when a start, wake or
 * create needs the room (admission counts them), made again a little after the create that took
 * one (not while its first commands run), and a starting daemon keeps only those it finds exactly
 * as they were left (recovery-plan.ts `planSpareRecovery`). `spritely config set warm-spare off`
 * ends them.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Driver, Machine } from '../driver/driver.ts';
import type { GoldenInfo } from '../images/golden.ts';
import { bootFiles, type ImageRecord } from '../images/image-store.ts';
import type { Layout } from '../paths.ts';
import { readJson, writeJsonAtomic } from '../store/atomic-json.ts';
import type { EngineIo } from './engine-io.ts';
import { planSpareRecovery } from './recovery-plan.ts';

/** What a spare is made for: creates of exactly this shape can take it. */
export interface SpareShape {
  image: string;
  memoryMiB: number;
  cpus: number;
}

export interface Spare {
  id: string;
  dir: string;
  shape: SpareShape;
  machine: Machine;
  accel: string;
  sshPort: number;
  urlHostPort: number;
  egressSocket: string;
  netSocket: string;
  /** Virtual size of its disk (the golden disk's). */
  diskBytes: number;
}

/** spare.json: what a later daemon needs to take the spare back. */
interface SpareRecord {
  id: string;
  shape: SpareShape;
  accel: string;
  sshPort: number;
  urlHostPort: number;
  egressSocket: string;
  /** Absent in spares of daemons from before the host network stack. */
  netSocket?: string;
  diskBytes: number;
  machine: unknown;
  createdAt: string;
}

export interface SpareView extends SpareShape {
  state: 'preparing' | 'ready';
  pid: number | null;
}

export interface SpareDeps {
  layout: Layout;
  driver: Driver;
  io: EngineIo;
  enabled: () => boolean;
  /** The image record, when built. */
  image: (id: string) => ImageRecord | undefined;
  /** The golden state of an image and shape, when it has been made (spares never build one). */
  golden: (image: ImageRecord, shape: SpareShape) => Promise<GoldenInfo | null>;
  /** Guest RAM (MiB) of the awake sprites and the memory limit. */
  memory: () => { usedMiB: number; limitMiB: number };
  accel: (image: ImageRecord) => Promise<string>;
  restoreMs: number;
  log: (msg: string) => void;
  /** How long after a create the next spare is made (so it does not compete with the new sprite's first commands). */
  fillDelayMs?: number;
}

/** Spares kept at most (the shapes used most recently). */
export const MAX_SPARES = 2;
const FILL_DELAY_MS = 3_000;

export function shapeKey(s: SpareShape): string {
  return `${s.image}/${s.memoryMiB}/${s.cpus}`;
}

export class WarmSpares {
  private ready = new Map<string, Spare>();
  private preparing = new Map<string, { shape: SpareShape; id: string; cancelled: boolean; machine: Machine | null }>();
  /** Shapes to keep a spare for, least recently used first. */
  private wanted = new Map<string, SpareShape>();
  private filling: Promise<void> | null = null;
  private fillTimer: NodeJS.Timeout | null = null;
  private refusedFor = new Set<string>();
  private closed = false;

  constructor(private readonly deps: SpareDeps) {}

  get dir(): string {
    return path.join(this.deps.layout.home, 'spares');
  }

  /** The spare waiting for `shape`, taken out of the pool (the caller owns its machine now); null when there is none. */
  take(shape: SpareShape): Spare | null {
    const key = shapeKey(shape);
    const spare = this.ready.get(key) ?? null;
    if (spare) this.ready.delete(key);
    return spare;
  }

  /** A create used `shape`: keep a spare of it (made a little later, when there is room). */
  want(shape: SpareShape): void {
    const key = shapeKey(shape);
    this.wanted.delete(key);
    this.wanted.set(key, shape);
    while (this.wanted.size > MAX_SPARES) {
      const [oldest] = this.wanted.keys();
      this.wanted.delete(oldest);
      this.discard(oldest, 'its shape was not used lately');
    }
    this.scheduleFill(this.deps.fillDelayMs ?? FILL_DELAY_MS);
  }

  /** Memory the spares hold (for admission), as pseudo-sprites. */
  reserved(): { name: string; memoryMiB: number }[] {
    return [
      ...[...this.ready.values()].map((s) => ({ name: `spare ${s.id}`, memoryMiB: s.shape.memoryMiB })),
      ...[...this.preparing.values()].filter((p) => !p.cancelled).map((p) => ({ name: `spare ${p.id}`, memoryMiB: p.shape.memoryMiB })),
    ];
  }

  view(): SpareView[] {
    return [
      ...[...this.ready.values()].map((s) => ({ ...s.shape, state: 'ready' as const, pid: s.machine.pid })),
      ...[...this.preparing.values()].filter((p) => !p.cancelled).map((p) => ({ ...p.shape, state: 'preparing' as const, pid: p.machine?.pid ?? null })),
    ];
  }

  /** Ends every spare (memory is needed, spares were turned off, the daemon stops). Wanted shapes stay wanted. */
  discardAll(why: string): void {
    for (const key of [...this.ready.keys(), ...this.preparing.keys()]) this.discard(key, why);
  }

  /** Spares were turned on or off. */
  setEnabled(on: boolean): void {
    if (!on) this.discardAll('warm spares were turned off');
    else this.scheduleFill(0);
  }

  /** The daemon exits and leaves machines running: spares stay for the next daemon. */
  detachAll(): void {
    this.closed = true;
    if (this.fillTimer) clearTimeout(this.fillTimer);
    for (const s of this.ready.values()) s.machine.detach();
    this.ready.clear();
    for (const p of this.preparing.values()) p.cancelled = true;
  }

  /** The daemon stops and puts everything to sleep: spares simply end. */
  async shutdown(): Promise<void> {
    this.closed = true;
    if (this.fillTimer) clearTimeout(this.fillTimer);
    const ending = [...this.ready.values()].map((s) => this.end(s.id, s.machine, 'the daemon stops'));
    this.ready.clear();
    for (const p of this.preparing.values()) p.cancelled = true;
    await Promise.all(ending);
    await this.filling?.catch(() => {});
  }

  /** A starting daemon takes back the spares a previous one left running, exactly as they were; the rest is removed. */
  async recover(): Promise<void> {
    if (!fs.existsSync(this.dir)) return;
    for (const id of fs.readdirSync(this.dir)) {
      const dir = path.join(this.dir, id);
      let record: SpareRecord | null = null;
      try {
        record = readJson<SpareRecord>(path.join(dir, 'spare.json'));
      } catch {
        record = null;
      }
      const machine = record ? await this.deps.driver.attach(record.machine).catch(() => null) : null;
      const plan = planSpareRecovery({
        recordOk: !!record && record.id === id,
        machine: !record ? 'none' : !machine ? 'gone' : await machine.state(),
        enabled: this.deps.enabled(),
      });
      if (plan.keep && record && machine) {
        const spare: Spare = { ...record, netSocket: record.netSocket ?? path.join(this.deps.layout.runDir, `spare-${id}.net`), dir, machine };
        const key = shapeKey(record.shape);
        if (this.ready.has(key)) {
          await this.end(id, machine, 'another spare of its shape is already there');
          continue;
        }
        this.ready.set(key, spare);
        this.wanted.set(key, record.shape);
        this.watch(spare);
        this.deps.log(`warm spare ${id} (${key}): re-attached`);
        continue;
      }
      if (plan.kill) await machine?.kill().catch(() => {});
      fs.rmSync(dir, { recursive: true, force: true });
      this.deps.driver.release(`spare-${id}`);
      this.deps.log(`warm spare ${id}: given up (${plan.why})`);
    }
  }

  private scheduleFill(delayMs: number): void {
    if (this.closed || !this.deps.enabled()) return;
    if (this.fillTimer) clearTimeout(this.fillTimer);
    this.fillTimer = setTimeout(() => {
      this.fillTimer = null;
      this.filling ??= this.fill().finally(() => (this.filling = null));
    }, delayMs);
    this.fillTimer.unref?.();
  }

  /** Makes the missing spares, one at a time, most recently used shape first. */
  private async fill(): Promise<void> {
    for (const [key, shape] of [...this.wanted].reverse()) {
      if (this.closed || !this.deps.enabled()) return;
      if (this.ready.has(key) || this.preparing.has(key) || !this.wanted.has(key)) continue;
      const { usedMiB, limitMiB } = this.deps.memory();
      const held = this.reserved().reduce((sum, r) => sum + r.memoryMiB, 0);
      if (usedMiB + held + shape.memoryMiB > limitMiB) {
        if (!this.refusedFor.has(key)) this.deps.log(`warm spare (${key}): not made, its ${shape.memoryMiB} MiB do not fit under the memory limit beside the awake sprites`);
        this.refusedFor.add(key);
        continue;
      }
      this.refusedFor.delete(key);
      await this.prepare(key, shape).catch((err: Error) => this.deps.log(`warm spare (${key}): could not be made: ${err.message}`));
    }
  }

  private async prepare(key: string, shape: SpareShape): Promise<void> {
    const { driver, io, layout } = this.deps;
    const image = this.deps.image(shape.image);
    if (!image) return;
    const golden = await this.deps.golden(image, shape);
    if (!golden) return;
    const id = crypto.randomBytes(5).toString('hex');
    const slot = { shape, id, cancelled: false, machine: null as Machine | null };
    this.preparing.set(key, slot);
    const dir = path.join(this.dir, id);
    const t0 = Date.now();
    try {
      fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      fs.mkdirSync(dir, { mode: 0o700 });
      const disk = path.join(dir, 'disk.qcow2');
      await driver.disks.createOverlay({ file: disk, backing: golden.disk, virtualBytes: golden.diskVirtualBytes });
      fs.chmodSync(disk, 0o600);
      const sshPort = await io.freePort();
      const urlHostPort = await io.freePort();
      const egressSocket = path.join(layout.runDir, `spare-${id}.egress`);
      const netSocket = path.join(layout.runDir, `spare-${id}.net`);
      const accel = await this.deps.accel(image);
      const machine = await driver.launch({
        id: `spare-${id}`,
        dir,
        disk,
        shape: { memoryMiB: shape.memoryMiB, cpus: shape.cpus },
        boot: bootFiles(image),
        // the URL forward goes to the default URL port (a create's); the guest's sshd on 22
        forwards: [
          { hostPort: sshPort, guestPort: 22 },
          { hostPort: urlHostPort, guestPort: 8080 },
        ],
        egressSocket,
        netSocket,
        restoreFrom: golden.stateFile,
      });
      slot.machine = machine;
      await machine.waitLanded(this.deps.restoreMs);
      const spare: Spare = { id, dir, shape, machine, accel, sshPort, urlHostPort, egressSocket, netSocket, diskBytes: golden.diskVirtualBytes };
      const record: SpareRecord = { id, shape, accel, sshPort, urlHostPort, egressSocket, netSocket, diskBytes: golden.diskVirtualBytes, machine: machine.handle, createdAt: new Date(io.now()).toISOString() };
      await writeJsonAtomic(path.join(dir, 'spare.json'), record);
      if (slot.cancelled || this.closed) {
        await this.end(id, machine, 'it was given up while being made');
        return;
      }
      this.ready.set(key, spare);
      this.watch(spare);
      this.deps.log(`warm spare ${id} (${key}): ready in ${Date.now() - t0} ms`);
    } catch (err) {
      await slot.machine?.kill().catch(() => {});
      fs.rmSync(dir, { recursive: true, force: true });
      driver.release(`spare-${id}`);
      throw err;
    } finally {
      this.preparing.delete(key);
    }
  }

  /** A spare whose machine ends by itself leaves the pool. */
  private watch(spare: Spare): void {
    spare.machine.on('exit', () => {
      const key = shapeKey(spare.shape);
      if (this.ready.get(key) !== spare) return;
      this.ready.delete(key);
      fs.rmSync(spare.dir, { recursive: true, force: true });
      this.deps.driver.release(`spare-${spare.id}`);
      this.deps.log(`warm spare ${spare.id}: its machine ended`);
      this.scheduleFill(this.deps.fillDelayMs ?? FILL_DELAY_MS);
    });
  }

  private discard(key: string, why: string): void {
    const p = this.preparing.get(key);
    if (p) p.cancelled = true;
    const s = this.ready.get(key);
    if (!s) return;
    this.ready.delete(key);
    void this.end(s.id, s.machine, why);
  }

  private async end(id: string, machine: Machine, why: string): Promise<void> {
    await machine.kill().catch(() => {});
    fs.rmSync(path.join(this.dir, id), { recursive: true, force: true });
    this.deps.driver.release(`spare-${id}`);
    this.deps.log(`warm spare ${id}: ended (${why})`);
  }
}
