/**
 * Small JSON files written so a crash or a full disk never leaves a torn one: write a temp file,
 * fsync, rename over the old (write-file-atomic does exactly that). And `fsyncFile` /
 * `fsyncFileAsync`, for big files written by others (RAM states) that must be on disk before a
 * manifest points at them: the async one off the event loop (a few hundred MiB take tens to
 * hundreds of ms, which would stall every other sprite's streams), the sync one only where the
 * caller must not yield.
 */
import fs from 'node:fs';
import writeFileAtomic from 'write-file-atomic';

export async function writeJsonAtomic(file: string, value: unknown, mode = 0o600): Promise<void> {
  await writeFileAtomic(file, JSON.stringify(value, null, 2) + '\n', { mode, fsync: true });
}

/** The same, for callers that must not yield (a settings save inside a synchronous update). */
export function writeJsonAtomicSync(file: string, value: unknown, mode = 0o600): void {
  writeFileAtomic.sync(file, JSON.stringify(value, null, 2) + '\n', { mode, fsync: true });
}

export function readJson<T = unknown>(file: string): T | null {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new Error(`${file} is unreadable or not JSON: ${(err as Error).message}`);
  }
}

export function fsyncFile(file: string): void {
  const fd = fs.openSync(file, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

export async function fsyncFileAsync(file: string): Promise<void> {
  const fh = await fs.promises.open(file, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
