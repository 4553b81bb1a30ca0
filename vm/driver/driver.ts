/**
 * The driver boundary: everything the engine needs from a hypervisor, and nothing it may assume
 * beyond it. A driver launches machines (booting, or restoring a saved RAM state), re-attaches to
 * ones that outlived a daemon through an opaque handle, pauses them, saves RAM + devices to a
 * file, snapshots and clones their disks, forwards host ports into them, and hands out byte
 * channels to named guest ports. Protocols spoken over those channels (the guest agent, the
 * spritely-env port) live above this interface (vm/guest/, vm/checkpoints/env-channel.ts), so they
 * work on every driver.
 *
 * Implementations: QEMU (vm/qemu/qemu-driver.ts) and an in-memory fake for the engine's specs
 * (vm/driver/fake-driver.ts). docs/drivers.md explains how an Apple Virtualization.framework helper
 * would meet it, and what therefore must not be assumed here.
 */
import type { Duplex } from 'node:stream';

/** How a machine ended: we quit it, the guest powered itself off, or it died on its own. */
export type ExitReason = 'quit' | 'poweroff' | 'crash';

/**
 * The named guest ports every machine offers (virtio-serial ports under QEMU; virtio-console ports
 * or vsock under other hypervisors). The guest image listens on them (docs/image.md). A new in-guest
 * program gets a new name here, and each driver maps it to its own transport.
 */
export const GUEST_PORTS = {
  /** qemu-guest-agent: readiness, exec and clock fix-ups (vm/guest/guest-agent.ts speaks it). */
  control: 'org.qemu.guest_agent.0',
  /** spritely-env: the guest's own requests to the daemon (vm/checkpoints/env-channel.ts). */
  env: 'org.spritely.env.0',
  /** The spritely agent: exec and PTY sessions multiplexed on one framed channel (docs/guest-agent.md). */
  agent: 'org.spritely.agent.0',
} as const;
export type GuestPortName = (typeof GUEST_PORTS)[keyof typeof GUEST_PORTS];

export interface MachineShape {
  memoryMiB: number;
  cpus: number;
}

/** What a machine boots: the image's kernel, initrd and kernel command line. */
export interface BootFiles {
  kernel: string;
  initrd: string;
  cmdline: string;
  /**
   * The image's guest has its own network on a second NIC, served on the host by the sprite's
   * network stack (docs/network.md, "The host network stack"); images from before it have none.
   */
  netstack?: boolean;
}

/** A TCP forward from 127.0.0.1:hostPort on the host to guestPort in the guest. */
export interface PortForward {
  hostPort: number;
  guestPort: number;
}

export interface LaunchSpec {
  /** Stable id of the machine (the sprite's name); the driver derives its own per-machine files from it. */
  id: string;
  /** Directory for the machine's logs and the files the driver keeps beside its disk. */
  dir: string;
  disk: string;
  shape: MachineShape;
  boot: BootFiles;
  /** Forwards from the host's loopback into the guest (the guest's sshd, the URL port). */
  forwards: PortForward[];
  /** Unix socket on the host where the guest's connections to its egress proxy address arrive. */
  egressSocket: string;
  /**
   * Unix socket on the host where the sprite's network stack asks the daemon about each guest
   * connection and DNS query (vm/net/netstack-link.ts); used when `boot.netstack`.
   */
  netSocket: string;
  /**
   * Restore RAM + devices from this state file instead of booting. A name ending in `.lz4` is a
   * state compressed with lz4 (the engine compresses states after they are written), `.zst` one an
   * older daemon compressed with zstd.
   */
  restoreFrom?: string;
  /**
   * The snapshot views (`Machine.attachSnapshot`) that were attached when `restoreFrom` was saved: a
   * saved state needs every device it had, so the driver re-creates theirs without a backend and
   * removes them before the guest runs (the guest then sees them unplugged).
   */
  restoreAttached?: string[];
}

/**
 * Random access to a disk as one of its snapshots holds it (or as it is, when no machine has it
 * open), for reading the guest's filesystem on the host (vm/checkpoints/ext4-volume.ts). Reads are
 * synchronous: a filesystem walk makes tens of thousands of small ones.
 */
export interface DiskReader {
  /** Virtual size in bytes. */
  readonly size: number;
  read(offset: number, length: number): Buffer;
  /**
   * Where the bytes at `offset` are stored, as an opaque token: two readers of the same disk give
   * equal tokens for equal stored bytes (a cluster two snapshots share); null when unknown.
   */
  where(offset: number): string | null;
  close(): void;
}

export interface Accelerator {
  /** e.g. `kvm`, `hvf`, `tcg`. */
  name: string;
  /** Why it was chosen, in words (shown by `spritely doctor`). */
  reason: string;
  /** Software emulation: guests run ~10x slower, so boots get longer timeouts. */
  emulated: boolean;
}

/**
 * What a machine is doing, in driver-neutral words. `saving` and `paused` after a daemon restart
 * mean a checkpoint or sleep was cut off half-way (see `Machine.repair`); `shutdown` means the guest
 * powered off while nobody watched; `starting` is a restore still landing.
 */
export type MachineState = 'running' | 'paused' | 'saving' | 'shutdown' | 'starting' | 'other';

export interface MachineEvents {
  /** The machine is gone; `detail` says what it last said (a crash's log tail). */
  exit: [reason: ExitReason, detail: string];
  /** The guest powered itself off (the machine stays until quit). */
  poweroff: [];
}

export interface Machine {
  /** JSON the driver alone reads, to re-attach after a daemon restart (kept in runtime.json). */
  readonly handle: unknown;
  /** The host process of the machine, when there is one (shown to users, never signalled by the engine). */
  readonly pid: number | null;
  on<E extends keyof MachineEvents>(event: E, listener: (...args: MachineEvents[E]) => void): this;

  state(): Promise<MachineState>;
  /** After a restore, waits until the saved state has landed and the guest runs. */
  waitRunning(timeoutMs: number): Promise<void>;
  /** After a restore, waits until the saved state has landed, leaving the guest paused (a warm spare; `resume` lets it run). */
  waitLanded(timeoutMs: number): Promise<void>;
  /**
   * The running machine now belongs to another id (a warm spare becoming a sprite): its disk moves
   * to `disk` and the driver's own files beside it into `dir`; `handle` says where they are now.
   * Its guest ports and forwards stay as they are.
   */
  rehome(to: { id: string; dir: string; disk: string }): Promise<void>;
  pause(): Promise<void>;
  resume(): Promise<void>;
  /** Saves RAM + devices to `file` (pausing the guest, which stays paused). Returns the bytes written. */
  saveState(file: string, opts?: { timeoutMs?: number; fsync?: boolean }): Promise<number>;
  /** Disk snapshot of the running machine (taken while paused, so it matches a `saveState`). */
  snapshotDisk(name: string): Promise<void>;
  deleteDiskSnapshot(name: string): Promise<void>;
  /** Grows the virtual disk (the guest's filesystem is grown separately, from inside). */
  resizeDisk(bytes: number): Promise<void>;
  /** Points the forward on `forward.hostPort` at `forward.guestPort` (live; no restart). */
  setForward(forward: PortForward): Promise<void>;
  /** A byte channel to a named guest port; each call is a new connection. */
  openPort(name: GuestPortName): Promise<Duplex>;
  /**
   * Shows the guest snapshot `name` of the machine's own disk as one more disk (hot-plugged), so it
   * can mount it: read-only towards the snapshot, with a throwaway layer taking the writes a
   * journal replay makes. Returns the serial the guest finds the disk by. Attached views outlive a
   * daemon restart and end with the machine.
   */
  attachSnapshot(name: string): Promise<{ serial: string }>;
  /** Unplugs a snapshot view (the guest should have unmounted it) and ends what served it. */
  detachSnapshot(name: string): Promise<void>;
  /** The snapshot views attached now. */
  attachedSnapshots(): Promise<string[]>;
  /** Asks the guest to power off (the ACPI button); `waitPowerOff` says when it has. */
  powerDown(): Promise<void>;
  waitPowerOff(timeoutMs: number): Promise<void>;
  /** After a daemon died mid-checkpoint or mid-sleep: abandon the half-made save and let the guest run. */
  repair(): Promise<void>;
  /** CPU time the machine has used, in seconds. */
  cpuSeconds(): number;
  /** Ends the machine now (no guest shutdown); disk caches are flushed as it goes. */
  quit(timeoutMs?: number): Promise<void>;
  /** Ends the machine at once, without flushing; resolves when it is gone. */
  kill(): Promise<void>;
  /** Lets go of the machine without ending it (the daemon exits; the machine runs on). */
  detach(): void;
}

/** Disk files: overlays, snapshots inside them, and clones. Offline operations need the disk closed. */
export interface DiskOps {
  /** A new disk of `virtualBytes` whose unwritten blocks read from `backing` (relative to `relativeTo` when given). */
  createOverlay(opts: { file: string; backing: string; virtualBytes: number; relativeTo?: string }): Promise<void>;
  /** Names of the disk's snapshots (readable while a machine has it open). */
  snapshots(disk: string): Promise<Set<string>>;
  createSnapshot(disk: string, name: string): Promise<void>;
  applySnapshot(disk: string, name: string): Promise<void>;
  deleteSnapshot(disk: string, name: string): Promise<void>;
  /** A new disk at `dest` with the contents `src` had at snapshot `name` (src may be in use). */
  cloneAt(src: string, name: string, dest: string): Promise<void>;
  /**
   * Reads snapshot `snapshot` of `disk` (null: its current contents, only while no machine has it
   * open). A snapshot's contents never change while it exists, even under a running machine.
   */
  openReader(disk: string, snapshot: string | null): Promise<DiskReader>;
  /**
   * How many bytes differ between two snapshots of `disk` (null: the current contents of a closed
   * disk), at the driver's granularity: 0 exactly when nothing changed; null when unknown.
   */
  changedBytes(disk: string, a: string | null, b: string | null): Promise<number | null>;
  /** For each snapshot of `disk`: the bytes deleting it alone would give back. Estimates while a machine runs. */
  snapshotCosts(disk: string): Promise<Map<string, number>>;
  /** Makes a disk in the driver's format from a raw disk image (an image build's last step). */
  importRaw(raw: string, disk: string): Promise<void>;
  /** Bytes the file really takes on the host's disk. */
  allocatedBytes(file: string): number;
}

export interface DriverCheck {
  name: string;
  ok: boolean;
  detail: string;
}

export interface Driver {
  /** The hypervisor in messages ("QEMU exited unexpectedly"). */
  readonly displayName: string;
  /** The hypervisor's version (part of every state's signature). */
  version(): Promise<string>;
  /** Chooses (once) how machines are accelerated; `boot` may be used to test it. */
  accelerator(boot: BootFiles): Promise<Accelerator>;
  readonly knownAccelerator: Accelerator | null;
  /**
   * What a saved RAM state depends on: two machines with the same signature can exchange states.
   * A state saved under another signature must not be restored (it would fail or misbehave).
   */
  signature(shape: MachineShape, boot: BootFiles): Promise<string>;
  launch(spec: LaunchSpec): Promise<Machine>;
  /** Re-attaches to a machine by its handle; null when it no longer runs (or is not ours). */
  attach(handle: unknown): Promise<Machine | null>;
  /** Removes whatever the driver keeps for machine `id` outside its dir (after it was destroyed). */
  release(id: string): void;
  readonly disks: DiskOps;
  /** The driver's part of `spritely doctor`. */
  checks(): Promise<DriverCheck[]>;
}
