/**
 * A `DiskReader` over a raw disk image file (no format: byte n of the file is byte n of the disk).
 * The fake driver serves its disks' snapshots through it; specs read filesystem images with it.
 */
import fs from 'node:fs';
import type { DiskReader } from './driver.ts';

export class RawFileReader implements DiskReader {
  private constructor(
    private readonly fd: number,
    readonly size: number,
  ) {}

  static open(file: string): RawFileReader {
    const fd = fs.openSync(file, 'r');
    return new RawFileReader(fd, fs.fstatSync(fd).size);
  }

  read(offset: number, length: number): Buffer {
    const b = Buffer.alloc(length);
    let done = 0;
    while (done < length && offset + done < this.size) {
      const n = fs.readSync(this.fd, b, done, length - done, offset + done);
      if (n === 0) break;
      done += n;
    }
    return b;
  }

  where(): string | null {
    return null;
  }

  close(): void {
    fs.closeSync(this.fd);
  }
}
