/**
 * The serial console's log, kept by the daemon. QEMU used to write it itself (the chardev's
 * `logfile=`), which let a guest grow `serial.log` without bound: `cat /dev/zero > /dev/ttyS0` as
 * root fills the host's disk. Instead the daemon reads the console's socket and writes a bounded log:
 * `serial.log` is rotated at 1 MiB into `serial.log.1` (one previous file kept, so at most 2 MiB per
 * sprite), and reading is paced (256 KiB/s on average, a 1 MiB burst, at most ~50 reads a second),
 * so a guest flooding its console costs the daemon next to nothing: while the daemon does not read,
 * QEMU cannot write and the guest's console simply blocks — only that guest waits.
 *
 * The QEMU driver owns it, not the engine: the serial console is a device of the machine and its
 * socket a QEMU detail (another driver would bound its own console the same way), and the engine
 * never reads it. While no daemon runs nothing reads the socket, and QEMU drops what the guest
 * writes to its console (the log has a gap, and the guest is not held up).
 */
import fs from 'node:fs';
import net from 'node:net';

export interface SerialLogOptions {
  /** The console's socket (a QEMU chardev server). */
  socketPath: string;
  /** The log file; the previous one is `${file}.1`. */
  file: string;
  maxBytes?: number;
  /** Average read rate, and the burst allowed above it. */
  bytesPerSecond?: number;
  burstBytes?: number;
  /** The shortest pause between two reads (batches small writes into one). */
  minGapMs?: number;
  log?: (msg: string) => void;
}

/** Where serial.log starts over (SPRITELY_SERIAL_LOG_BYTES overrides it: the VM test uses a small one). */
export const SERIAL_LOG_MAX_BYTES = Number(process.env.SPRITELY_SERIAL_LOG_BYTES) >= 4096 ? Math.floor(Number(process.env.SPRITELY_SERIAL_LOG_BYTES)) : 1024 * 1024;
export const SERIAL_BYTES_PER_SECOND = 256 * 1024;

/** An append-only file that starts over at `maxBytes`, keeping the previous one as `FILE.1`. */
export class RotatingLog {
  private fd: number | null = null;
  private size = 0;

  constructor(
    readonly file: string,
    readonly maxBytes = SERIAL_LOG_MAX_BYTES,
  ) {}

  private open(): number {
    if (this.fd === null) {
      this.fd = fs.openSync(this.file, 'a', 0o600);
      this.size = fs.fstatSync(this.fd).size;
    }
    return this.fd;
  }

  write(chunk: Buffer): void {
    let data = chunk.length > this.maxBytes ? chunk.subarray(chunk.length - this.maxBytes) : chunk;
    let fd = this.open();
    if (this.size + data.length > this.maxBytes) {
      this.rotate();
      fd = this.open();
      const note = Buffer.from(`[spritely: ${new Date().toISOString()} this log reached ${this.maxBytes} bytes; the previous part is in ${this.file.slice(this.file.lastIndexOf('/') + 1)}.1]\n`);
      fs.writeSync(fd, note);
      this.size += note.length;
      if (this.size + data.length > this.maxBytes) data = data.subarray(data.length - (this.maxBytes - this.size));
    }
    fs.writeSync(fd, data);
    this.size += data.length;
  }

  private rotate(): void {
    this.close();
    try {
      fs.renameSync(this.file, `${this.file}.1`);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }

  close(): void {
    if (this.fd !== null) fs.closeSync(this.fd);
    this.fd = null;
  }
}

/** Reads a machine's serial console into a RotatingLog, paced, until closed. */
export class SerialLog {
  private readonly out: RotatingLog;
  private socket: net.Socket | null = null;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  private tokens: number;
  private lastRefill = Date.now();
  private retryMs = 100;
  private throttledSince: number | null = null;
  private lastThrottleLog = 0;
  private readonly rate: number;
  private readonly burst: number;
  private readonly minGapMs: number;

  constructor(private readonly opts: SerialLogOptions) {
    this.out = new RotatingLog(opts.file, opts.maxBytes);
    this.rate = opts.bytesPerSecond ?? SERIAL_BYTES_PER_SECOND;
    this.burst = opts.burstBytes ?? 4 * this.rate;
    this.minGapMs = opts.minGapMs ?? 20;
    this.tokens = this.burst;
    this.connect();
  }

  private connect(): void {
    if (this.closed) return;
    const s = net.connect(this.opts.socketPath);
    this.socket = s;
    s.once('connect', () => (this.retryMs = 100));
    s.on('data', (chunk: Buffer) => this.onData(s, chunk));
    s.on('error', () => {});
    s.on('close', (hadError) => {
      if (this.socket !== s || this.closed) return;
      this.socket = null;
      // not there yet (a launch in progress) or gone for a moment: try again, more slowly each time
      this.later(hadError ? this.retryMs : 1000, () => this.connect());
      this.retryMs = Math.min(this.retryMs * 2, 5000);
    });
  }

  private onData(s: net.Socket, chunk: Buffer): void {
    if (this.closed) return;
    try {
      this.out.write(chunk);
    } catch (err) {
      this.opts.log?.(`serial log ${this.opts.file}: ${(err as Error).message}; no longer kept`);
      return this.close();
    }
    const now = Date.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.lastRefill) / 1000) * this.rate) - chunk.length;
    this.lastRefill = now;
    const deficitMs = this.tokens < 0 ? (-this.tokens / this.rate) * 1000 : 0;
    if (deficitMs > 0 && this.throttledSince === null) {
      this.throttledSince = now;
      if (now - this.lastThrottleLog > 10 * 60_000) {
        this.lastThrottleLog = now;
        this.opts.log?.(`the guest writes to its serial console faster than ${this.rate / 1024} KiB/s; its console is slowed down to that (and ${this.opts.file} is rotated at ${this.out.maxBytes} bytes)`);
      }
    } else if (deficitMs === 0) this.throttledSince = null;
    s.pause();
    this.later(Math.max(this.minGapMs, deficitMs), () => {
      if (this.socket === s) s.resume();
    });
  }

  private later(ms: number, fn: () => void): void {
    if (this.closed) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      fn();
    }, ms);
    this.timer.unref();
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.socket?.destroy();
    this.socket = null;
    this.out.close();
  }
}
