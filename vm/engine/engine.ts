/**
 * The engine: the one owner of sprites. It creates them by restoring a golden state, starts and
 * stops their QEMU processes, keeps one SSH link per running sprite, re-attaches to QEMUs that
 * outlived a daemon, and notices the ones that died. Every change to a sprite runs under that
 * sprite's lock and ends in an atomically written manifest; every change is announced as an event
 * (the API, the UI and the CLI are only clients of this class).
 */
import { execFile } from 'node:child_process';
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { SpritelyError, toSpritelyError } from '../errors.ts';
import { ensureGolden, type GoldenRequest } from '../images/golden.ts';
import { ImageStore, type ImageProgress, type ImageRecord } from '../images/image-store.ts';
import { assertSpriteName } from '../names.ts';
import { freeLoopbackPort } from '../net/free-port.ts';
import { EgressProxy } from '../net/egress-proxy.ts';
import { DEFAULT_NETWORK, formatNetworkPolicy, type NetworkPolicy } from '../net/egress-policy.ts';
import { type Layout, ensureLayout, spritePaths } from '../paths.ts';
import { chooseAccelerator, type AccelChoice } from '../qemu/accel.ts';
import { deviceSignature, GUEST_IP, type VmSpec } from '../qemu/argv.ts';
import { cpuSeconds, qemuVersion, tailOfLog } from '../qemu/qemu-process.ts';
import { readJson, writeJsonAtomic } from '../store/atomic-json.ts';
import { QemuVm } from '../qemu/qemu-vm.ts';
import type { GuestAgent } from '../qemu/guest-agent.ts';
import { type KeyPair, ensureClientKey, generateEd25519 } from '../ssh/keys.ts';
import { SshLink, STUCK_AFTER_MS } from '../ssh/ssh-link.ts';
import { SpriteLocks } from '../store/sprite-lock.ts';
import { type Manifest, readManifest, readRuntime, writeManifest, writeRuntime, type Runtime } from '../store/sprite-manifest.ts';
import { APPLY_IDENTITY, identityPayload, newMachineId } from './identity.ts';
import {
  addCheckpoint,
  CHECKPOINT_ID,
  cleanComment,
  find as findCheckpoint,
  markRamGone,
  moveHead,
  ramToPrune,
  reconcileWithDisk,
  removeCheckpoint,
  type Checkpoint,
} from '../checkpoints/checkpoint-tree.ts';
import { allocatedBytes, diskSnapshotNames, offlineSnapshot, ramFile, readTimeline, removeStrayRamFiles, writeTimeline } from '../checkpoints/checkpoint-store.ts';
import { fsyncFile } from '../qemu/qemu-vm.ts';
import { EnvChannel, formatReply, type EnvHandler } from '../checkpoints/env-channel.ts';
import { formatTimeline } from '../checkpoints/timeline-text.ts';

const execFileP = promisify(execFile);
const GiB = 1024 ** 3;
/**
 * Run in the guest (through its agent) when SSH into it keeps failing: says whether the per-connection
 * sshd socket listens and what the network looks like, and restarts the socket when it is down.
 */
const SSH_DIAGNOSIS = [
  'state=$(systemctl is-active spritely-sshd.socket)',
  'echo "spritely-sshd.socket: $state"',
  'ip -brief address 2>/dev/null | tr -s " " | tr "\\n" ";"',
  'echo',
  'if [ "$state" != active ]; then',
  '  journalctl -u spritely-sshd.socket -n 5 --no-pager -o cat 2>/dev/null',
  '  systemctl reset-failed spritely-sshd.socket 2>/dev/null',
  '  systemctl restart spritely-sshd.socket && echo "restarted spritely-sshd.socket"',
  'fi',
].join('\n');

export type SpriteState = 'running' | 'sleeping' | 'stopped' | 'crashed';

export interface SpriteView {
  name: string;
  state: SpriteState;
  /** What the engine is doing to it right now (creating, starting, stopping, …), or null. */
  operation: string | null;
  image: string;
  createdAt: string;
  startedAt: string | null;
  uptimeSeconds: number | null;
  memoryMiB: number;
  cpus: number;
  diskGiB: number;
  accel: string | null;
  pid: number | null;
  sshPort: number | null;
  lastError: string | null;
  urlPort: number;
  idleTimeoutSec: number | null;
  /** `internet`, `none` or `allow=HOST,…` (see vm/net/egress-policy.ts). */
  network: string;
  usage: SpriteUsage;
}

export interface SpriteUsage {
  awakeSeconds: number;
  cpuSeconds: number;
  diskBytes: number;
  lastActiveAt: string | null;
}

export interface EngineConfig {
  /** Seconds without use before an awake sprite sleeps; 0 = never. */
  idleTimeoutSec: number;
  /** Guest RAM (MiB) that awake sprites may add up to; 0 = the default (80% of host RAM). */
  memoryLimitMiB: number;
}

/** The default memory limit: leaves a fifth of the host's RAM to the host (and QEMU's own overhead). */
export function defaultMemoryLimitMiB(): number {
  return Math.floor((os.totalmem() / 2 ** 20) * 0.8);
}

export const DEFAULT_IDLE_TIMEOUT_SEC = Number(process.env.SPRITELY_IDLE_TIMEOUT ?? 300);

export interface CreateRequest {
  name: string;
  image?: string;
  memoryMiB?: number;
  cpus?: number;
  diskGiB?: number;
  network?: NetworkPolicy;
}

export interface Timings {
  totalMs: number;
  [phase: string]: number;
}

export const DEFAULTS = { memoryMiB: 512, cpus: 1, diskGiB: 100 } as const;

/** RAM states kept per sprite (newest first); older checkpoints keep their disk state only. */
export const DEFAULT_KEEP_RAM = Number(process.env.SPRITELY_KEEP_RAM ?? 8);

/** A checkpoint as clients see it: its bytes summed, and whether the machine descends from it. */
export type CheckpointView = Omit<Checkpoint, 'envRequest'> & { bytes: number; current: boolean };

export interface EngineEvents {
  sprite: [SpriteView];
  checkpoints: [string, CheckpointView[]];
  removed: [string];
  imageProgress: [ImageProgress];
  log: [string];
}

export class Engine extends EventEmitter<EngineEvents> {
  readonly locks = new SpriteLocks((name) => this.announce(name));
  readonly images: ImageStore;
  private manifests = new Map<string, Manifest>();
  private runtimes = new Map<string, Runtime>();
  private vms = new Map<string, QemuVm>();
  private links = new Map<string, SshLink>();
  private envs = new Map<string, EnvChannel>();
  private egress = new Map<string, EgressProxy>();
  private accelChoice: AccelChoice | null = null;
  private lastActivity = new Map<string, number>();
  private holds = new Map<string, number>();
  private idleTimer: NodeJS.Timeout | null = null;
  private config: EngineConfig = { idleTimeoutSec: DEFAULT_IDLE_TIMEOUT_SEC, memoryLimitMiB: 0 };
  /** Guest RAM of launches under way (admitted, not yet in `vms`). */
  private admitting = new Map<string, number>();
  /** Allocated bytes of each overlay at its last checkpoint (for per-checkpoint disk estimates). */
  private diskMarks = new Map<string, number>();
  private qemuVer: string | null = null;
  private clientKey!: KeyPair;
  readonly qemuBinary: string;

  constructor(readonly layout: Layout, opts: { qemuBinary?: string } = {}) {
    super();
    this.qemuBinary = opts.qemuBinary ?? process.env.SPRITELY_QEMU ?? (process.arch === 'arm64' ? 'qemu-system-aarch64' : 'qemu-system-x86_64');
    this.images = new ImageStore(layout.imagesDir, (m) => this.log(m));
  }

  log(msg: string): void {
    this.emit('log', msg);
  }

  /** Loads every sprite from disk and re-attaches to the QEMUs that are still running. */
  async init(): Promise<void> {
    ensureLayout(this.layout);
    const saved = readJson<Partial<EngineConfig>>(this.layout.configFile);
    if (saved && typeof saved.idleTimeoutSec === 'number') this.config = { ...this.config, idleTimeoutSec: saved.idleTimeoutSec };
    if (saved && typeof saved.memoryLimitMiB === 'number') this.config = { ...this.config, memoryLimitMiB: saved.memoryLimitMiB };
    this.clientKey = ensureClientKey(this.layout.keysDir);
    for (const name of fs.readdirSync(this.layout.spritesDir)) {
      if (name.startsWith('.')) continue;
      try {
        await this.reconcile(name);
      } catch (err) {
        this.log(`sprite ${name}: could not be loaded: ${(err as Error).message}`);
      }
    }
  }

  private async reconcile(name: string): Promise<void> {
    const p = spritePaths(this.layout, name);
    const m = readManifest(p.manifest);
    if (!m) return;
    const rt = readRuntime(p.runtime);
    if (m.status === 'creating') {
      // A create that never finished promised nothing to anyone: remove what it left.
      if (rt) (await QemuVm.attach(rt).catch(() => null))?.kill();
      fs.rmSync(p.dir, { recursive: true, force: true });
      this.log(`sprite ${name}: removed an unfinished create`);
      return;
    }
    this.manifests.set(name, m);
    if (m.status === 'sleeping' && rt) {
      // Killed between saving the RAM state and quitting: the state is complete, QEMU is redundant.
      (await QemuVm.attach(rt).catch(() => null))?.kill();
      fs.rmSync(p.runtime, { force: true });
    }
    if (m.status === 'sleeping' && (!m.sleep || !fs.existsSync(m.sleep.file))) {
      await this.saveManifest({ ...m, status: 'stopped', sleep: null, lastError: 'Its saved RAM state was missing; it boots from its disk.' });
      return;
    }
    const vm = m.status === 'running' && rt ? await QemuVm.attach(rt).catch(() => null) : null;
    if (m.status !== 'running') {
      await this.reconcileCheckpoints(name, null);
      return;
    }
    if (!vm || !rt) {
      await this.reconcileCheckpoints(name, null);
      await this.markCrashed(name, 'QEMU is no longer running (it was killed or the host restarted)');
      return;
    }
    const status = await vm.status().catch(() => 'unknown');
    if (status === 'shutdown') {
      await vm.quit();
      await this.reconcileCheckpoints(name, null);
      await this.saveManifest({ ...m, status: 'stopped' });
      return;
    }
    // A daemon that died mid-checkpoint leaves the guest paused (or just after its RAM was saved,
    // with the disk inactivated): resume it before anything touches the disk.
    if (status === 'paused' || status === 'postmigrate' || status === 'finish-migrate') {
      await vm.qmp.execute('migrate_cancel').catch(() => {});
      await vm.resume().catch((err) => this.log(`sprite ${name}: could not resume: ${err.message}`));
    }
    await this.reconcileCheckpoints(name, vm);
    this.runtimes.set(name, rt);
    this.adopt(name, vm, rt, m);
    this.log(`sprite ${name}: re-attached to QEMU pid ${vm.pid}`);
  }

  /**
   * The qcow2 is the truth: drop timeline entries whose disk snapshot is gone, delete snapshots
   * a checkpoint left half-made (taken, never recorded), and RAM files nobody owns.
   */
  private async reconcileCheckpoints(name: string, vm: QemuVm | null): Promise<void> {
    const p = spritePaths(this.layout, name);
    if (!fs.existsSync(p.disk)) return;
    const t = readTimeline(p.dir);
    const names = await diskSnapshotNames(p.disk);
    const r = reconcileWithDisk(t, names);
    for (const orphan of r.orphans) {
      if (vm) await vm.qmp.execute('blockdev-snapshot-delete-internal-sync', { device: 'disk0', name: orphan }).catch(() => {});
      else await offlineSnapshot('delete', orphan, p.disk).catch(() => {});
      this.log(`sprite ${name}: removed an unfinished checkpoint ${orphan}`);
    }
    for (const id of r.dropped) this.log(`sprite ${name}: checkpoint ${id} has no disk snapshot any more; dropped it`);
    const fixed = { ...r.timeline, checkpoints: r.timeline.checkpoints.map((c) => (c.memory && !fs.existsSync(ramFile(p.dir, c.id)) ? { ...c, memory: false, ramBytes: 0 } : c)) };
    if (JSON.stringify(fixed) !== JSON.stringify(t)) await writeTimeline(p.dir, fixed);
    removeStrayRamFiles(p.dir, fixed);
  }

  // ---------------------------------------------------------------- views

  list(): SpriteView[] {
    return [...this.manifests.keys()].sort().map((n) => this.view(n));
  }

  get(name: string): SpriteView {
    assertSpriteName(name);
    if (!this.manifests.has(name)) throw notFound(name);
    return this.view(name);
  }

  private view(name: string): SpriteView {
    const m = this.manifests.get(name)!;
    const rt = this.runtimes.get(name);
    const running = m.status === 'running' && this.vms.has(name);
    const state: SpriteState = m.status === 'running' ? (running ? 'running' : 'crashed') : m.status === 'creating' ? 'stopped' : m.status;
    const usage = this.usageOf(name);
    const startedAt = running && rt ? rt.startedAt : null;
    return {
      name,
      state,
      operation: this.locks.operation(name),
      image: m.image,
      createdAt: m.createdAt,
      startedAt,
      uptimeSeconds: startedAt ? Math.round((Date.now() - Date.parse(startedAt)) / 1000) : null,
      memoryMiB: m.memoryMiB,
      cpus: m.cpus,
      diskGiB: m.diskGiB,
      accel: running && rt ? rt.accel : null,
      pid: running && rt ? rt.pid : null,
      sshPort: running && rt ? rt.sshPort : null,
      lastError: m.lastError,
      urlPort: m.urlPort,
      idleTimeoutSec: m.idleTimeoutSec,
      network: formatNetworkPolicy(m.network),
      usage,
    };
  }

  // ---------------------------------------------------------------- metering

  /** Awake and CPU seconds (finished periods + the current one), disk bytes, last activity. */
  usageOf(name: string): SpriteUsage {
    const m = this.manifests.get(name)!;
    const rt = this.runtimes.get(name);
    const p = spritePaths(this.layout, name);
    let awake = m.usage.awakeSeconds;
    let cpu = m.usage.cpuSeconds;
    if (rt && this.vms.has(name)) {
      awake += (Date.now() - Date.parse(rt.startedAt)) / 1000;
      cpu += cpuSeconds(rt.pid);
    }
    let checkpointBytes = 0;
    try {
      for (const f of fs.readdirSync(path.join(p.dir, 'checkpoints'))) checkpointBytes += allocatedBytes(path.join(p.dir, 'checkpoints', f));
    } catch {
      /* none */
    }
    const last = this.lastActivity.get(name);
    return {
      awakeSeconds: Math.round(awake),
      cpuSeconds: Math.round(cpu * 10) / 10,
      diskBytes: allocatedBytes(p.disk) + checkpointBytes + (m.sleep ? allocatedBytes(m.sleep.file) : 0),
      lastActiveAt: last ? new Date(last).toISOString() : m.usage.lastActiveAt,
    };
  }

  /** Adds the awake period that is ending to the manifest's totals (before QEMU goes away). */
  private closeAwakePeriod(m: Manifest): Manifest {
    const rt = this.runtimes.get(m.name);
    if (!rt) return m;
    const last = this.lastActivity.get(m.name);
    return {
      ...m,
      usage: {
        awakeSeconds: m.usage.awakeSeconds + (Date.now() - Date.parse(rt.startedAt)) / 1000,
        cpuSeconds: m.usage.cpuSeconds + cpuSeconds(rt.pid),
        lastActiveAt: last ? new Date(last).toISOString() : m.usage.lastActiveAt,
      },
    };
  }

  // ---------------------------------------------------------------- activity and idle

  /** Something used the sprite now (API call, exec, terminal input, proxied request). */
  touch(name: string): void {
    this.lastActivity.set(name, Date.now());
  }

  /** Keeps the sprite awake until the returned function is called (an open terminal, a running exec). */
  hold(name: string): () => void {
    this.holds.set(name, (this.holds.get(name) ?? 0) + 1);
    this.touch(name);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.holds.set(name, Math.max(0, (this.holds.get(name) ?? 1) - 1));
      this.touch(name);
    };
  }

  idleTimeoutOf(name: string): number {
    const m = this.manifests.get(name);
    return m?.idleTimeoutSec ?? this.config.idleTimeoutSec;
  }

  /** Sprites that are awake, unheld and untouched for longer than their idle timeout. */
  idleSprites(now = Date.now()): string[] {
    return [...this.vms.keys()].filter((name) => {
      const timeout = this.idleTimeoutOf(name);
      if (!timeout || (this.holds.get(name) ?? 0) > 0 || this.locks.operation(name)) return false;
      const since = this.lastActivity.get(name) ?? Date.parse(this.runtimes.get(name)?.startedAt ?? new Date(now).toISOString());
      return now - since > timeout * 1000;
    });
  }

  /** Checks every few seconds and puts idle sprites to sleep. */
  startIdleLoop(everyMs = 2000): void {
    this.idleTimer = setInterval(() => {
      for (const name of this.idleSprites()) {
        this.log(`sprite ${name}: idle for ${this.idleTimeoutOf(name)} s; going to sleep`);
        this.sleep(name).catch((err) => this.log(`sprite ${name}: idle sleep failed: ${err.message}`));
      }
    }, everyMs);
    this.idleTimer.unref();
  }

  async setIdleTimeout(seconds: number, sprite?: string | null): Promise<void> {
    if (sprite) {
      this.get(sprite);
      await this.locks.run(sprite, 'configuring', async () => this.saveManifest({ ...this.mustManifest(sprite), idleTimeoutSec: seconds }));
    } else {
      this.config = { ...this.config, idleTimeoutSec: seconds };
      await this.saveConfig();
    }
  }

  private async saveConfig(): Promise<void> {
    await writeJsonAtomic(this.layout.configFile, this.config);
  }

  async setMemoryLimit(mib: number): Promise<void> {
    this.config = { ...this.config, memoryLimitMiB: mib };
    await this.saveConfig();
  }

  configView(): { idleTimeoutSec: number; memoryLimitMiB: number; memoryLimitDefault: boolean } {
    return { idleTimeoutSec: this.config.idleTimeoutSec, memoryLimitMiB: this.memoryLimit(), memoryLimitDefault: !this.config.memoryLimitMiB };
  }

  memoryLimit(): number {
    return this.config.memoryLimitMiB || defaultMemoryLimitMiB();
  }

  /**
   * Refuses to wake a machine whose guest RAM would take the awake sprites past the memory limit,
   * naming the awake sprites whose sleep would make room. Admitted RAM is reserved until the
   * launch ends, so two launches at once cannot both squeeze in. Returns the release function.
   */
  private admit(name: string, memoryMiB: number): () => void {
    const limit = this.memoryLimit();
    const awake = [...this.vms.keys()].filter((n) => n !== name).map((n) => ({ n, mib: this.manifests.get(n)?.memoryMiB ?? 0 }));
    const pending = [...this.admitting].filter(([n]) => n !== name).reduce((a, [, mib]) => a + mib, 0);
    const used = awake.reduce((a, x) => a + x.mib, 0) + pending;
    if (used + memoryMiB > limit) {
      const need = used + memoryMiB - limit;
      const biggest = awake.sort((a, b) => b.mib - a.mib);
      const toSleep: string[] = [];
      let freed = 0;
      for (const x of biggest) {
        if (freed >= need) break;
        toSleep.push(x.n);
        freed += x.mib;
      }
      const hint =
        memoryMiB > limit ? `it alone needs more than the limit: give it less memory, or raise the limit (spritely config set memory-limit SIZE)`
        : freed >= need ? `sleep ${toSleep.join(', ')} first (spritely sleep NAME), or raise the limit (spritely config set memory-limit SIZE)`
        : `other launches are under way; try again in a moment, or raise the limit (spritely config set memory-limit SIZE)`;
      throw new SpritelyError(
        'resource_exhausted',
        `Not enough memory for "${name}": it needs ${memoryMiB} MiB and awake sprites already use ${used} MiB of the ${limit} MiB limit; ${hint}.`,
        { neededMiB: memoryMiB, usedMiB: used, limitMiB: limit, sleepFirst: toSleep },
      );
    }
    this.admitting.set(name, memoryMiB);
    return () => this.admitting.delete(name);
  }

  /** What the sprite may reach; applies to the next connection the guest opens (no restart). */
  async setNetwork(name: string, policy: NetworkPolicy): Promise<SpriteView> {
    this.get(name);
    await this.locks.run(name, 'configuring', async () => this.saveManifest({ ...this.mustManifest(name), network: policy }));
    this.log(`sprite ${name}: network ${formatNetworkPolicy(policy)}`);
    return this.view(name);
  }

  /** Which guest port the local URL forwards to; applied to a running sprite right away. */
  async setUrlPort(name: string, port: number): Promise<void> {
    this.get(name);
    await this.locks.run(name, 'configuring', async () => {
      const m = this.mustManifest(name);
      if (m.urlPort === port) return;
      const vm = this.vms.get(name);
      const rt = this.runtimes.get(name);
      if (vm && rt) {
        await vm.qmp.hmp(`hostfwd_remove n0 tcp:127.0.0.1:${rt.urlHostPort}`);
        const out = await vm.qmp.hmp(`hostfwd_add n0 tcp:127.0.0.1:${rt.urlHostPort}-${GUEST_IP}:${port}`);
        if (out.trim()) throw new SpritelyError('internal', `QEMU refused the new forward: ${out.trim()}`);
      }
      await this.saveManifest({ ...m, urlPort: port });
    });
  }

  /** Where the local URL proxy should connect for `name` (waking it first). */
  async urlTarget(name: string): Promise<{ host: string; port: number }> {
    await this.ensureAwake(name);
    const rt = this.runtimes.get(name);
    if (!rt) throw new SpritelyError('unavailable', `Sprite "${name}" is not running.`);
    return { host: '127.0.0.1', port: rt.urlHostPort };
  }

  get settings(): EngineConfig {
    return this.config;
  }

  // ---------------------------------------------------------------- sleep and wake

  /** RAM + devices to a file, QEMU gone: 0 CPU, 0 RAM. `wake` resumes the exact moment. */
  async sleep(name: string): Promise<{ sprite: SpriteView; timings: Timings }> {
    this.get(name);
    return this.locks.run(name, 'sleeping', async (): Promise<{ sprite: SpriteView; timings: Timings }> => {
      const t0 = Date.now();
      const vm = this.vms.get(name);
      const m = this.mustManifest(name);
      if (!vm) {
        if (m.status === 'sleeping') return { sprite: this.view(name), timings: { totalMs: 0 } };
        throw new SpritelyError('failed_precondition', `Sprite "${name}" is ${this.view(name).state}; only a running sprite can sleep.`);
      }
      const p = spritePaths(this.layout, name);
      const file = path.join(p.dir, 'sleep.state');
      try {
        await vm.saveState(file);
      } catch (err) {
        await vm.resume().catch(() => {});
        throw new SpritelyError('internal', `Could not put "${name}" to sleep: ${(err as Error).message}. It keeps running.`);
      }
      const savedMs = Date.now() - t0;
      // Durable before QEMU goes: a daemon killed here finds a complete state and a sleeping sprite.
      const image = this.mustImage(m);
      const signature = await this.signatureFor(name, m, image);
      const asleep = { ...this.closeAwakePeriod(m), status: 'sleeping' as const, sleep: { file, signature, savedAt: new Date().toISOString() } };
      await this.saveManifest(asleep);
      await vm.quit();
      this.dropRuntime(name);
      fs.rmSync(p.runtime, { force: true });
      this.announce(name);
      return { sprite: this.view(name), timings: { saveMs: savedMs, totalMs: Date.now() - t0 } };
    });
  }

  /** Restores a sleeping sprite's RAM state; if it no longer fits this QEMU, boots from disk and says so. */
  async wake(name: string): Promise<{ sprite: SpriteView; timings: Timings }> {
    this.get(name);
    return this.locks.run(name, 'waking', () => this.wakeLocked(name));
  }

  private async wakeLocked(name: string): Promise<{ sprite: SpriteView; timings: Timings }> {
    const t0 = Date.now();
    const m = this.mustManifest(name);
    if (this.vms.has(name)) return { sprite: this.view(name), timings: { totalMs: 0 } };
    if (m.status !== 'sleeping' || !m.sleep) throw new SpritelyError('failed_precondition', `Sprite "${name}" is not sleeping (it is ${this.view(name).state}).`);
    const image = this.mustImage(m);
    this.admit(name, m.memoryMiB)(); // refuse before anything of the sleep state is touched
    const signature = await this.signatureFor(name, m, image);
    const fits = signature === m.sleep.signature && fs.existsSync(m.sleep.file);
    let note: string | null = null;
    if (fits) {
      const vm = await this.launch(name, m, image, m.sleep.file);
      try {
        await vm.waitRunning(60_000);
        const runningMs = Date.now() - t0;
        const agent = await vm.agent(30_000);
        await setGuestClock(agent);
        fs.rmSync(m.sleep.file, { force: true });
        await this.saveManifest({ ...m, status: 'running', sleep: null, lastError: null });
        this.touch(name);
        this.links.get(name)?.ready(60_000).catch(() => {});
        return { sprite: this.view(name), timings: { runningMs, totalMs: Date.now() - t0 } };
      } catch (err) {
        vm.kill();
        this.dropRuntime(name);
        note = `its saved RAM state could not be restored (${(err as Error).message}); booted it from its disk instead`;
      }
    } else {
      note = 'its saved RAM state does not fit this QEMU or device set any more; booted it from its disk instead (processes that were running are gone, files are kept)';
    }
    this.log(`sprite ${name}: ${note}`);
    await this.saveManifest({ ...m, status: 'stopped', sleep: null });
    fs.rmSync(m.sleep.file, { force: true });
    const started = await this.startLocked(name);
    await this.saveManifest({ ...this.mustManifest(name), lastError: `Woke without its RAM: ${note}.` });
    return { sprite: this.view(name), timings: { ...started.timings, totalMs: Date.now() - t0 } };
  }

  /** Wakes a sleeping sprite (used by everything that needs the machine: exec, terminals, URLs). */
  async ensureAwake(name: string): Promise<void> {
    const v = this.get(name);
    this.touch(name);
    if (v.state === 'sleeping') await this.wake(name);
  }

  /** The SSH link of a sprite, waking it first if it sleeps. */
  async sshAwake(name: string): Promise<SshLink> {
    await this.ensureAwake(name);
    return this.ssh(name);
  }

  private async signatureFor(name: string, m: Manifest, image: ImageRecord): Promise<string> {
    const accel = await this.accelerator(image);
    const p = spritePaths(this.layout, name);
    const spec: VmSpec = {
      name, qemuBinary: this.qemuBinary, accel: accel.accel, memoryMiB: m.memoryMiB, cpus: m.cpus, kernel: image.kernel, initrd: image.initrd,
      cmdline: image.kernelCmdline, disk: p.disk, sshPort: 1, forwards: [], qmpSocket: '', agentSocket: '', envSocket: '', egressSocket: '', serialSocket: '', serialLog: '', pidFile: '',
    };
    return deviceSignature(spec, await this.qemuVersion());
  }

  /** Daemon shutdown: every awake sprite goes to sleep so nothing running is lost. */
  async sleepAll(): Promise<void> {
    await Promise.all([...this.vms.keys()].map((name) => this.sleep(name).catch((err) => this.log(`sprite ${name}: could not sleep: ${err.message}`))));
  }

  private announce(name: string): void {
    if (this.manifests.has(name)) this.emit('sprite', this.view(name));
  }

  // ---------------------------------------------------------------- machine facts

  async qemuVersion(): Promise<string> {
    if (!this.qemuVer) {
      try {
        this.qemuVer = await qemuVersion(this.qemuBinary);
      } catch (err) {
        throw new SpritelyError('failed_precondition', `QEMU is not installed or does not run (${this.qemuBinary}): ${(err as Error).message}. On Debian/Ubuntu: sudo apt-get install qemu-system-x86 qemu-utils`);
      }
    }
    return this.qemuVer;
  }

  async accelerator(image: ImageRecord): Promise<AccelChoice> {
    if (!this.accelChoice) {
      this.accelChoice = await chooseAccelerator({
        qemuBinary: this.qemuBinary,
        qemuVersion: await this.qemuVersion(),
        kernel: image.kernel,
        cacheFile: this.layout.accelCacheFile,
        log: (m) => this.log(m),
      });
    }
    return this.accelChoice;
  }

  get knownAccelerator(): AccelChoice | null {
    return this.accelChoice;
  }

  async ensureImage(id?: string, opts: { force?: boolean } = {}): Promise<ImageRecord> {
    return this.images.ensure(id, (p) => this.emit('imageProgress', p), opts);
  }

  private async goldenRequest(image: ImageRecord, m: Pick<Manifest, 'memoryMiB' | 'cpus'>): Promise<GoldenRequest> {
    const accel = await this.accelerator(image);
    return {
      imageId: image.id,
      imageDir: image.dir,
      baseDisk: image.baseDisk,
      kernel: image.kernel,
      initrd: image.initrd,
      cmdline: image.kernelCmdline,
      diskVirtualBytes: DEFAULTS.diskGiB * GiB,
      machine: { qemuBinary: this.qemuBinary, accel: accel.accel, memoryMiB: m.memoryMiB, cpus: m.cpus },
      qemuVersion: await this.qemuVersion(),
      runDir: this.layout.runDir,
      log: (msg) => this.log(msg),
      onProgress: (p) => this.emit('imageProgress', { image: image.id, ...p }),
    };
  }

  // ---------------------------------------------------------------- lifecycle

  async create(req: CreateRequest): Promise<{ sprite: SpriteView; timings: Timings }> {
    const name = req.name;
    assertSpriteName(name);
    const memoryMiB = intInRange('memoryMiB', req.memoryMiB ?? DEFAULTS.memoryMiB, 128, 65536);
    const cpus = intInRange('cpus', req.cpus ?? DEFAULTS.cpus, 1, 64);
    // Sprites share the golden disk, whose filesystem already spans the default size (sparse).
    const diskGiB = intInRange('diskGiB', req.diskGiB ?? DEFAULTS.diskGiB, DEFAULTS.diskGiB, 16384);
    const p = spritePaths(this.layout, name);
    if (this.manifests.has(name) || fs.existsSync(p.dir)) throw new SpritelyError('already_exists', `A sprite named "${name}" already exists.`);
    const cores = os.availableParallelism();
    if (cpus > cores) throw new SpritelyError('invalid_argument', `This computer has ${cores} CPU cores; a sprite can have at most ${cores} (asked for ${cpus}).`);
    this.admit(name, memoryMiB)(); // refuse now, before anything is made; launch checks again
    return this.locks.run(name, 'creating', async () => {
      const t0 = Date.now();
      const timings: Record<string, number> = {};
      const lap = (key: string, since: number) => (timings[key] = Date.now() - since);
      try {
        fs.mkdirSync(p.dir, { mode: 0o700 });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new SpritelyError('already_exists', `A sprite named "${name}" already exists.`);
        throw toSpritelyError(err);
      }
      const hostKey = generateEd25519(`root@${name}`);
      let m: Manifest = {
        version: 1,
        name,
        image: req.image ?? this.images.defaultImageId(),
        createdAt: new Date().toISOString(),
        memoryMiB,
        cpus,
        diskGiB,
        hostKeyPub: hostKey.publicKey,
        status: 'creating',
        lastError: null,
        fsGrown: false,
        sleep: null,
        idleTimeoutSec: null,
        urlPort: 8080,
        network: req.network ?? DEFAULT_NETWORK,
        usage: { awakeSeconds: 0, cpuSeconds: 0, lastActiveAt: null },
      };
      let vm: QemuVm | null = null;
      try {
        await this.saveManifest(m);
        let t = Date.now();
        const image = await this.ensureImage(req.image);
        lap('imageMs', t);
        t = Date.now();
        const golden = await ensureGolden(await this.goldenRequest(image, m));
        lap('goldenMs', t);
        t = Date.now();
        await execFileP('qemu-img', ['create', '-q', '-f', 'qcow2', '-o', 'lazy_refcounts=on', '-b', golden.disk, '-F', 'qcow2', p.disk, String(golden.diskVirtualBytes)]);
        fs.chmodSync(p.disk, 0o600);
        lap('overlayMs', t);
        t = Date.now();
        vm = await this.launch(name, m, image, golden.stateFile);
        lap('launchMs', t);
        t = Date.now();
        await vm.waitRunning(60_000);
        lap('restoreMs', t);
        timings.runningMs = Date.now() - t0;
        t = Date.now();
        const agent = await vm.agent(30_000);
        lap('agentMs', t);
        t = Date.now();
        // Start the SSH link now: it pins the new host key, so attempts before apply-identity has
        // installed it are refused and retried, and the handshake overlaps the rest of the fix-ups.
        this.links.get(name)?.ready(90_000).catch(() => {});
        await this.applyIdentity(agent, name, hostKey);
        lap('identityMs', t);
        if (diskGiB * GiB > golden.diskVirtualBytes) {
          t = Date.now();
          await this.growDisk(vm, agent, diskGiB * GiB);
          lap('resizeMs', t);
        }
        m = { ...m, status: 'running', fsGrown: true };
        await this.saveManifest(m);
        this.links.get(name)?.ready(60_000).catch(() => {});
      } catch (err) {
        throw this.discardUnfinished(name, vm, err, `Could not create "${name}"`);
      }
      timings.totalMs = Date.now() - t0;
      this.log(`sprite ${name}: created in ${timings.totalMs} ms (${JSON.stringify(timings)})`);
      return { sprite: this.view(name), timings: timings as Timings };
    });
  }

  /** Starts QEMU for a sprite (booting, or restoring `incoming`) and takes ownership of it. */
  private async launch(name: string, m: Manifest, image: ImageRecord, incoming?: string): Promise<QemuVm> {
    const release = this.admit(name, m.memoryMiB);
    try {
      return await this.launchAdmitted(name, m, image, incoming);
    } finally {
      release();
    }
  }

  private async launchAdmitted(name: string, m: Manifest, image: ImageRecord, incoming?: string): Promise<QemuVm> {
    const p = spritePaths(this.layout, name);
    const accel = await this.accelerator(image);
    const spec: VmSpec = {
      name,
      qemuBinary: this.qemuBinary,
      accel: accel.accel,
      memoryMiB: m.memoryMiB,
      cpus: m.cpus,
      kernel: image.kernel,
      initrd: image.initrd,
      cmdline: image.kernelCmdline,
      disk: p.disk,
      sshPort: await freeLoopbackPort(),
      forwards: [{ hostPort: await freeLoopbackPort(), guestPort: m.urlPort }],
      qmpSocket: p.qmpSocket,
      agentSocket: p.agentSocket,
      envSocket: p.envSocket,
      egressSocket: p.egressSocket,
      serialSocket: p.serialSocket,
      serialLog: p.serialLog,
      pidFile: p.pidFile,
      incomingStateFile: incoming,
    };
    const vm = await QemuVm.launch(spec, p.qemuLog);
    const rt: Runtime = {
      pid: vm.pid,
      sshPort: spec.sshPort,
      startedAt: new Date().toISOString(),
      accel: accel.accel,
      qmpSocket: p.qmpSocket,
      agentSocket: p.agentSocket,
      serialSocket: p.serialSocket,
      envSocket: p.envSocket,
      urlHostPort: spec.forwards[0].hostPort,
    };
    await writeRuntime(p.runtime, rt);
    this.runtimes.set(name, rt);
    this.adopt(name, vm, rt, m);
    return vm;
  }

  /** Watches a QEMU we own: a guest poweroff becomes `stopped`, an unexpected exit `crashed`. */
  private adopt(name: string, vm: QemuVm, rt: Runtime, m: Manifest): void {
    this.vms.set(name, vm);
    this.links.get(name)?.close();
    this.links.set(name, new SshLink({ name, port: rt.sshPort, privateKey: this.clientKey.privateKey, hostKeyPub: m.hostKeyPub, log: (x) => this.log(x), onStuck: () => this.diagnoseSsh(name, vm) }));
    this.envs.get(name)?.close();
    this.envs.set(name, new EnvChannel(rt.envSocket, this.envHandler(name), (x) => this.log(`sprite ${name}: ${x}`)));
    this.openEgress(name);
    vm.qmp.on('event', (e) => {
      if (e.event === 'SHUTDOWN' && (e.data as any)?.guest && this.vms.get(name) === vm && !this.locks.operation(name)) {
        this.log(`sprite ${name}: the guest powered off`);
        this.locks.run(name, 'stopping', () => this.finishStop(name, vm)).catch((err) => this.log(`sprite ${name}: ${err.message}`));
      }
    });
    vm.on('exit', (reason) => {
      if (this.vms.get(name) !== vm) return;
      const current = this.manifests.get(name);
      if (current && reason === 'crash') this.manifests.set(name, this.closeAwakePeriod(current));
      this.dropRuntime(name);
      if (reason === 'crash') {
        this.markCrashed(name, `QEMU exited unexpectedly: ${tailOfLog(spritePaths(this.layout, name).qemuLog, 3)}`).catch(() => {});
      } else this.announce(name);
    });
  }

  /** The sprite's egress proxy (QEMU's guestfwd connects to its socket per guest connection). */
  private openEgress(name: string): void {
    this.egress.get(name)?.close();
    const proxy = new EgressProxy({
      sprite: name,
      socketPath: spritePaths(this.layout, name).egressSocket,
      policy: () => this.manifests.get(name)?.network ?? { mode: 'none', allow: [] },
      onActivity: () => this.touch(name),
      log: (x) => this.log(`sprite ${name}: ${x}`),
    });
    this.egress.set(name, proxy);
    proxy.listen().catch((err) => this.log(`sprite ${name}: egress proxy could not listen: ${err.message}`));
  }

  private dropRuntime(name: string): void {
    this.vms.delete(name);
    this.runtimes.delete(name);
    this.links.get(name)?.close();
    this.links.delete(name);
    this.envs.get(name)?.close();
    this.envs.delete(name);
    this.egress.get(name)?.close();
    this.egress.delete(name);
  }

  /** What a sprite may ask of the daemon from inside (spritely-env): only about itself. */
  private envHandler(name: string): EnvHandler {
    return async (req) => {
      if (req.op === 'checkpoint.create') {
        const c = await this.locks.run(name, 'checkpointing', () => this.checkpointLocked(name, cleanComment(req.comment), false, req.id));
        const view = this.listCheckpoints(name).find((x) => x.id === c.id)!;
        return { text: req.json ? JSON.stringify(view) : c.id };
      }
      if (req.op === 'checkpoint.list') {
        const cps = this.listCheckpoints(name);
        return { text: req.json ? JSON.stringify(cps) : formatTimeline(cps) };
      }
      this.checkpointOrThrow(name, req.checkpoint);
      return {
        text: `restoring ${req.checkpoint}…`,
        after: () => void this.restoreCheckpoint(name, req.checkpoint, { backup: req.backup }).catch((err) => this.log(`sprite ${name}: restore from inside failed: ${err.message}`)),
      };
    };
  }

  private async markCrashed(name: string, why: string): Promise<void> {
    const m = this.manifests.get(name);
    if (!m) return;
    this.log(`sprite ${name}: crashed: ${why}`);
    await this.saveManifest({ ...m, status: 'crashed', lastError: why });
  }

  async start(name: string): Promise<{ sprite: SpriteView; timings: Timings }> {
    this.get(name);
    return this.locks.run(name, 'starting', async () => {
      const m = this.mustManifest(name);
      if (m.status === 'sleeping') return this.wakeLocked(name);
      return this.startLocked(name);
    });
  }

  /** Boots a sprite from its disk (a cold boot). */
  private async startLocked(name: string): Promise<{ sprite: SpriteView; timings: Timings }> {
    {
      const t0 = Date.now();
      let m = this.mustManifest(name);
      if (m.status === 'running' && this.vms.has(name)) return { sprite: this.view(name), timings: { totalMs: 0 } };
      const image = this.mustImage(m);
      const p = spritePaths(this.layout, name);
      if (!fs.existsSync(p.disk)) throw new SpritelyError('failed_precondition', `The disk of sprite "${name}" is missing (${p.disk}).`);
      const vm = await this.launch(name, m, image);
      try {
        const agent = await vm.agent((await this.accelerator(image)).accel === 'tcg' ? 240_000 : 90_000);
        if (!m.fsGrown) {
          await agent.exec('/sbin/resize2fs', ['/dev/vda'], { timeoutMs: 120_000 });
        }
      } catch (err) {
        vm.kill();
        this.dropRuntime(name);
        throw new SpritelyError('internal', `Sprite "${name}" did not come up: ${(err as Error).message}. Its serial log is ${p.serialLog}.`);
      }
      m = { ...m, status: 'running', lastError: null, fsGrown: true };
      await this.saveManifest(m);
      this.touch(name);
      this.links.get(name)?.ready(60_000).catch(() => {});
      return { sprite: this.view(name), timings: { bootMs: Date.now() - t0, totalMs: Date.now() - t0 } };
    }
  }

  async stop(name: string, opts: { force?: boolean; timeoutMs?: number } = {}): Promise<SpriteView> {
    this.get(name);
    return this.locks.run(name, 'stopping', async () => {
      const vm = this.vms.get(name);
      if (!vm) {
        const m = this.mustManifest(name);
        if (m.sleep) fs.rmSync(m.sleep.file, { force: true });
        if (m.status !== 'stopped') await this.saveManifest({ ...m, status: 'stopped', sleep: null });
        return this.view(name);
      }
      if (!opts.force) {
        const off = vm.qmp.waitForEvent((e) => e.event === 'SHUTDOWN', opts.timeoutMs ?? 90_000);
        off.catch(() => {});
        try {
          const agent = await vm.agent(5000);
          agent.fire('guest-shutdown', { mode: 'powerdown' });
        } catch {
          await vm.qmp.execute('system_powerdown').catch(() => {});
        }
        try {
          await off;
        } catch {
          this.log(`sprite ${name}: the guest did not power off in time; syncing and stopping it`);
          await this.syncGuest(vm);
        }
      } else {
        await this.syncGuest(vm);
      }
      await this.finishStop(name, vm);
      return this.view(name);
    });
  }

  /** Grows the virtual disk to `bytes` and the guest's filesystem with it (online). */
  private async growDisk(vm: QemuVm, agent: GuestAgent, bytes: number): Promise<void> {
    await vm.resizeDisk('disk0', bytes);
    const r = await agent.exec(APPLY_IDENTITY, [], { stdin: identityPayload({ resize: `/dev/vda ${bytes}` }), timeoutMs: 120_000 });
    if (r.exitCode !== 0) throw new Error(`growing the filesystem failed: ${r.stderr.toString().trim()}`);
  }

  private async syncGuest(vm: QemuVm): Promise<void> {
    try {
      const agent = await vm.agent(3000);
      await agent.exec('/bin/sync', [], { timeoutMs: 10_000 });
    } catch {
      /* best effort: QEMU still flushes its own caches on quit */
    }
  }

  private async finishStop(name: string, vm: QemuVm): Promise<void> {
    const m = this.manifests.get(name);
    const closed = m ? this.closeAwakePeriod(m) : null;
    await vm.quit();
    this.dropRuntime(name);
    fs.rmSync(spritePaths(this.layout, name).runtime, { force: true });
    if (closed) await this.saveManifest({ ...closed, status: 'stopped', lastError: null });
  }

  async destroy(name: string): Promise<void> {
    this.get(name);
    await this.locks.run(name, 'destroying', async () => {
      const vm = this.vms.get(name);
      if (vm) {
        vm.kill();
        await vm.qmp.closed;
      }
      this.dropRuntime(name);
      const p = spritePaths(this.layout, name);
      fs.rmSync(p.dir, { recursive: true, force: true });
      for (const s of [p.qmpSocket, p.agentSocket, p.envSocket, p.egressSocket, p.serialSocket]) fs.rmSync(s, { force: true });
      this.manifests.delete(name);
      this.emit('removed', name);
    });
  }

  // ---------------------------------------------------------------- checkpoints

  listCheckpoints(name: string): CheckpointView[] {
    this.get(name);
    const t = readTimeline(spritePaths(this.layout, name).dir);
    return t.checkpoints.map(({ envRequest: _, ...c }) => ({ ...c, bytes: c.ramBytes + c.diskBytes, current: c.id === t.head }));
  }

  private announceCheckpoints(name: string): void {
    this.emit('checkpoints', name, this.listCheckpoints(name));
  }

  private checkpointOrThrow(name: string, id: string): Checkpoint {
    if (!CHECKPOINT_ID.test(id)) throw new SpritelyError('invalid_argument', `"${id.slice(0, 40)}" is not a checkpoint id (they look like v1, v2, …).`);
    const c = findCheckpoint(readTimeline(spritePaths(this.layout, name).dir), id);
    if (!c) throw new SpritelyError('not_found', `Sprite "${name}" has no checkpoint ${id}. \`spritely checkpoint list ${name}\` shows them.`);
    return c;
  }

  /**
   * Captures the machine: disk (internal qcow2 snapshot) and, when awake, RAM + devices (a state
   * file) at one instant. The guest is paused once, for the snapshot and the RAM write only.
   */
  async createCheckpoint(name: string, opts: { comment?: string; auto?: boolean } = {}): Promise<{ checkpoint: CheckpointView; timings: Timings }> {
    this.get(name);
    return this.locks.run(name, 'checkpointing', async () => {
      const t0 = Date.now();
      const c = await this.checkpointLocked(name, cleanComment(opts.comment), opts.auto ?? false);
      return { checkpoint: this.listCheckpoints(name).find((x) => x.id === c.id)!, timings: { pauseMs: c.pauseMs, totalMs: Date.now() - t0 } };
    });
  }

  private async checkpointLocked(name: string, comment: string, auto: boolean, envRequest?: string): Promise<Checkpoint> {
    const p = spritePaths(this.layout, name);
    let t = readTimeline(p.dir);
    const id = `v${t.nextNumber}`;
    const previous = t.checkpoints.at(-1);
    const diskNow = allocatedBytes(p.disk);
    const diskBytes = Math.max(0, diskNow - (previous ? (this.diskMarks.get(name) ?? 0) : 0));
    const vm = this.vms.get(name);
    // A sleeping machine's RAM is already on disk: its checkpoint keeps that state (a hard link).
    const m = this.mustManifest(name);
    const sleepState = !vm && m.status === 'sleeping' && m.sleep && fs.existsSync(m.sleep.file) ? m.sleep.file : null;
    let ramBytes = 0;
    let pauseMs = 0;
    try {
      if (sleepState) {
        fs.mkdirSync(path.dirname(ramFile(p.dir, id)), { recursive: true, mode: 0o700 });
        try {
          fs.linkSync(sleepState, ramFile(p.dir, id));
        } catch {
          fs.copyFileSync(sleepState, ramFile(p.dir, id));
          fsyncFile(ramFile(p.dir, id));
        }
        ramBytes = fs.statSync(ramFile(p.dir, id)).size;
      }
      if (vm) {
        fs.mkdirSync(path.dirname(ramFile(p.dir, id)), { recursive: true, mode: 0o700 });
        const paused = Date.now();
        await vm.pause();
        try {
          await vm.qmp.execute('blockdev-snapshot-internal-sync', { device: 'disk0', name: id });
          try {
            ramBytes = await vm.saveState(ramFile(p.dir, id), { fsync: false });
          } catch (err) {
            await vm.qmp.execute('blockdev-snapshot-delete-internal-sync', { device: 'disk0', name: id }).catch(() => {});
            throw err;
          }
        } finally {
          await vm.resume().catch(() => {});
          pauseMs = Date.now() - paused;
        }
        fsyncFile(ramFile(p.dir, id));
      } else {
        await offlineSnapshot('create', id, p.disk);
      }
    } catch (err) {
      fs.rmSync(ramFile(p.dir, id), { force: true });
      fs.rmSync(`${ramFile(p.dir, id)}.partial`, { force: true });
      const e = toSpritelyError(err);
      throw new SpritelyError(e.code === 'internal' && /space|full/i.test(e.message) ? 'resource_exhausted' : e.code, `Could not checkpoint "${name}": ${e.message}. The sprite is unchanged.`);
    }
    const added = addCheckpoint(t, { comment, createdAt: new Date().toISOString(), auto, memory: !!vm || !!sleepState, ramBytes, diskBytes, pauseMs, ...(envRequest ? { envRequest } : {}) });
    t = added.timeline;
    const prune = ramToPrune(t, DEFAULT_KEEP_RAM);
    t = markRamGone(t, prune);
    await writeTimeline(p.dir, t);
    this.diskMarks.set(name, diskNow);
    for (const old of prune) fs.rmSync(ramFile(p.dir, old), { force: true });
    this.log(`sprite ${name}: checkpoint ${id}${vm ? ` (paused ${pauseMs} ms, RAM ${(ramBytes / 2 ** 20).toFixed(0)} MiB)` : sleepState ? ' (asleep: its sleep state is the RAM)' : ' (disk only)'}`);
    this.announceCheckpoints(name);
    return added.checkpoint;
  }

  /**
   * Brings the machine back to checkpoint `id`: first an automatic checkpoint of the current state
   * (unless `backup` is false), then the disk is reverted and the RAM state restored (or, without
   * one, the machine boots from the restored disk).
   */
  async restoreCheckpoint(name: string, id: string, opts: { backup?: boolean } = {}): Promise<{ sprite: SpriteView; backup: string | null; timings: Timings }> {
    this.get(name);
    this.checkpointOrThrow(name, id);
    return this.locks.run(name, 'restoring', async () => {
      const t0 = Date.now();
      const timings: Record<string, number> = {};
      const c = this.checkpointOrThrow(name, id);
      const p = spritePaths(this.layout, name);
      const backup = opts.backup === false ? null : await this.checkpointLocked(name, cleanComment(`before restoring ${id}`), true);
      timings.backupMs = Date.now() - t0;
      const old = this.vms.get(name);
      if (old) {
        await old.quit();
        this.dropRuntime(name);
      }
      let t = Date.now();
      await offlineSnapshot('apply', id, p.disk);
      timings.diskMs = Date.now() - t;
      t = Date.now();
      const m = this.mustManifest(name);
      const image = this.mustImage(m);
      const withRam = c.memory && fs.existsSync(ramFile(p.dir, id));
      const vm = await this.launch(name, m, image, withRam ? ramFile(p.dir, id) : undefined);
      try {
        if (withRam) await vm.waitRunning(60_000);
        timings.runningMs = Date.now() - t;
        const agent = await vm.agent(withRam ? 30_000 : (await this.accelerator(image)).accel === 'tcg' ? 240_000 : 90_000);
        if (withRam) await setGuestClock(agent);
      } catch (err) {
        vm.kill();
        this.dropRuntime(name);
        await this.markCrashed(name, `restoring ${id} failed: ${(err as Error).message}`);
        throw new SpritelyError('internal', `Restoring ${id} of "${name}" failed: ${(err as Error).message}`);
      }
      // A guest that asked for this checkpoint itself was waiting for the answer at that instant.
      if (withRam && c.envRequest) this.envs.get(name)?.write(formatReply(c.envRequest, { ok: true, text: c.id }));
      this.diskMarks.set(name, allocatedBytes(p.disk));
      await writeTimeline(p.dir, moveHead(readTimeline(p.dir), id));
      await this.saveManifest({ ...m, status: 'running', lastError: null, sleep: null });
      // restored while asleep: that sleep state is no longer the machine's (a backup keeps its own link)
      if (m.sleep) fs.rmSync(m.sleep.file, { force: true });
      this.links.get(name)?.ready(60_000).catch(() => {});
      this.announceCheckpoints(name);
      timings.totalMs = Date.now() - t0;
      this.log(`sprite ${name}: restored ${id} in ${timings.totalMs} ms (${withRam ? 'with RAM' : 'booted from disk'})`);
      return { sprite: this.view(name), backup: backup?.id ?? null, timings: timings as Timings };
    });
  }

  async deleteCheckpoint(name: string, id: string): Promise<void> {
    this.get(name);
    this.checkpointOrThrow(name, id);
    await this.locks.run(name, 'deleting a checkpoint', async () => {
      this.checkpointOrThrow(name, id);
      const p = spritePaths(this.layout, name);
      const vm = this.vms.get(name);
      if (vm) await vm.qmp.execute('blockdev-snapshot-delete-internal-sync', { device: 'disk0', name: id });
      else await offlineSnapshot('delete', id, p.disk);
      await writeTimeline(p.dir, removeCheckpoint(readTimeline(p.dir), id));
      fs.rmSync(ramFile(p.dir, id), { force: true });
      this.announceCheckpoints(name);
    });
  }

  /** A new, independent sprite from checkpoint `id` of `source`, with its own identity. */
  async fork(source: string, id: string, name: string): Promise<{ sprite: SpriteView; timings: Timings }> {
    this.get(source);
    assertSpriteName(name);
    this.checkpointOrThrow(source, id);
    const p = spritePaths(this.layout, name);
    if (this.manifests.has(name) || fs.existsSync(p.dir)) throw new SpritelyError('already_exists', `A sprite named "${name}" already exists.`);
    const src = this.mustManifest(source);
    return this.locks.run(name, 'creating', async () => {
      const t0 = Date.now();
      const timings: Record<string, number> = {};
      fs.mkdirSync(p.dir, { mode: 0o700 });
      const hostKey = generateEd25519(`root@${name}`);
      let m: Manifest = { ...src, name, createdAt: new Date().toISOString(), hostKeyPub: hostKey.publicKey, status: 'creating', lastError: null, sleep: null, usage: { awakeSeconds: 0, cpuSeconds: 0, lastActiveAt: null } };
      let vm: QemuVm | null = null;
      try {
        await this.saveManifest(m);
        const sp = spritePaths(this.layout, source);
        const ram = path.join(p.dir, 'fork-source.state');
        let withRam = false;
        await this.locks.run(source, 'forking', async () => {
          const c = this.checkpointOrThrow(source, id);
          const backing = JSON.parse((await execFileP('qemu-img', ['info', '-U', '--output=json', sp.disk])).stdout)['full-backing-filename'];
          // Only clusters the snapshot holds beyond the shared golden disk are copied.
          await execFileP('qemu-img', ['convert', '-U', '-f', 'qcow2', '-O', 'qcow2', '-o', 'lazy_refcounts=on', '-l', `snapshot.name=${id}`, '-B', backing, '-F', 'qcow2', sp.disk, p.disk]);
          fs.chmodSync(p.disk, 0o600);
          if (c.memory && fs.existsSync(ramFile(sp.dir, id))) {
            fs.linkSync(ramFile(sp.dir, id), ram);
            withRam = true;
          }
        });
        timings.diskMs = Date.now() - t0;
        const image = this.mustImage(m);
        vm = await this.launch(name, m, image, withRam ? ram : undefined);
        if (withRam) await vm.waitRunning(60_000);
        timings.runningMs = Date.now() - t0;
        const agent = await vm.agent(withRam ? 30_000 : (await this.accelerator(image)).accel === 'tcg' ? 240_000 : 90_000);
        await this.applyIdentity(agent, name, hostKey);
        fs.rmSync(ram, { force: true });
        m = { ...m, status: 'running' };
        await this.saveManifest(m);
        this.links.get(name)?.ready(60_000).catch(() => {});
      } catch (err) {
        throw this.discardUnfinished(name, vm, err, `Could not fork ${source}@${id} into "${name}"`);
      }
      timings.totalMs = Date.now() - t0;
      return { sprite: this.view(name), timings: timings as Timings };
    });
  }

  /** Gives a restored or forked machine its own identity (keys made on the host, pinned by us). */
  private async applyIdentity(agent: GuestAgent, name: string, hostKey: KeyPair): Promise<void> {
    const applied = await agent.exec(APPLY_IDENTITY, [], {
      stdin: identityPayload({
        hostname: name,
        machineId: newMachineId(),
        hostKey: hostKey.privateKey,
        hostKeyPub: hostKey.publicKey,
        authorizedKeys: this.clientKey.publicKey,
        timeNs: nowNs(),
      }),
      timeoutMs: 60_000,
    });
    if (applied.exitCode !== 0) throw new Error(`the guest refused its identity (exit ${applied.exitCode}): ${applied.stderr.toString().trim()}`);
  }

  /** A create or fork that failed promised nothing: remove every trace and say why. */
  private discardUnfinished(name: string, vm: QemuVm | null, err: unknown, what: string): SpritelyError {
    vm?.kill();
    this.dropRuntime(name);
    this.manifests.delete(name);
    fs.rmSync(spritePaths(this.layout, name).dir, { recursive: true, force: true });
    this.emit('removed', name);
    const e = toSpritelyError(err);
    return new SpritelyError(e.code, `${what}: ${e.message}`);
  }

  private mustImage(m: Manifest): ImageRecord {
    const image = this.images.get(m.image);
    if (!image) throw new SpritelyError('failed_precondition', `The image "${m.image}" of sprite "${m.name}" is missing from ${this.layout.imagesDir}.`);
    return image;
  }

  /**
   * SSH into the sprite has failed for a while: ask the guest over its agent (no network needed)
   * why, log the answer, and restart its sshd socket if that is down (stopped by hand, or failed in
   * systemd). The link keeps retrying meanwhile.
   */
  private async diagnoseSsh(name: string, vm: QemuVm): Promise<void> {
    if (this.vms.get(name) !== vm) return;
    try {
      const agent = await vm.agent(5_000);
      const r = await agent.exec('/bin/sh', ['-c', SSH_DIAGNOSIS], { timeoutMs: 30_000 });
      this.log(`sprite ${name}: SSH unreachable for ${STUCK_AFTER_MS / 1000} s; the guest says: ${(r.stdout.toString() + r.stderr.toString()).trim().replace(/\s*\n\s*/g, ' | ')}`);
    } catch (err) {
      this.log(`sprite ${name}: SSH unreachable for ${STUCK_AFTER_MS / 1000} s, and its guest agent did not answer: ${(err as Error).message}`);
    }
  }

  /** The SSH link of a running sprite (terminals and exec ride on it). */
  ssh(name: string): SshLink {
    const v = this.get(name);
    const link = this.links.get(name);
    if (v.state !== 'running' || !link) {
      throw new SpritelyError('failed_precondition', `Sprite "${name}" is ${v.state}; start it first (spritely start ${name}).`);
    }
    return link;
  }

  vm(name: string): QemuVm | undefined {
    return this.vms.get(name);
  }

  /** Lets go of every QEMU (they keep running) and closes SSH links: the daemon is exiting. */
  detachAll(): void {
    if (this.idleTimer) clearInterval(this.idleTimer);
    for (const [name, vm] of this.vms) {
      vm.detach();
      this.links.get(name)?.close();
      this.envs.get(name)?.close();
    }
    this.vms.clear();
    this.links.clear();
    this.envs.clear();
  }

  private mustManifest(name: string): Manifest {
    const m = this.manifests.get(name);
    if (!m) throw notFound(name);
    return m;
  }

  private async saveManifest(m: Manifest): Promise<void> {
    const p = spritePaths(this.layout, m.name);
    await writeManifest(p.manifest, m);
    this.manifests.set(m.name, m);
    this.announce(m.name);
  }
}

function nowNs(): bigint {
  return BigInt(Date.now()) * 1_000_000n;
}

/**
 * A restored guest's clock is where it was when the state was saved. apply-identity's `time` sets
 * it with `date`; the agent's guest-set-time would also write the RTC (`hwclock -w`, up to 1 s).
 */
async function setGuestClock(agent: GuestAgent): Promise<void> {
  const r = await agent.exec(APPLY_IDENTITY, [], { stdin: identityPayload({ timeNs: nowNs() }), timeoutMs: 30_000 });
  if (r.exitCode !== 0) throw new Error(`setting the guest clock failed: ${r.stderr.toString().trim()}`);
}

function notFound(name: string): SpritelyError {
  return new SpritelyError('not_found', `No sprite named "${name}". \`spritely list\` shows your sprites.`);
}

function intInRange(field: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new SpritelyError('invalid_argument', `${field} must be a whole number from ${min} to ${max} (got ${JSON.stringify(value)}).`);
  }
  return value;
}
