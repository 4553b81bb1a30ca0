/**
 * The default guest image as data: which Debian packages, which guest files, which units, which
 * kernel command line. Images are content-addressed by this recipe (plus every guest file and a
 * format version), so changing any of it yields a new image id instead of silently mutating an
 * image that sprites and golden RAM states already depend on. The guest contract is in docs/image.md.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AGENT_SOURCE_DIR, listAgentSources } from '../guest/agent-build.ts';

/**
 * Bumped whenever the build changes what it makes from the same recipe (hooks, mke2fs options,
 * layout of the image directory, where apt points). 2: the guest's apt uses the host's Debian mirrors
 * (debian-mirror.ts) and the compiled guest agent is uploaded.
 */
export const IMAGE_FORMAT_VERSION = 2;

export interface Recipe {
  /** Prefix of the image id, e.g. `debian-12`. */
  name: string;
  /** Debian suite handed to mmdebstrap. */
  suite: string;
  /** mmdebstrap variant; minbase = Essential + apt, the rest comes from `packages`. */
  variant: 'minbase' | 'essential' | 'apt' | 'required' | 'important' | 'standard';
  packages: string[];
  /** Directory whose tree is copied over `/` of the guest (ownership root, modes normalised). */
  guestDir: string;
  enableUnits: string[];
  disableUnits: string[];
  maskUnits: string[];
  /** Absolute guest paths (shell globs allowed) deleted after installation. */
  removePaths: string[];
  kernelCmdline: string;
  /** Virtual size of base.qcow2; the engine grows sprites' file systems online from here. */
  diskVirtualBytes: number;
  /**
   * How the guest reaches out: `netstack` — its own network on a second NIC, served by the host
   * network stack (docs/network.md); recorded in image.json, so the driver gives the NIC only to
   * images whose guest is set up for it.
   */
  network: 'netstack';
  /** Go source of the guest agent, compiled during the build (docs/guest-agent.md); its files feed the hash. */
  agentDir: string;
}

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export const DEFAULT_RECIPE: Recipe = {
  name: 'debian-12',
  suite: 'bookworm',
  variant: 'minbase',
  packages: [
    'systemd', 'systemd-sysv', 'udev', 'dbus', 'openssh-server', 'qemu-guest-agent',
    'curl', 'ca-certificates', 'sudo', 'iproute2', 'kmod', 'e2fsprogs',
    'linux-image-cloud-amd64', 'initramfs-tools', 'less', 'procps', 'nano', 'iputils-ping', 'netbase',
    // /sbin/hwclock: without it qemu-guest-agent refuses guest-set-time
    'util-linux-extra',
    // initramfs-tools compresses with zstd when present: smaller initrd, faster to unpack under TCG
    'zstd',
    // nc: raw TCP from a shell, as users (and the network tests) expect of a machine
    'netcat-openbsd',
  ],
  guestDir: path.join(repoRoot, 'resources/guest'),
  enableUnits: ['systemd-networkd.service', 'spritely-sshd.socket', 'spritely-agent.service'],
  // ssh.service: replaced by the per-connection spritely-sshd.socket (see its comment)
  disableUnits: ['getty@tty1.service', 'ssh.service'],
  maskUnits: [
    'apt-daily.timer', 'apt-daily-upgrade.timer', 'dpkg-db-backup.timer', 'e2scrub_all.timer',
    'e2scrub_reap.service', 'fstrim.timer', 'systemd-networkd-wait-online.service',
  ],
  removePaths: [
    // the engine injects a per-sprite ed25519 key; the others would only slow sshd down
    '/etc/ssh/ssh_host_rsa_key', '/etc/ssh/ssh_host_rsa_key.pub',
    '/etc/ssh/ssh_host_ecdsa_key', '/etc/ssh/ssh_host_ecdsa_key.pub',
  ],
  kernelCmdline:
    'root=/dev/vda rootfstype=ext4 rw console=ttyS0 quiet loglevel=3 systemd.show_status=0 fsck.mode=skip',
  diskVirtualBytes: 4 * 1024 ** 3,
  network: 'netstack',
  agentDir: AGENT_SOURCE_DIR,
};

export interface GuestFile {
  /** Path inside the guest, e.g. `/etc/fstab`. */
  guestPath: string;
  hostPath: string;
  executable: boolean;
}

/** Every regular file under `recipe.guestDir`, sorted by guest path. */
export function listGuestFiles(recipe: Recipe): GuestFile[] {
  const out: GuestFile[] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const hostPath = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(hostPath);
      else if (entry.isFile()) {
        const guestPath = '/' + path.relative(recipe.guestDir, hostPath).split(path.sep).join('/');
        out.push({ guestPath, hostPath, executable: (statSync(hostPath).mode & 0o111) !== 0 });
      } else throw new Error(`unsupported entry in guest files (only regular files): ${hostPath}`);
    }
  };
  walk(recipe.guestDir);
  return out.sort((a, b) => (a.guestPath < b.guestPath ? -1 : a.guestPath > b.guestPath ? 1 : 0));
}

/** sha256 (hex) over the format version, the recipe's data, every guest file's path, mode and
 * content, and the guest agent's source files (a changed agent makes a new image). */
export function recipeHash(recipe: Recipe = DEFAULT_RECIPE): string {
  const { guestDir: _ignored, agentDir: _agent, ...data } = recipe;
  const files = listGuestFiles(recipe).map((f) => ({
    path: f.guestPath,
    executable: f.executable,
    sha256: createHash('sha256').update(readFileSync(f.hostPath)).digest('hex'),
  }));
  const canonical = JSON.stringify({ formatVersion: IMAGE_FORMAT_VERSION, recipe: sortKeys(data), files, agent: listAgentSources(recipe.agentDir) });
  return createHash('sha256').update(canonical).digest('hex');
}

/** Image id: `<recipe name>-<first 12 hex digits of the recipe hash>`, e.g. `debian-12-0123456789ab`. */
export function imageId(recipe: Recipe = DEFAULT_RECIPE, hash: string = recipeHash(recipe)): string {
  return `${recipe.name}-${hash.slice(0, 12)}`;
}

export const IMAGE_ID_PATTERN = /^[a-z0-9]+(?:-[a-z0-9]+)*-[0-9a-f]{12}$/;

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value as Record<string, unknown>)
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        .map(([k, v]) => [k, sortKeys(v)]),
    );
  }
  return value;
}
