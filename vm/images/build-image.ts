/**
 * Builds the default guest image from Debian packages, with no loop mounts and no network besides
 * the Debian mirror: mmdebstrap → rootfs tarball → ext4 made with `mke2fs -d` straight onto a raw
 * file (the whole disk is the file system, no partition table, so the engine can grow it online)
 * → qcow2 base (read-only) + kernel + initrd for direct boot + image.json.
 *
 * Images are content-addressed (recipe.ts): a finished image directory is never modified. The
 * build happens in `<id>.partial-<random>/` and is renamed into place as the very last step, so a
 * killed build never leaves a directory that looks like a finished image.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { AGENT_GUEST_PATH, buildAgent, hostDpkgArch } from '../guest/agent-build.ts';
import { DEFAULT_RECIPE, IMAGE_FORMAT_VERSION, imageId, listGuestFiles, recipeHash, type Recipe } from './recipe.js';

export interface ImageInfo {
  id: string;
  recipeHash: string;
  formatVersion: number;
  createdAt: string;
  suite: string;
  kernelCmdline: string;
  diskVirtualBytes: number;
  kernelVersion: string;
  /** Installed Debian packages, `name` → `version`. */
  packages: Record<string, string>;
  buildMs: number;
}

export interface ImagePaths {
  dir: string;
  disk: string;
  kernel: string;
  initrd: string;
  info: string;
  log: string;
}

export interface BuildProgress {
  /** checking · resolving · downloading · extracting · installing · customizing · archiving · filesystem · converting · done */
  phase: string;
  message: string;
  /** 0..1 within the phase, when known. */
  fraction?: number;
}

export interface BuildImageOptions {
  imagesDir: string;
  recipe?: Recipe;
  onProgress?: (p: BuildProgress) => void;
  signal?: AbortSignal;
}

export class ImageBuildError extends Error {
  override name = 'ImageBuildError';
}

export function imagePaths(imagesDir: string, id: string): ImagePaths {
  const dir = path.join(imagesDir, id);
  return {
    dir,
    disk: path.join(dir, 'base.qcow2'),
    kernel: path.join(dir, 'vmlinuz'),
    initrd: path.join(dir, 'initrd.img'),
    info: path.join(dir, 'image.json'),
    log: path.join(dir, 'build.log'),
  };
}

/** The finished image for `recipe`, or null when it has not been built into `imagesDir`. */
export async function readImageInfo(imagesDir: string, recipe: Recipe = DEFAULT_RECIPE): Promise<ImageInfo | null> {
  try {
    return JSON.parse(await fs.readFile(imagePaths(imagesDir, imageId(recipe)).info, 'utf8')) as ImageInfo;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

export async function buildImage(opts: BuildImageOptions): Promise<ImageInfo> {
  const recipe = opts.recipe ?? DEFAULT_RECIPE;
  const progress = opts.onProgress ?? (() => {});
  const hash = recipeHash(recipe);
  const id = imageId(recipe, hash);
  const final = imagePaths(opts.imagesDir, id);
  const existing = await readImageInfo(opts.imagesDir, recipe);
  if (existing) return existing;

  const started = Date.now();
  const asRoot = process.getuid?.() === 0;
  progress({ phase: 'checking', message: `building image ${id}` });
  await checkTools(asRoot);
  await fs.mkdir(opts.imagesDir, { recursive: true });
  await removeStalePartials(opts.imagesDir, id, asRoot);

  const work = path.join(opts.imagesDir, `${id}.partial-${randomBytes(4).toString('hex')}`);
  await fs.mkdir(work);
  await fs.writeFile(path.join(work, 'builder.pid'), `${process.pid}\n`);
  const log = createWriteStream(path.join(work, 'build.log'));
  try {
    const tarball = path.join(work, 'rootfs.tar');
    progress({ phase: 'checking', message: 'building the guest agent' });
    const agentBinary = await buildGuestAgent(recipe, work, log, opts.signal);
    await runMmdebstrap(recipe, tarball, asRoot, log, progress, opts.signal, agentBinary);
    await fs.rm(agentBinary, { force: true });

    progress({ phase: 'filesystem', message: 'extracting kernel, initrd and package list' });
    const members = (await capture('tar', ['-tf', tarball], opts.signal)).toString('utf8').split('\n');
    const kernelMember = pickLatest(members, /^(?:\.\/)?boot\/vmlinuz-(.+)$/);
    const initrdMember = pickLatest(members, /^(?:\.\/)?boot\/initrd\.img-(.+)$/);
    if (!kernelMember || !initrdMember) throw new ImageBuildError('the rootfs has no /boot/vmlinuz-* or /boot/initrd.img-*: is a linux-image package in the recipe?');
    const kernelVersion = kernelMember.match(/vmlinuz-(.+)$/)![1];
    await fs.writeFile(path.join(work, 'vmlinuz'), await capture('tar', ['-xOf', tarball, kernelMember], opts.signal));
    await fs.writeFile(path.join(work, 'initrd.img'), await capture('tar', ['-xOf', tarball, initrdMember], opts.signal));
    const statusMember = members.find((m) => /^(?:\.\/)?var\/lib\/dpkg\/status$/.test(m));
    const packages = statusMember ? parseDpkgStatus((await capture('tar', ['-xOf', tarball, statusMember], opts.signal)).toString('utf8')) : {};

    progress({ phase: 'filesystem', message: `making a ${recipe.diskVirtualBytes / 1024 ** 3} GiB ext4 file system` });
    // Extract + mke2fs inside mmdebstrap's user namespace when not root, so files keep owner 0.
    const raw = path.join(work, 'base.raw');
    const script = [
      'set -e', 'mkdir rootfs',
      'tar -C rootfs --numeric-owner --xattrs --xattrs-include="*" -xpf rootfs.tar',
      'rm -f rootfs.tar',
      `mke2fs -q -F -t ext4 -L spritely-root -m 1 -d rootfs base.raw ${Math.floor(recipe.diskVirtualBytes / 1024)}k`,
      'rm -rf rootfs',
    ].join('\n');
    const [cmd, args] = asRoot ? ['sh', ['-c', script]] : ['mmdebstrap', ['--unshare-helper', 'sh', '-c', script]];
    await run(cmd, args, { cwd: work, log, signal: opts.signal });

    progress({ phase: 'converting', message: 'converting to qcow2' });
    await run('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', raw, path.join(work, 'base.qcow2')], { cwd: work, log, signal: opts.signal });
    await fs.rm(raw, { force: true });
    await fs.chmod(path.join(work, 'base.qcow2'), 0o444);
    await fs.chmod(path.join(work, 'vmlinuz'), 0o444);
    await fs.chmod(path.join(work, 'initrd.img'), 0o444);

    const info: ImageInfo = {
      id,
      recipeHash: hash,
      formatVersion: IMAGE_FORMAT_VERSION,
      createdAt: new Date().toISOString(),
      suite: recipe.suite,
      kernelCmdline: recipe.kernelCmdline,
      diskVirtualBytes: recipe.diskVirtualBytes,
      kernelVersion,
      packages,
      buildMs: Date.now() - started,
    };
    await writeFileSynced(path.join(work, 'image.json'), JSON.stringify(info, null, 2) + '\n');
    await fs.rm(path.join(work, 'builder.pid'), { force: true });
    await new Promise<void>((resolve) => log.end(resolve));
    try {
      await fs.rename(work, final.dir);
    } catch (err) {
      // another builder finished the same image first: theirs is as good as ours
      const code = (err as NodeJS.ErrnoException).code;
      if ((code === 'ENOTEMPTY' || code === 'EEXIST') && existsSync(final.info)) {
        await removeTree(work, asRoot);
        return JSON.parse(await fs.readFile(final.info, 'utf8')) as ImageInfo;
      }
      throw err;
    }
    progress({ phase: 'done', message: `image ${id} built in ${(info.buildMs / 1000).toFixed(1)} s`, fraction: 1 });
    return info;
  } catch (err) {
    log.end();
    await removeTree(work, asRoot).catch(() => {});
    if (opts.signal?.aborted) throw new ImageBuildError('image build aborted');
    throw err;
  }
}

/**
 * Compiles the guest agent from `recipe.agentDir` for the architecture mmdebstrap builds (the
 * host's dpkg architecture) into the work dir; mmdebstrap uploads it into the guest. Static, no
 * module downloads (vm/guest/agent-build.ts).
 */
async function buildGuestAgent(recipe: Recipe, work: string, log: NodeJS.WritableStream, signal?: AbortSignal): Promise<string> {
  const out = path.join(work, 'spritely-agent');
  const arch = (await capture('dpkg', ['--print-architecture'], signal).catch(() => Buffer.from(hostDpkgArch()))).toString().trim();
  log.write(`$ go build (guest agent, ${recipe.agentDir}, ${arch}) -> ${out}\n`);
  await buildAgent({ out, sourceDir: recipe.agentDir, dpkgArch: arch, signal });
  return out;
}

/** mmdebstrap arguments for `recipe`, writing a tarball to `target`. No mirror: mmdebstrap then
 * uses deb.debian.org with the suite's -updates and -security, which is also what the guest's own
 * apt needs (SPRITELY_DEBIAN_MIRROR overrides the main mirror). `agentBinary`: the compiled guest
 * agent, uploaded to AGENT_GUEST_PATH. Exported for tests. */
export function mmdebstrapArgs(recipe: Recipe, target: string, asRoot: boolean, machineId: string, agentBinary?: string): string[] {
  const q = shellQuote;
  const files = listGuestFiles(recipe);
  const modes = files.map((f) => `chmod ${f.executable ? '0755' : '0644'} ${q(f.guestPath)}`);
  const inChroot = (cmds: string[]): string => `chroot "$1" sh -ec ${q(cmds.join('\n'))}`;
  const hooks = [
    // mmdebstrap copied the build host's files in; the recipe's guest files replace them
    'rm -f "$1/etc/resolv.conf" "$1/etc/hostname"',
    `sync-in ${q(recipe.guestDir)} /`,
    ...(agentBinary ? [`upload ${q(agentBinary)} ${AGENT_GUEST_PATH}`] : []),
    inChroot([
      ...files.map((f) => `chown 0:0 ${q(f.guestPath)}`),
      ...modes,
      ...(agentBinary ? [`chown 0:0 ${AGENT_GUEST_PATH}`, `chmod 0755 ${AGENT_GUEST_PATH}`] : []),
      recipe.enableUnits.length ? `systemctl enable --quiet ${recipe.enableUnits.join(' ')}` : 'true',
      recipe.disableUnits.length ? `systemctl disable --quiet ${recipe.disableUnits.join(' ')}` : 'true',
      recipe.maskUnits.length ? `systemctl mask --quiet ${recipe.maskUnits.join(' ')}` : 'true',
    ]),
    `rm -f ${recipe.removePaths.map((p) => `"$1"${q(p)}`).join(' ')}`,
    // a real machine-id (per build; apply-identity sets each sprite's) keeps the golden boot from
    // being a systemd "first boot" (presets, transient id bind-mounted over /etc/machine-id)
    `printf '%s\\n' ${machineId} > "$1/etc/machine-id"`,
    'chmod 0444 "$1/etc/machine-id"',
    'ln -sf /etc/machine-id "$1/var/lib/dbus/machine-id"',
  ];
  const mirror = process.env.SPRITELY_DEBIAN_MIRROR;
  return [
    '--verbose',
    `--mode=${asRoot ? 'root' : 'unshare'}`,
    `--variant=${recipe.variant}`,
    `--include=${recipe.packages.join(',')}`,
    '--aptopt=Acquire::Languages "none"',
    '--dpkgopt=path-exclude=/usr/share/man/*',
    '--dpkgopt=path-exclude=/usr/share/doc/*',
    '--dpkgopt=path-include=/usr/share/doc/*/copyright',
    '--skip=cleanup/reproducible',
    ...hooks.map((h) => `--customize-hook=${h}`),
    recipe.suite,
    target,
    ...(mirror ? [mirror] : []),
  ];
}

async function runMmdebstrap(
  recipe: Recipe, target: string, asRoot: boolean, log: NodeJS.WritableStream,
  progress: (p: BuildProgress) => void, signal?: AbortSignal, agentBinary?: string,
): Promise<void> {
  const parser = new MmdebstrapProgress(progress);
  const args = mmdebstrapArgs(recipe, target, asRoot, randomBytes(16).toString('hex'), agentBinary);
  log.write(`$ mmdebstrap ${args.map(shellQuote).join(' ')}\n`);
  await run('mmdebstrap', args, { log, signal, onLine: (l) => parser.line(l), stdin: 'ignore' });
}

/** Turns mmdebstrap --verbose output (its `I:` lines plus apt and dpkg output) into phases. */
export class MmdebstrapProgress {
  private phase = 'resolving';
  private total = 0;
  private got = 0;
  private unpacked = 0;
  private setUp = 0;

  constructor(private readonly emit: (p: BuildProgress) => void) {}

  line(raw: string): void {
    const l = raw.trim();
    let m: RegExpMatchArray | null;
    if (l.startsWith('I: ')) {
      const msg = l.slice(3);
      const phase =
        /apt-get update/.test(msg) ? 'resolving'
        : /downloading packages/.test(msg) ? 'downloading'
        : /extracting archives/.test(msg) ? 'extracting'
        : /installing (essential|remaining) packages/.test(msg) ? 'installing'
        : /customize-hook/.test(msg) ? 'customizing'
        : /creating tarball|tarball/.test(msg) ? 'archiving'
        : null;
      if (phase) {
        if (phase === 'installing') { this.unpacked = 0; this.setUp = 0; }
        this.phase = phase;
        this.emit({ phase, message: msg });
      }
    } else if ((m = l.match(/^(\d+) upgraded, (\d+) newly installed/))) {
      this.total = Number(m[2]);
      this.got = 0;
      this.unpacked = 0;
      this.setUp = 0;
    } else if (this.total > 0 && (m = l.match(/^Get:\d+ \S+ \S+ \S+ (\S+) \S+ \S+ \[/))) {
      this.got++;
      this.emit({ phase: 'downloading', message: `downloading ${m[1]}`, fraction: this.fraction(this.got) });
    } else if ((m = l.match(/^Unpacking (\S+)/))) {
      this.unpacked++;
      this.emit({ phase: 'installing', message: `unpacking ${m[1]}`, fraction: this.fraction((this.unpacked + this.setUp) / 2) });
    } else if ((m = l.match(/^Setting up (\S+)/))) {
      this.setUp++;
      this.emit({ phase: 'installing', message: `setting up ${m[1]}`, fraction: this.fraction((this.unpacked + this.setUp) / 2) });
    } else if ((m = l.match(/^update-initramfs: Generating (\S+)/))) {
      this.emit({ phase: this.phase, message: `generating ${m[1]}` });
    }
  }

  private fraction(done: number): number | undefined {
    return this.total > 0 ? Math.min(1, done / this.total) : undefined;
  }
}

/** `name` → `version` for every installed package in a dpkg status file. */
export function parseDpkgStatus(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const stanza of text.split(/\n\n+/)) {
    const name = stanza.match(/^Package: (.+)$/m)?.[1];
    const version = stanza.match(/^Version: (.+)$/m)?.[1];
    const status = stanza.match(/^Status: (.+)$/m)?.[1];
    if (name && version && status?.endsWith(' installed')) out[name] = version;
  }
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => (a < b ? -1 : 1)));
}

const TOOLS: Array<{ cmd: string; pkg: string; unshareOnly?: boolean }> = [
  { cmd: 'mmdebstrap', pkg: 'mmdebstrap' },
  { cmd: 'mke2fs', pkg: 'e2fsprogs' },
  { cmd: 'qemu-img', pkg: 'qemu-utils' },
  { cmd: 'tar', pkg: 'tar' },
  { cmd: 'go', pkg: 'golang-go' },
  { cmd: 'newuidmap', pkg: 'uidmap', unshareOnly: true },
];

async function checkTools(asRoot: boolean): Promise<void> {
  const missing = [];
  for (const t of TOOLS) {
    if (t.unshareOnly && asRoot) continue;
    if (!(await onPath(t.cmd))) missing.push(t);
  }
  if (missing.length) {
    throw new ImageBuildError(
      `cannot build the image: ${missing.map((t) => t.cmd).join(', ')} not found; ` +
        `install with: sudo apt-get install ${[...new Set(missing.map((t) => t.pkg))].join(' ')}`,
    );
  }
}

async function onPath(cmd: string): Promise<boolean> {
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/sbin', '/usr/bin', '/bin'];
  for (const dir of dirs) {
    if (!dir) continue;
    try {
      await fs.access(path.join(dir, cmd), fs.constants.X_OK);
      return true;
    } catch {}
  }
  return false;
}

/** Removes `<id>.partial-*` directories whose builder process is gone. */
async function removeStalePartials(imagesDir: string, id: string, asRoot: boolean): Promise<void> {
  for (const name of await fs.readdir(imagesDir)) {
    if (!name.startsWith(`${id}.partial-`)) continue;
    const dir = path.join(imagesDir, name);
    const pid = Number((await fs.readFile(path.join(dir, 'builder.pid'), 'utf8').catch(() => '')).trim());
    if (pid > 0 && isAlive(pid)) continue;
    await removeTree(dir, asRoot).catch(() => {});
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** rm -rf; falls back to mmdebstrap's user namespace for files it created under sub-uids. */
async function removeTree(dir: string, asRoot: boolean): Promise<void> {
  try {
    await fs.rm(dir, { recursive: true, force: true });
  } catch (err) {
    if (asRoot) throw err;
    await run('mmdebstrap', ['--unshare-helper', 'rm', '-rf', dir], {});
  }
}

function pickLatest(members: string[], re: RegExp): string | undefined {
  return members
    .filter((m) => re.test(m))
    .sort((a, b) => a.localeCompare(b, 'en', { numeric: true }))
    .pop();
}

async function writeFileSynced(file: string, data: string): Promise<void> {
  const fh = await fs.open(file, 'w', 0o644);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

interface RunOptions {
  cwd?: string;
  log?: NodeJS.WritableStream;
  signal?: AbortSignal;
  onLine?: (line: string) => void;
  stdin?: 'ignore' | 'pipe';
}

/** Runs a command, tees stdout+stderr to the log, and fails with the output's tail. */
function run(cmd: string, args: string[], opts: RunOptions): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, stdio: [opts.stdin ?? 'ignore', 'pipe', 'pipe'], signal: opts.signal });
    const tail: string[] = [];
    let partial = '';
    const onData = (chunk: Buffer): void => {
      opts.log?.write(chunk);
      const lines = (partial + chunk.toString('utf8')).split(/\r?\n|\r/);
      partial = lines.pop() ?? '';
      for (const line of lines) {
        tail.push(line);
        if (tail.length > 30) tail.shift();
        opts.onLine?.(line);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('error', (err) => reject(err.name === 'AbortError' ? new ImageBuildError('image build aborted') : err));
    child.on('close', (code, sig) => {
      if (partial) tail.push(partial);
      if (code === 0) resolve();
      else reject(new ImageBuildError(`${cmd} failed (${sig ?? `exit ${code}`}):\n${tail.join('\n')}`));
    });
  });
}

/** Runs a command and returns its stdout. */
function capture(cmd: string, args: string[], signal?: AbortSignal): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], signal });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve(Buffer.concat(out)) : reject(new ImageBuildError(`${cmd} ${args.join(' ')} failed: ${Buffer.concat(err).toString('utf8').trim()}`)),
    );
  });
}

function shellQuote(s: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
