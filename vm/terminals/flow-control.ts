/**
 * Credit-based flow control for output streams (as VS Code's terminals do): the producer is
 * paused while a consumer has more than HIGH unacknowledged bytes and resumed once every consumer
 * is below LOW. The consumer acks after it has actually parsed/written the bytes, so a slow
 * window or a slow pipe holds the guest's process back instead of growing memory anywhere.
 */
export const TERMINAL_HIGH_WATER = 100_000;
export const TERMINAL_LOW_WATER = 5_000;
export const EXEC_HIGH_WATER = 1024 * 1024;
export const EXEC_LOW_WATER = 128 * 1024;

export class FlowGate {
  private unacked = new Map<object, number>();
  private paused = false;

  constructor(
    private readonly high: number,
    private readonly low: number,
    private readonly onPause: () => void,
    private readonly onResume: () => void,
  ) {}

  add(consumer: object): void {
    this.unacked.set(consumer, 0);
  }

  remove(consumer: object): void {
    this.unacked.delete(consumer);
    this.update();
  }

  sent(consumer: object, bytes: number): void {
    if (!this.unacked.has(consumer)) return;
    this.unacked.set(consumer, this.unacked.get(consumer)! + bytes);
    this.update();
  }

  acked(consumer: object, bytes: number): void {
    if (!this.unacked.has(consumer)) return;
    this.unacked.set(consumer, Math.max(0, this.unacked.get(consumer)! - bytes));
    this.update();
  }

  get isPaused(): boolean {
    return this.paused;
  }

  private update(): void {
    const worst = Math.max(0, ...this.unacked.values());
    if (!this.paused && worst > this.high) {
      this.paused = true;
      this.onPause();
    } else if (this.paused && worst < this.low) {
      this.paused = false;
      this.onResume();
    }
  }
}

/**
 * Collects small chunks and hands them on in one piece every `windowMs` (or at `maxBytes`). The
 * first chunk after a quiet window goes out at once (a keystroke's echo waits for no timer); what
 * follows it within the window is batched, so a burst of output still costs one message per window.
 */
export class OutputBatcher {
  private chunks: Buffer[] = [];
  private size = 0;
  private timer: NodeJS.Timeout | null = null;
  private lastFlush = -Infinity;

  constructor(
    private readonly flushTo: (data: Buffer) => void,
    private readonly windowMs = 5,
    private readonly maxBytes = 64 * 1024,
    private readonly now: () => number = () => performance.now(),
  ) {}

  push(data: Buffer): void {
    if (!this.size && !this.timer && this.now() - this.lastFlush >= this.windowMs) {
      this.lastFlush = this.now();
      this.flushTo(data);
      return;
    }
    this.chunks.push(data);
    this.size += data.length;
    if (this.size >= this.maxBytes) this.flush();
    else if (!this.timer) this.timer = setTimeout(() => this.flush(), this.windowMs);
  }

  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (!this.size) return;
    this.lastFlush = this.now();
    const data = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks);
    this.chunks = [];
    this.size = 0;
    this.flushTo(data);
  }
}

/** Keeps the newest `capacity` bytes of a stream, for replay to a client that (re)attaches. */
export class RingBuffer {
  private chunks: Buffer[] = [];
  private size = 0;

  constructor(private readonly capacity: number) {}

  push(data: Buffer): void {
    this.chunks.push(data);
    this.size += data.length;
    while (this.size > this.capacity && this.chunks.length) {
      const over = this.size - this.capacity;
      const first = this.chunks[0];
      if (first.length <= over) {
        this.chunks.shift();
        this.size -= first.length;
      } else {
        this.chunks[0] = first.subarray(over);
        this.size -= over;
      }
    }
  }

  contents(): Buffer {
    return Buffer.concat(this.chunks);
  }

  get length(): number {
    return this.size;
  }
}
