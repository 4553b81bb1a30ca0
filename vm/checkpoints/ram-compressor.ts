/**
 * Compresses saved RAM states in the background, after the guest is running again (never while it
 * is paused: a checkpoint's pause stays the raw write). Which ones is the engine's choice: a
 * checkpoint's state once it is no longer among the newest few (restoring from a compressed state
 * costs its decompression), and sleep states. One state at a time for the whole daemon,
 * at the lowest CPU priority, so sprites' guests keep their cores. The file steps are
 * state-files.ts's: the compressed form appears only once complete and fsynced, then the raw one
 * goes. Anything about to delete or move a state cancels its job first (`cancel`, synchronous):
 * the job's last step — rename, then remove the raw file — is synchronous too, so no removal can
 * interleave with it.
 *
 * lz4 (level 1, no content checksum, 64 KiB blocks): a restore decompresses through `lz4 -dc` into
 * QEMU's incoming migration, and lz4 without its checksum decompresses ~3 GB/s, faster than QEMU
 * reads a state, so a compressed restore costs what a raw one does (zstd -3 saved a little more and
 * made restores 40–70% slower; docs/benchmarks.md). Small blocks because lz4 writes a block only
 * once it is whole: with its default 4 MiB blocks QEMU, reading through a 64 KiB pipe, stood idle
 * while each one was decompressed (a wake after 200 MB in RAM: 622–661 ms against 405–473 ms
 * with 64 KiB blocks). No checksum, as a raw state has none: a state is written, fsynced and read
 * back only by the daemon.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { compressedOf, completeState, partialOf } from './state-files.ts';

/** Writes `src` compressed to `dest`; rejects on failure or when `signal` aborts. */
export type Compress = (src: string, dest: string, signal: AbortSignal) => Promise<void>;

export const LZ4_LEVEL = 1;
/** lz4's block size: `-B4` is 64 KiB (see above). */
export const LZ4_BLOCK = '-B4';

/** How many of a sprite's newest checkpoint RAM states stay raw (fast to restore); older ones are compressed. */
export const DEFAULT_KEEP_RECENT_RAW = Math.max(0, Number(process.env.SPRITELY_RAW_RECENT ?? 2) || 0);

/** The real compressor: lz4 at the lowest priority (nice 19). */
export const lz4Compress: Compress = (src, dest, signal) =>
  new Promise((resolve, reject) => {
    const args = ['-q', `-${LZ4_LEVEL}`, LZ4_BLOCK, '--no-frame-crc', '-f', '--', src, dest];
    const child = spawn('nice', ['-n', '19', 'lz4', ...args], { stdio: ['ignore', 'ignore', 'pipe'], signal });
    let err = '';
    child.stderr.on('data', (c) => (err = (err + c).slice(-2000)));
    child.on('error', (e) => reject((e as Error).name === 'AbortError' ? new Error('cancelled') : new Error(`could not run lz4: ${e.message}`)));
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`lz4 exited ${code}: ${err.trim()}`))));
  });

interface Job {
  file: string;
  owner: string;
  abort: AbortController;
  cancelled: boolean;
}

export class RamCompressor {
  private readonly queue: Job[] = [];
  private running: Job | null = null;
  private waiters: (() => void)[] = [];
  private stopped = false;

  constructor(
    private readonly compress: Compress,
    private readonly log: (msg: string) => void,
    /** A state of `owner` was compressed (its size changed). */
    private readonly done: (owner: string) => void,
    /** Off: nothing is queued (SPRITELY_COMPRESS_RAM=0; benchmarks compare both). */
    public enabled = true,
    /** Checkpoints' newest RAM states kept raw (see ramToCompress). */
    readonly keepRecentRaw = DEFAULT_KEEP_RECENT_RAW,
  ) {}

  /** Queues a raw state (no-op when it is queued already or compression is off). */
  enqueue(file: string, owner: string): void {
    if (!this.enabled || this.stopped || this.running?.file === file || this.queue.some((j) => j.file === file)) return;
    this.queue.push({ file, owner, abort: new AbortController(), cancelled: false });
    if (!this.running) void this.next();
  }

  /** Stops any work on `file` at once; its partial output is removed. Synchronous. */
  cancel(file: string): void {
    const i = this.queue.findIndex((j) => j.file === file);
    if (i >= 0) this.queue.splice(i, 1);
    if (this.running?.file === file) {
      this.running.cancelled = true;
      this.running.abort.abort();
    }
    fs.rmSync(partialOf(file), { force: true });
  }

  /** Cancels every job of `owner` (a sprite destroyed) or whose file is under `dir`. */
  cancelUnder(dir: string): void {
    for (const j of [...this.queue, ...(this.running ? [this.running] : [])]) if (j.file.startsWith(dir + path.sep)) this.cancel(j.file);
  }

  /**
   * The daemon is exiting: nothing more starts, and a running lz4 is ended (its partial output
   * removed; the raw state stays and the next daemon compresses it).
   */
  stop(): void {
    this.stopped = true;
    for (const j of this.queue.splice(0)) fs.rmSync(partialOf(j.file), { force: true });
    if (this.running) this.cancel(this.running.file);
  }

  /** Resolves when nothing is queued or running (tests, benchmarks, shutdown). */
  idle(): Promise<void> {
    if (!this.running && !this.queue.length) return Promise.resolve();
    return new Promise((r) => this.waiters.push(r));
  }

  get pending(): string[] {
    return [...(this.running ? [this.running.file] : []), ...this.queue.map((j) => j.file)];
  }

  private async next(): Promise<void> {
    const job = this.queue.shift();
    if (!job) {
      this.running = null;
      for (const w of this.waiters.splice(0)) w();
      return;
    }
    this.running = job;
    const partial = partialOf(job.file);
    try {
      if (completeState(job.file) === job.file) {
        const t0 = Date.now();
        await this.compress(job.file, partial, job.abort.signal);
        const fh = await fs.promises.open(partial, 'r');
        try {
          await fh.sync();
        } finally {
          await fh.close();
        }
        // From here on synchronous: a cancel cannot come between the check and the rename.
        if (job.cancelled || !fs.existsSync(job.file)) {
          fs.rmSync(partial, { force: true });
        } else {
          const raw = fs.statSync(job.file).size;
          fs.renameSync(partial, compressedOf(job.file));
          fsyncDir(path.dirname(job.file));
          fs.rmSync(job.file, { force: true });
          const packed = fs.statSync(compressedOf(job.file)).size;
          this.log(`${path.basename(job.file)} of ${job.owner}: RAM state compressed ${mib(raw)} → ${mib(packed)} MiB in ${Date.now() - t0} ms`);
          this.done(job.owner);
        }
      }
    } catch (err) {
      // (a cancel removed the partial output already; it may be a newer job's by now)
      if (!job.cancelled) fs.rmSync(partial, { force: true });
      if (!job.cancelled) this.log(`${path.basename(job.file)} of ${job.owner}: could not compress the RAM state (kept as it is): ${(err as Error).message}`);
    }
    await this.next();
  }
}

function mib(n: number): string {
  return (n / 2 ** 20).toFixed(0);
}

function fsyncDir(dir: string): void {
  try {
    const fd = fs.openSync(dir, 'r');
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    /* best effort: the rename itself is atomic */
  }
}
