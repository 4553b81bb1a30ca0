/**
 * Unpacks a sprite's tar stream into one fresh directory on this computer, trusting nothing in it.
 * The stream is parsed in Node (tar-stream), each entry is judged by tar-entry-policy.ts, and every
 * file, directory and symlink is made here by this module, under a name the host derived: files
 * with O_CREAT|O_EXCL|O_NOFOLLOW, no owner or setuid/setgid/sticky bit taken from the archive. The
 * bytes and entries are capped. The tree stays in the fresh directory (directories 0700 until it
 * is placed); cp-place.ts moves it to the destination and applies the directories' modes.
 *
 * Flow control: `write` resolves only once the parser has consumed the chunk (it went into a file
 * or a header), so the caller acknowledges to the sprite no faster than this computer writes.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { extract, type Extract, type Header } from 'tar-stream';
import { SpritelyError } from '../errors.ts';
import { quoteName, safeText } from '../safe-text.ts';
import { decideEntry, entryMode, type Made } from './tar-entry-policy.ts';

export interface ExtractLimits {
  /** Bytes of tar stream (headers included). */
  maxBytes: number;
  /** Bytes of one file. */
  maxFileBytes: number;
  /** Entries of any kind. */
  maxEntries: number;
}

/** What the sending tar may pad its last record with beyond --max-size (cp-plan.ts: -b 256). */
export const RECORD_PADDING = 128 * 1024;

/** Above what a default sprite's disk (4 GiB) can hold; raised with --max-size / --max-file-size / --max-entries. */
export const DEFAULT_LIMITS: ExtractLimits = { maxBytes: 8 * 1024 ** 3, maxFileBytes: 4 * 1024 ** 3, maxEntries: 1_000_000 };

/** The archive broke a rule: nothing of it may be kept. */
export class TarRefusal extends SpritelyError {}

/** The archive stopped early (what a tar that failed half-way sends, too). */
export class TarTruncated extends TarRefusal {}

export interface ExtractOptions {
  /** The fresh, empty 0700 directory (made with mkdtemp) the tree is made in, as `TREE_NAME`. */
  dir: string;
  /** The one top-level name expected in the archive: the source's base name, or "." for "SRC/.". */
  top: string;
  topKind: 'file' | 'dir';
  limits: ExtractLimits;
  umask: number;
}

export interface ExtractedDir {
  /** Path components below the top-level entry ([] is the top). */
  rel: string[];
  /** Permission bits to give it once placed; null keeps the default (the "." of "SRC/." — never the sprite's). */
  mode: number | null;
  mtime: Date;
}

export interface ExtractedTree {
  /** The top-level entry, inside the fresh directory. */
  path: string;
  kind: 'file' | 'dir';
  /** Every directory made, parents first. */
  dirs: ExtractedDir[];
  entries: number;
  /** Bytes of tar stream read. */
  bytes: number;
}

/** The name of the top-level entry inside the fresh directory (the archive never chooses it). */
export const TREE_NAME = 'tree';
const END_MARKER = 1024;
const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = fs.constants;

export class TarExtractor {
  /** Rejects with the first refusal or write error (the caller stops the sprite's side then). */
  readonly failed: Promise<never>;
  private readonly ex: Extract;
  private readonly made: Made = new Map();
  private readonly dirs: ExtractedDir[] = [];
  private readonly root: string;
  private error: Error | null = null;
  private rejectFailed!: (err: Error) => void;
  private waiters: { resolve: () => void; reject: (err: Error) => void }[] = [];
  private received = 0;
  private entries = 0;
  private tail = Buffer.alloc(0);
  /** The file write in progress (settled: none). */
  private inflight: Promise<unknown> = Promise.resolve();

  constructor(private readonly opts: ExtractOptions) {
    this.root = path.join(opts.dir, TREE_NAME);
    this.failed = new Promise<never>((_, reject) => (this.rejectFailed = reject));
    this.failed.catch(() => {});
    // A high-water mark of one byte: every write waits for 'drain', which comes once the parser
    // has handed everything written so far to an entry (or a header) — that is "consumed".
    this.ex = extract({ highWaterMark: 1 });
    // …and whose bytes taken out of an entry's stream are on disk (the write in flight).
    this.ex.on('drain', () => {
      const drained = this.waiters.splice(0);
      void this.inflight.then(() => drained.forEach((w) => w.resolve()));
    });
    this.ex.on('error', (err: Error) => this.fail(parseError(err)));
    this.ex.on('entry', (header, stream, next) => {
      // Destroyed with the parser when the archive is refused: its error is reported from there.
      stream.on('error', () => {});
      this.entry(header, stream as unknown as EntryStream).then(
        () => next(),
        (err: Error) => {
          this.fail(err);
          next(this.error!);
        },
      );
    });
  }

  /** Resolves once the chunk is consumed; rejects if the extraction has failed. */
  write(chunk: Buffer): Promise<void> {
    if (this.error) return Promise.reject(this.error);
    if (chunk.length === 0) return Promise.resolve();
    this.received += chunk.length;
    // the sender pads its last record (tar -b 256: 128 KiB): that padding is not the archive's size
    if (this.received > this.opts.limits.maxBytes + RECORD_PADDING) {
      this.fail(new TarRefusal('payload_too_large', `the archive is larger than the limit of ${this.opts.limits.maxBytes} bytes (raise it with --max-size)`));
      return Promise.reject(this.error);
    }
    this.tail = Buffer.concat([this.tail, chunk.subarray(-END_MARKER)]).subarray(-END_MARKER);
    return new Promise((resolve, reject) => {
      this.waiters.push({ resolve, reject });
      this.ex.write(chunk); // always false (high-water mark 1): settled by 'drain' or a failure
    });
  }

  /** The stream is complete: finish the last entry and check the archive ended properly. */
  async end(): Promise<ExtractedTree> {
    if (this.error) throw this.error;
    await new Promise<void>((resolve, reject) => {
      this.ex.once('finish', resolve);
      this.failed.catch(reject);
      this.ex.end(null);
    });
    if (this.error) throw this.error;
    if (!this.made.has('')) this.fail(new TarRefusal('failed_precondition', `the archive has no entry ${quoteName(this.opts.top)}`));
    else if (this.tail.length < END_MARKER || this.tail.some((b) => b !== 0)) this.fail(new TarTruncated('failed_precondition', 'the archive ends without tar\'s end-of-archive marker (it was cut short)'));
    if (this.error) throw this.error;
    return { path: this.root, kind: this.opts.topKind, dirs: this.dirs, entries: this.entries, bytes: this.received };
  }

  /** Stops: nothing more is written (the caller removes the fresh directory). */
  destroy(reason = new SpritelyError('internal', 'the copy was stopped')): void {
    this.fail(reason);
  }

  private fail(err: Error): void {
    if (this.error) return;
    this.error = err;
    this.rejectFailed(err);
    this.waiters.splice(0).forEach((w) => w.reject(err));
    this.ex.destroy(err);
  }

  private async entry(h: Header, stream: EntryStream): Promise<void> {
    if (this.error) throw this.error;
    if (++this.entries > this.opts.limits.maxEntries) {
      throw new TarRefusal('payload_too_large', `the archive has more than ${this.opts.limits.maxEntries} entries (raise the limit with --max-entries)`);
    }
    const d = decideEntry(h, { top: this.opts.top, topKind: this.opts.topKind, made: this.made, maxFileBytes: this.opts.limits.maxFileBytes });
    if ('refused' in d) throw new TarRefusal('failed_precondition', `the entry ${quoteName(h.name)} ${d.refused}`);
    const p = path.join(this.root, ...d.rel);
    const key = d.rel.join('/');
    const mtime = Number.isFinite(h.mtime?.getTime()) ? h.mtime : new Date();
    try {
      if (d.kind === 'file') {
        await this.writeFile(p, h, stream, mtime);
        this.made.set(key, 'file');
        return;
      }
      if (d.kind === 'dir') {
        await fsp.mkdir(p, { mode: 0o700 });
        this.made.set(key, 'dir');
        this.dirs.push({ rel: d.rel, mode: d.rel.length === 0 && this.opts.top === '.' ? null : entryMode(h.mode, this.opts.umask), mtime });
      } else if (d.kind === 'symlink') {
        await fsp.symlink(h.linkname!, p);
        await fsp.lutimes(p, mtime, mtime);
        this.made.set(key, 'symlink');
      } else if (d.kind === 'hardlink') {
        await fsp.link(path.join(this.root, ...d.target), p);
        this.made.set(key, 'file');
      }
    } catch (err) {
      throw writeError(err, h.name);
    }
  }

  /**
   * Copies an entry's data into `fh`. Read by hand, not with `for await`: a chunk taken with
   * `read()` is in a started write (`inflight`) before the parser — which runs a microtask later —
   * can report the chunk consumed.
   */
  private async pour(stream: EntryStream, fh: fsp.FileHandle): Promise<number> {
    let written = 0;
    let ended = false;
    let failed: Error | null = null;
    let wake: (() => void) | null = null;
    const poke = () => {
      const w = wake;
      wake = null;
      w?.();
    };
    stream.on('readable', poke);
    stream.on('end', () => ((ended = true), poke()));
    stream.on('close', () => ((ended = true), poke()));
    stream.on('error', (err) => ((failed = err), poke()));
    for (;;) {
      if (failed) throw failed;
      const chunk = stream.read() as Buffer | null;
      if (chunk !== null) {
        written += chunk.length;
        const w = writeAll(fh, chunk);
        this.inflight = w.catch(() => {});
        await w;
        continue;
      }
      if (ended) return written;
      await new Promise<void>((resolve) => (wake = resolve));
    }
  }

  private async writeFile(p: string, h: Header, stream: EntryStream, mtime: Date): Promise<void> {
    let fh: fsp.FileHandle | undefined;
    let written = 0;
    try {
      fh = await fsp.open(p, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
      written = await this.pour(stream, fh);
      if (written !== h.size) throw new TarTruncated('failed_precondition', `the archive ends in the middle of ${quoteName(h.name)}`);
      await fh.chmod(entryMode(h.mode, this.opts.umask));
      await fh.utimes(mtime, mtime);
    } catch (err) {
      throw writeError(err, h.name);
    } finally {
      await fh?.close();
    }
  }
}

async function writeAll(fh: fsp.FileHandle, chunk: Buffer): Promise<void> {
  for (let off = 0; off < chunk.length; ) off += (await fh.write(chunk, off)).bytesWritten;
}

/** An entry's stream as tar-stream hands it over (a streamx Readable; its typings are partial). */
interface EntryStream {
  read(): unknown;
  on(event: 'readable' | 'end' | 'close', fn: () => void): unknown;
  on(event: 'error', fn: (err: Error) => void): unknown;
}

/** tar-stream's own errors, said in terms of what the sprite sent. */
function parseError(err: Error): Error {
  if (err instanceof SpritelyError) return err;
  const msg = err?.message ?? String(err);
  if (/Unexpected end of data/.test(msg)) return new TarTruncated('failed_precondition', 'the archive ends in the middle of an entry');
  return new TarRefusal('failed_precondition', `the archive is not a valid tar stream (${safeText(msg, { maxChars: 200 })})`);
}

function writeError(err: unknown, name: string): Error {
  if (err instanceof SpritelyError) return err;
  const e = err as NodeJS.ErrnoException;
  if (!e?.code) return parseError(e); // the parser's error, seen through the entry's stream
  // Only the archive's own duplicate names (in another spelling, on a case- or
  // normalization-insensitive file system) can make a fresh directory's entry exist already.
  if (e?.code === 'EEXIST') return new TarRefusal('failed_precondition', `the entry ${quoteName(name)} has the same name on this computer's file system as an earlier one`);
  if (e?.code === 'ENOSPC') return new SpritelyError('resource_exhausted', `No space left on this computer while writing ${quoteName(name)}.`);
  return new SpritelyError('internal', `Could not write ${quoteName(name)} on this computer: ${safeText(e?.message ?? String(err), { maxChars: 300 })}`);
}
