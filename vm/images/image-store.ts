/**
 * The images a sprite can be made from: read-only, content-addressed directories under the images
 * dir (`<id>/base.qcow2`, `vmlinuz`, `initrd.img`, `image.json`). Builds the default image on first
 * use (one build at a time, progress reported) and never touches an image once it exists.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { BootFiles, DiskOps } from '../driver/driver.ts';
import { SpritelyError } from '../errors.ts';
import { readJson } from '../store/atomic-json.ts';
import { buildImage } from './build-image.ts';
import { DEFAULT_RECIPE, imageId } from './recipe.ts';

export interface ImageRecord {
  id: string;
  dir: string;
  baseDisk: string;
  kernel: string;
  initrd: string;
  kernelCmdline: string;
  diskVirtualBytes: number;
  createdAt: string;
  sizeBytes: number;
  /**
   * Its guest has its own network on a second NIC, served by the host network stack (images
   * built before it reach out through the guest agent's relay instead: docs/network.md).
   */
  netstack: boolean;
}

/** What the driver boots an image's machines with. */
export function bootFiles(image: ImageRecord): BootFiles {
  return { kernel: image.kernel, initrd: image.initrd, cmdline: image.kernelCmdline, ...(image.netstack ? { netstack: true } : {}) };
}

export interface ImageProgress {
  image: string;
  phase: string;
  message: string;
  fraction?: number;
}

export class ImageStore {
  private building: Promise<ImageRecord> | null = null;

  constructor(
    readonly imagesDir: string,
    private readonly log: (msg: string) => void,
    /** The driver's disks (an image's base disk is made in its format). */
    private readonly disks?: Pick<DiskOps, 'importRaw'>,
  ) {}

  defaultImageId(): string {
    return imageId(DEFAULT_RECIPE);
  }

  get(id: string): ImageRecord | null {
    if (!/^[a-z0-9][a-z0-9.-]*$/.test(id)) return null;
    const dir = path.join(this.imagesDir, id);
    const meta = readJson<any>(path.join(dir, 'image.json'));
    if (!meta) return null;
    const baseDisk = path.join(dir, 'base.qcow2');
    return {
      id,
      dir,
      baseDisk,
      kernel: path.join(dir, 'vmlinuz'),
      initrd: path.join(dir, 'initrd.img'),
      kernelCmdline: meta.kernelCmdline,
      diskVirtualBytes: meta.diskVirtualBytes,
      createdAt: meta.createdAt,
      sizeBytes: safeSize(baseDisk),
      netstack: meta.network === 'netstack',
    };
  }

  list(): ImageRecord[] {
    if (!fs.existsSync(this.imagesDir)) return [];
    return fs
      .readdirSync(this.imagesDir)
      .map((id) => this.get(id))
      .filter((x): x is ImageRecord => x !== null);
  }

  /** The image `id` (default: the default recipe's), built now if it is the default and missing. */
  async ensure(id: string | undefined, onProgress?: (p: ImageProgress) => void, opts: { force?: boolean } = {}): Promise<ImageRecord> {
    const wanted = id ?? this.defaultImageId();
    const have = this.get(wanted);
    if (have && !opts.force) return have;
    if (wanted !== this.defaultImageId()) {
      throw new SpritelyError('not_found', `Image "${wanted}" does not exist. \`spritely image list\` shows the images you have; \`spritely image build\` builds the default one.`);
    }
    if (!this.building) {
      this.building = (async () => {
        this.log(`building image ${wanted}`);
        if (opts.force && have) fs.rmSync(have.dir, { recursive: true, force: true });
        const disks = this.disks;
        if (!disks) throw new Error('this image store cannot build images (it was made without a driver)');
        await buildImage({
          imagesDir: this.imagesDir,
          toDisk: (raw, disk) => disks.importRaw(raw, disk),
          onProgress: (p) => onProgress?.({ image: wanted, ...p }),
        });
        const built = this.get(wanted);
        if (!built) throw new Error(`the image build finished but ${wanted} is not in ${this.imagesDir}`);
        return built;
      })().finally(() => (this.building = null));
    }
    return this.building;
  }
}

function safeSize(file: string): number {
  try {
    return fs.statSync(file).blocks * 512;
  } catch {
    return 0;
  }
}
