/**
 * Builds the QEMU command line for a sprite. Pure, so it is exhaustively tested: the device set
 * must be byte-for-byte the same for the VM that saved a RAM state and every VM that restores it
 * (QEMU matches device state by id and bus path), which `deviceSignature` captures.
 */
import crypto from 'node:crypto';
import { GUEST_PORTS, type PortForward } from '../driver/driver.ts';

export type Accel = 'kvm' | 'hvf' | 'tcg';

export interface VmSpec {
  name: string;
  qemuBinary: string;
  accel: Accel;
  memoryMiB: number;
  cpus: number;
  kernel: string;
  initrd: string;
  cmdline: string;
  disk: string;
  /** Host loopback ports forwarded into the guest (its sshd, the URL port). */
  forwards: PortForward[];
  qmpSocket: string;
  agentSocket: string;
  envSocket: string;
  /** The spritely agent's port (exec and terminals; docs/guest-agent.md). */
  spritelyAgentSocket: string;
  /** The daemon's egress proxy for this sprite (unix socket); QEMU forwards 10.0.2.100:3128 to it. */
  egressSocket: string;
  /**
   * The host network stack's socket (vm/qemu/net-helper.ts), for images whose guest has its own
   * network (`BootFiles.netstack`): QEMU gives the guest a second NIC whose frames go there.
   */
  netHelperSocket?: string;
  /** The serial console (the daemon reads it into a bounded log: serial-log.ts). */
  serialSocket: string;
  pidFile: string;
  /** Restore RAM + device state from this file instead of booting (`.lz4`/`.zst`: compressed). */
  incomingStateFile?: string;
  /**
   * Snapshot views that were hot-plugged when the state being restored was saved: their devices,
   * each on a backend-less placeholder, so the state finds them (they are unplugged before the guest runs).
   */
  placeholders?: ViewAddress[];
}

/** Where a snapshot view sits on the machine's SCSI controller (see snapshot-views.ts). */
export interface ViewAddress {
  name: string;
  target: number;
  lun: number;
}

/** The id of a snapshot view's device (QEMU ids: a letter, then letters, digits, '-', '_', '.'). */
export function viewDeviceId(name: string): string {
  return `sview-${name}`;
}

/**
 * The command QEMU runs to read a saved state: plain, or decompressed on the fly (`.lz4`, what the
 * daemon compresses with; `.zst`, states compressed by older daemons).
 */
export function incomingCommand(file: string): string {
  if (file.endsWith('.lz4')) return `exec:lz4 -dcq -- ${shellQuote(file)}`;
  if (file.endsWith('.zst')) return `exec:zstd -dcq -- ${shellQuote(file)}`;
  return `exec:cat ${shellQuote(file)}`;
}

/** Guest side of QEMU user networking; the image configures this address statically. */
export const GUEST_IP = '10.0.2.15';
/** Every sprite keeps the golden MAC: each has its own slirp, and a new MAC would move the address. */
export const GUEST_MAC = '52:54:00:12:34:56';
/** The guest's second NIC, on the host network stack (its address: resources/guest/etc/systemd/network). */
export const GUEST_NET_MAC = '52:54:00:12:34:57';
/** Where the guest finds the egress proxy (for programs pointed at it by hand); QEMU forwards it to the daemon. */
export const EGRESS_PROXY_IP = '10.0.2.100';
export const EGRESS_PROXY_PORT = 3128;
/** Bounds TCG's translation cache (MiB); the default grows RSS by hundreds of MiB. */
export const TCG_TB_SIZE_MIB = 64;

/** QEMU's option syntax uses ',' as separator; a literal comma is written ',,'. */
export function qemuOptValue(value: string): string {
  return value.replaceAll(',', ',,');
}

export function shellQuote(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

export function accelArgs(accel: Accel): string[] {
  switch (accel) {
    case 'kvm':
      return ['-accel', 'kvm', '-cpu', 'host'];
    case 'hvf':
      return ['-accel', 'hvf', '-cpu', 'host'];
    case 'tcg':
      return ['-accel', `tcg,tb-size=${TCG_TB_SIZE_MIB}`, '-cpu', 'max'];
  }
}

/** The command QEMU runs per guest connection to the egress proxy address (libslirp splits it
 * with shell quoting rules, no shell runs it). */
export function egressCommand(egressSocket: string): string {
  return `socat STDIO ${shellQuote(`UNIX-CONNECT:${egressSocket}`)}`;
}

export function buildQemuArgv(spec: VmSpec): string[] {
  const o = qemuOptValue;
  const forwards = spec.forwards
    .map((f) => `,hostfwd=tcp:127.0.0.1:${f.hostPort}-${GUEST_IP}:${f.guestPort}`)
    .join('');
  const argv = [
    spec.qemuBinary,
    '-name', `spritely-${spec.name}`,
    '-machine', 'q35',
    ...accelArgs(spec.accel),
    '-m', String(spec.memoryMiB),
    '-smp', String(spec.cpus),
    '-nodefaults', '-no-user-config', '-display', 'none',
    // A guest poweroff leaves QEMU alive in "shutdown" state, so a stop is told apart from a crash.
    '-no-shutdown',
    '-kernel', spec.kernel,
    '-initrd', spec.initrd,
    '-append', spec.cmdline,
    '-blockdev', `driver=file,filename=${o(spec.disk)},node-name=file0,discard=unmap`,
    '-blockdev', 'driver=qcow2,file=file0,node-name=disk0,discard=unmap,detect-zeroes=unmap',
    '-device', 'virtio-blk-pci,drive=disk0,id=vda',
    // restrict=on: no guest packet is routed out and 10.0.2.2 no longer reaches the host's loopback
    // (only the forwards below pass). Egress is the guestfwd: each guest connection to the proxy
    // address spawns socat onto the daemon's per-sprite egress socket, where the policy is applied.
    '-netdev', `user,id=n0,net=10.0.2.0/24,restrict=on,ipv6=off${forwards},guestfwd=tcp:${EGRESS_PROXY_IP}:${EGRESS_PROXY_PORT}-cmd:${o(egressCommand(spec.egressSocket))}`,
    '-device', `virtio-net-pci,netdev=n0,mac=${GUEST_MAC},id=nic0`,
    // The guest's own network: every frame of its second NIC to the host network stack, which
    // asks the daemon about every connection (docs/network.md, "The host network stack").
    ...(spec.netHelperSocket
      ? ['-netdev', `stream,id=n1,server=off,addr.type=unix,addr.path=${o(spec.netHelperSocket)}`, '-device', `virtio-net-pci,netdev=n1,mac=${GUEST_NET_MAC},id=nic1`]
      : []),
    '-device', 'virtio-serial-pci,id=vser0',
    '-chardev', `socket,id=qga0,path=${o(spec.agentSocket)},server=on,wait=off`,
    '-device', `virtserialport,bus=vser0.0,chardev=qga0,name=${GUEST_PORTS.control},id=qgaport`,
    '-chardev', `socket,id=env0,path=${o(spec.envSocket)},server=on,wait=off`,
    '-device', `virtserialport,bus=vser0.0,chardev=env0,name=${GUEST_PORTS.env},id=envport`,
    '-chardev', `socket,id=agent0,path=${o(spec.spritelyAgentSocket)},server=on,wait=off`,
    '-device', `virtserialport,bus=vser0.0,chardev=agent0,name=${GUEST_PORTS.agent},id=agentport`,
    // Checkpoints are shown to the guest as hot-plugged SCSI disks (snapshot-views.ts): on q35 only
    // a controller present from the start can take them, and SCSI unplugs need no guest consent.
    '-device', 'virtio-scsi-pci,id=scsi0',
    // No logfile= here: QEMU would append whatever the guest writes, without bound. The daemon
    // reads this socket into a size-bounded log instead (serial-log.ts).
    '-chardev', `socket,id=ser0,path=${o(spec.serialSocket)},server=on,wait=off`,
    '-serial', 'chardev:ser0',
    '-device', 'virtio-rng-pci,id=rng0',
    // A new generation id on every restore makes Linux (>= 5.18) reseed its RNG.
    '-device', 'vmgenid,guid=auto,id=vmgenid0',
    '-qmp', `unix:${o(spec.qmpSocket)},server=on,wait=off`,
    '-pidfile', spec.pidFile,
  ];
  for (const p of spec.placeholders ?? []) {
    argv.push('-blockdev', `driver=null-co,node-name=svp-${p.name},size=1073741824,read-zeroes=on`);
    argv.push('-device', `scsi-hd,bus=scsi0.0,drive=svp-${p.name},id=${viewDeviceId(p.name)},scsi-id=${p.target},lun=${p.lun}`);
  }
  if (spec.incomingStateFile) argv.push('-incoming', incomingCommand(spec.incomingStateFile));
  return argv;
}

/**
 * Stands in for the forwards in a signature: forwards are per-VM, but the normalized argv keeps the
 * one it had when signatures were first computed (the sshd forward on a placeholder port), so states
 * saved before stay valid.
 */
const SIGNATURE_FORWARDS: PortForward[] = [{ hostPort: 1, guestPort: 22 }];

/**
 * Stands in for the serial chardev in a signature: QEMU used to write the console's log itself
 * (`logfile=`). Where a chardev logs is host-side plumbing that no saved state records, so the
 * normalized argv keeps the old text and states saved before the daemon took the log over still fit.
 */
const SIGNATURE_SERIAL_CHARDEV = 'socket,id=ser0,path=S,server=on,wait=off,logfile=L,logappend=on';

/**
 * What a saved RAM state depends on: the argv with every per-VM path and port blanked, plus the
 * QEMU version. Two specs with the same signature can exchange RAM states.
 */
export function deviceSignature(spec: VmSpec, qemuVersion: string): string {
  const normalized: VmSpec = {
    ...spec,
    name: 'X',
    kernel: 'KERNEL',
    initrd: 'INITRD',
    disk: 'DISK',
    forwards: SIGNATURE_FORWARDS,
    qmpSocket: 'S',
    agentSocket: 'S',
    envSocket: 'S',
    spritelyAgentSocket: 'S',
    egressSocket: 'S',
    serialSocket: 'S',
    netHelperSocket: spec.netHelperSocket ? 'S' : undefined,
    pidFile: 'P',
    incomingStateFile: undefined,
    placeholders: undefined,
  };
  const argv = buildQemuArgv(normalized).map((a) => (a.startsWith('socket,id=ser0,') ? SIGNATURE_SERIAL_CHARDEV : a));
  return crypto
    .createHash('sha256')
    .update(JSON.stringify({ qemuVersion, argv }))
    .digest('hex')
    .slice(0, 16);
}
