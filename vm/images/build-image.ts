/**
 * Builds the default guest image from Debian packages, with no loop mounts and no network besides
 * the Debian mirror: mmdebstrap (mmdebstrap.ts) → rootfs tarball → ext4 made with `mke2fs -d`
 * straight onto a raw file (the whole disk is the file system, no partition table, so the engine
 * can grow it online) → the driver's disk format (`toDisk`: qcow2 under QEMU), read-only, + kernel
 * + initrd for direct boot + image.json.
 *
 * Images are content-addressed (recipe.ts): a finished image directory is never modified. The
 * build happens in `<id>.partial-<random>/` and is renamed into place as the very last step, so a
 * killed build never leaves a directory that looks like a finished image.
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { capture, ImageBuildError, isAlive, onPath, removeTree, run } from './build-commands.ts';
import { parseDpkgStatus, runMmdebstrap, type BuildProgress } from './mmdebstrap.ts';
import { DEFAULT_RECIPE, IMAGE_FORMAT_VERSION, imageId, recipeHash, type Recipe } from './recipe.ts';
import { buildAgent, hostDpkgArch } from '../guest/agent-build.ts';

export { ImageBuildError, type BuildProgress };

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
  /** Recipe.network (absent in images from before the host network stack). */
  network?: 'netstack';
}

export interface ImagePaths {
  dir: string;
  disk: string;
  kernel: string;
  initrd: string;
  info: string;
  log: string;
}

export interface BuildImageOptions {
  imagesDir: string;
  /** Makes the disk the driver boots from out of the raw filesystem image (read-only afterwards). */
  toDisk: (raw: string, disk: string) => Promise<void>;
  recipe?: Recipe;
  onProgress?: (p: BuildProgress) => void;
  signal?: AbortSignal;
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

    progress({ phase: 'converting', message: 'converting to the disk format' });
    await opts.toDisk(raw, path.join(work, 'base.qcow2'));
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
      network: recipe.network,
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

const TOOLS: Array<{ cmd: string; pkg: string; unshareOnly?: boolean }> = [
  { cmd: 'mmdebstrap', pkg: 'mmdebstrap' },
  { cmd: 'go', pkg: 'golang-go' },
  { cmd: 'mke2fs', pkg: 'e2fsprogs' },
  { cmd: 'tar', pkg: 'tar' },
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

