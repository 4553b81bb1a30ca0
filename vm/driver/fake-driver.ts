/**
 * An in-memory driver for the engine's specs (Rancher Desktop's backend/mock.ts is the model). Its
 * machines are objects that record what was asked of them; disks and RAM states are small JSON
 * files written for real, so the engine's file logic (RAM files, hard links, pruning, sleep states)
 * runs against a real temp dir; any step can be told to fail; the guest is scriptable
 * (fake-guest.ts). A machine outlives the engine that launched it, as a process outlives a daemon,
 * so a second engine on the same driver re-attaches to it. It also enforces what a real disk needs:
 * no offline operation on a disk a running machine has open.
 *
 * It is the proof that the engine assumes nothing of a hypervisor beyond vm/driver/driver.ts.
 * Never used by the VM or e2e tests: those run real QEMU.
 */
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import type { Accelerator, BootFiles, DiskOps, Driver, DriverCheck, ExitReason, GuestPortName, LaunchSpec, Machine, MachineEvents, MachineShape, MachineState, PortForward } from './driver.ts';
import { GUEST_PORTS } from './driver.ts';
import { FakeDisks, readDisk, writeDisk } from './fake-disks.ts';
import { FakeGuest, type FakeAgentProgram } from './fake-guest.ts';

export type { FakeDisk } from './fake-disks.ts';

interface FakeState {
  format: 'fake-state';
  signature: string;
  memory: Record<string, string>;
  /** The spritely agent's epoch and sessions (they live in the guest's RAM). */
  agent?: unknown;
  /** Snapshot views attached when it was saved: a restore needs their devices (as QEMU does). */
  attached?: string[];
}


/** Steps that can be told to fail (`failNext`). */
export type FakeStep =
  | 'launch' | 'restore' | 'attach' | 'pause' | 'resume' | 'save' | 'snapshot' | 'delete-snapshot' | 'resize' | 'forward' | 'repair' | 'rehome'
  | 'overlay' | 'offline-snapshot' | 'apply-snapshot' | 'offline-delete' | 'clone' | 'attach-view' | 'detach-view';

/** One running machine: it lives until quit, killed or crashed, whichever engine watches it. */
export class FakeProcess extends EventEmitter<MachineEvents> {
  state: MachineState;
  alive = true;
  /** The guest's RAM, as far as a spec cares: saved into state files and restored from them. */
  memory: Record<string, string> = {};
  cpuSeconds = 0.5;
  forwards: PortForward[];
  readonly guest: FakeGuest;
  /** Why a restore will not land (set at launch from a bad state file or an injected failure). */
  restoreError: string | null = null;
  /** Snapshot views plugged in now (`attachSnapshot`), placeholders of a restored state included. */
  readonly attached = new Set<string>();
  /** Placeholders a restore brought, unplugged once it has landed. */
  placeholders: string[] = [];

  constructor(
    readonly driver: FakeDriver,
    readonly pid: number,
    public spec: LaunchSpec,
  ) {
    super();
    this.guest = new FakeGuest(driver.makeAgent?.() ?? null);
    this.forwards = [...spec.forwards];
    this.state = spec.restoreFrom ? 'starting' : 'running';
    this.guest.onShutdown = () => setImmediate(() => this.powerOffFromGuest());
  }

  get id(): string {
    return this.spec.id;
  }

  /** The machine dies on its own (`detail` is what its log would say). */
  crash(detail = 'the fake machine crashed'): void {
    this.end('crash', detail);
  }

  /** The guest powers itself off; the machine stays until it is quit. */
  powerOffFromGuest(): void {
    if (!this.alive || this.state === 'shutdown') return;
    this.state = 'shutdown';
    this.emit('poweroff');
  }

  writeFile(guestPath: string, content: string): void {
    const d = readDisk(this.spec.disk);
    d.files[guestPath] = content;
    writeDisk(this.spec.disk, d);
  }

  readFile(guestPath: string): string | undefined {
    return readDisk(this.spec.disk).files[guestPath];
  }

  end(reason: ExitReason, detail = ''): void {
    if (!this.alive) return;
    this.alive = false;
    this.guest.disconnect();
    if (this.driver.processes.get(this.id) === this) this.driver.processes.delete(this.id);
    setImmediate(() => this.emit('exit', reason, detail));
  }
}

/** An engine's view of a FakeProcess (a new one per launch or attach; `detach` lets go). */
class FakeMachine extends EventEmitter<MachineEvents> implements Machine {
  private readonly relay = {
    exit: (reason: ExitReason, detail: string) => this.emit('exit', reason, detail),
    poweroff: () => this.emit('poweroff'),
  };

  constructor(readonly proc: FakeProcess) {
    super();
    proc.on('exit', this.relay.exit);
    proc.on('poweroff', this.relay.poweroff);
  }

  private get driver(): FakeDriver {
    return this.proc.driver;
  }

  private step(step: FakeStep, what: string): void {
    this.driver.calls.push(`${what} ${this.proc.id}`);
    if (!this.proc.alive) throw new Error(`${this.proc.id}: the machine is gone`);
    this.driver.maybeFail(step);
  }

  get handle(): unknown {
    return { fakePid: this.proc.pid };
  }

  get pid(): number {
    return this.proc.pid;
  }

  async state(): Promise<MachineState> {
    return this.proc.alive ? this.proc.state : 'other';
  }

  async waitRunning(_timeoutMs: number): Promise<void> {
    if (!this.proc.alive) throw new Error('the machine is gone');
    if (this.proc.restoreError) throw new Error(this.proc.restoreError);
    for (const p of this.proc.placeholders.splice(0)) this.proc.attached.delete(p);
    this.proc.state = 'running';
  }

  async waitLanded(_timeoutMs: number): Promise<void> {
    if (!this.proc.alive) throw new Error('the machine is gone');
    if (this.proc.restoreError) throw new Error(this.proc.restoreError);
    this.proc.state = 'paused';
  }

  async rehome(to: { id: string; dir: string; disk: string }): Promise<void> {
    this.step('rehome', `rehome ${to.id} from`);
    fs.renameSync(this.proc.spec.disk, to.disk);
    if (this.driver.processes.get(this.proc.id) === this.proc) this.driver.processes.delete(this.proc.id);
    this.proc.spec = { ...this.proc.spec, id: to.id, dir: to.dir, disk: to.disk };
    this.driver.processes.set(to.id, this.proc);
  }

  async pause(): Promise<void> {
    this.step('pause', 'pause');
    this.proc.state = 'paused';
  }

  async resume(): Promise<void> {
    this.step('resume', 'resume');
    this.proc.state = 'running';
  }

  async saveState(file: string): Promise<number> {
    this.proc.state = 'paused';
    this.step('save', 'save');
    const state: FakeState = { format: 'fake-state', signature: this.driver.signatureOf(this.proc.spec.shape), memory: { ...this.proc.memory }, agent: this.proc.guest.agent?.snapshot(), attached: [...this.proc.attached].sort() };
    fs.writeFileSync(file, JSON.stringify(state));
    this.proc.state = 'saving';
    return fs.statSync(file).size;
  }

  async snapshotDisk(name: string): Promise<void> {
    this.step('snapshot', `snapshot ${name}`);
    const d = readDisk(this.proc.spec.disk);
    if (d.snapshots[name]) throw new Error(`snapshot ${name} exists`);
    d.snapshots[name] = { ...d.files };
    writeDisk(this.proc.spec.disk, d);
  }

  async deleteDiskSnapshot(name: string): Promise<void> {
    this.step('delete-snapshot', `delete-snapshot ${name}`);
    const d = readDisk(this.proc.spec.disk);
    if (!d.snapshots[name]) throw new Error(`no snapshot ${name}`);
    delete d.snapshots[name];
    writeDisk(this.proc.spec.disk, d);
  }

  async resizeDisk(bytes: number): Promise<void> {
    this.step('resize', `resize ${bytes}`);
    const d = readDisk(this.proc.spec.disk);
    d.virtualBytes = bytes;
    writeDisk(this.proc.spec.disk, d);
  }

  async setForward(f: PortForward): Promise<void> {
    this.step('forward', `forward ${f.hostPort}->${f.guestPort}`);
    this.proc.forwards = [...this.proc.forwards.filter((x) => x.hostPort !== f.hostPort), f];
  }

  async openPort(name: GuestPortName): Promise<Duplex> {
    if (!this.proc.alive) throw new Error('the machine is gone');
    if (name === GUEST_PORTS.control) return this.proc.guest.connectAgent();
    if (name === GUEST_PORTS.env) return this.proc.guest.connectEnv();
    if (name === GUEST_PORTS.agent) return this.proc.guest.connectSpritelyAgent();
    throw new Error(`the fake guest has no ${name} port`);
  }

  async attachSnapshot(name: string): Promise<{ serial: string }> {
    this.step('attach-view', `attach-view ${name}`);
    if (!readDisk(this.proc.spec.disk).snapshots[name]) throw new Error(`the disk has no snapshot ${name}`);
    this.proc.attached.add(name);
    return { serial: `spritely-${name}` };
  }

  async detachSnapshot(name: string): Promise<void> {
    this.step('detach-view', `detach-view ${name}`);
    this.proc.attached.delete(name);
  }

  async attachedSnapshots(): Promise<string[]> {
    if (!this.proc.alive) throw new Error('the machine is gone');
    return [...this.proc.attached].sort();
  }

  async powerDown(): Promise<void> {
    this.driver.calls.push(`power-down ${this.proc.id}`);
    this.proc.guest.onShutdown?.();
  }

  waitPowerOff(timeoutMs: number): Promise<void> {
    if (this.proc.state === 'shutdown') return Promise.resolve();
    return new Promise((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        this.proc.off('poweroff', done);
        resolve();
      };
      const timer = setTimeout(() => {
        this.proc.off('poweroff', done);
        reject(new Error(`the guest did not power off within ${timeoutMs} ms`));
      }, timeoutMs);
      this.proc.on('poweroff', done);
    });
  }

  async repair(): Promise<void> {
    this.step('repair', 'repair');
    this.proc.state = 'running';
  }

  cpuSeconds(): number {
    return this.proc.alive ? this.proc.cpuSeconds : 0;
  }

  async quit(): Promise<void> {
    this.driver.calls.push(`quit ${this.proc.id}`);
    this.proc.end('quit');
  }

  async kill(): Promise<void> {
    this.driver.calls.push(`kill ${this.proc.id}`);
    this.proc.end('quit');
  }

  detach(): void {
    this.proc.off('exit', this.relay.exit);
    this.proc.off('poweroff', this.relay.poweroff);
  }
}

export class FakeDriver implements Driver {
  readonly displayName = 'FakeVM';
  /** What was asked, in order (`launch dev`, `snapshot v1 dev`, `offline-snapshot v1 disk.qcow2`, …). */
  readonly calls: string[] = [];
  /** The machines that run now, by id. */
  readonly processes = new Map<string, FakeProcess>();
  /** Part of every signature: change it to pretend the hypervisor was upgraded. */
  hypervisorVersion = '1.0';
  accel: Accelerator = { name: 'fake', reason: 'the fake driver', emulated: false };
  /** Each launch waits this long (to let specs overlap launches). */
  launchDelayMs = 0;
  /** Runs on every new machine before it is handed out (script its guest here). */
  onLaunch: ((p: FakeProcess) => void) | null = null;
  /** The program behind each new guest's spritely agent port (the engine's specs plug in vm/guest/fake-agent.ts). */
  makeAgent: (() => FakeAgentProgram) | null = null;
  private failures = new Map<FakeStep, string[]>();
  private nextPid = 1000;
  private known: Accelerator | null = null;

  /** The next `step` fails with `message`. */
  failNext(step: FakeStep, message = `fake ${step} failed`): void {
    this.failures.set(step, [...(this.failures.get(step) ?? []), message]);
  }

  /** Throws the failure queued for `step`, if any. */
  maybeFail(step: FakeStep): void {
    const queued = this.failures.get(step);
    const message = queued?.shift();
    if (message !== undefined) throw new Error(message);
  }

  process(id: string): FakeProcess {
    const p = this.processes.get(id);
    if (!p) throw new Error(`no fake machine ${id} runs`);
    return p;
  }

  signatureOf(shape: MachineShape): string {
    return `fake-${this.hypervisorVersion}-${shape.memoryMiB}-${shape.cpus}`;
  }

  async version(): Promise<string> {
    return this.hypervisorVersion;
  }

  async accelerator(_boot: BootFiles): Promise<Accelerator> {
    this.known = this.accel;
    return this.accel;
  }

  get knownAccelerator(): Accelerator | null {
    return this.known;
  }

  async signature(shape: MachineShape): Promise<string> {
    return this.signatureOf(shape);
  }

  /** Whether a running machine has `disk` open. */
  diskInUse(disk: string): boolean {
    return [...this.processes.values()].some((p) => p.alive && path.resolve(p.spec.disk) === path.resolve(disk));
  }

  async launch(spec: LaunchSpec): Promise<Machine> {
    this.calls.push(`launch ${spec.id}${spec.restoreFrom ? ` from ${path.basename(spec.restoreFrom)}` : ''}`);
    if (this.launchDelayMs) await new Promise((r) => setTimeout(r, this.launchDelayMs));
    this.maybeFail('launch');
    readDisk(spec.disk);
    if (this.diskInUse(spec.disk)) throw new Error(`${spec.disk} is in use by another machine`);
    const proc = new FakeProcess(this, this.nextPid++, spec);
    if (spec.restoreFrom) {
      try {
        this.maybeFail('restore');
        const state = JSON.parse(fs.readFileSync(spec.restoreFrom, 'utf8')) as FakeState;
        if (state.format !== 'fake-state') throw new Error('not a saved state');
        if (state.signature !== this.signatureOf(spec.shape)) throw new Error(`the state was saved by ${state.signature}`);
        const needs = state.attached ?? [];
        const given = [...(spec.restoreAttached ?? [])].sort();
        if (needs.join() !== given.join()) throw new Error(`Unknown savevm section: the state had snapshot views [${needs.join(', ')}], the launch gave [${given.join(', ')}]`);
        proc.memory = { ...state.memory };
        if (state.agent !== undefined) proc.guest.agent?.restore(state.agent);
        for (const p of given) proc.attached.add(p);
        proc.placeholders = given;
      } catch (err) {
        proc.restoreError = `restoring ${path.basename(spec.restoreFrom)} failed: ${(err as Error).message}`;
      }
    }
    this.processes.set(spec.id, proc);
    this.onLaunch?.(proc);
    return new FakeMachine(proc);
  }

  async attach(handle: unknown): Promise<Machine | null> {
    this.maybeFail('attach');
    const pid = (handle as { fakePid?: unknown } | null)?.fakePid;
    const proc = [...this.processes.values()].find((p) => p.pid === pid);
    this.calls.push(`attach ${proc?.id ?? `pid ${String(pid)}`}`);
    return proc?.alive ? new FakeMachine(proc) : null;
  }

  release(id: string): void {
    this.calls.push(`release ${id}`);
  }

  readonly disks: DiskOps = new FakeDisks(this);

  async checks(): Promise<DriverCheck[]> {
    return [{ name: 'fake', ok: true, detail: 'the fake driver' }];
  }
}
