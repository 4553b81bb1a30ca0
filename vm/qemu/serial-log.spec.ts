import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RotatingLog, SerialLog } from './serial-log.ts';

let dir: string;
const cleanups: (() => void)[] = [];
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'serial-'));
});
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
  fs.rmSync(dir, { recursive: true, force: true });
});

const size = (f: string) => (fs.existsSync(f) ? fs.statSync(f).size : 0);

describe('RotatingLog', () => {
  it('appends, and starts over at the cap keeping one previous file (with a note saying where it went)', () => {
    const file = path.join(dir, 'serial.log');
    fs.writeFileSync(file, 'from before\n');
    const log = new RotatingLog(file, 200);
    log.write(Buffer.from('a'.repeat(150)));
    expect(size(file)).toBe(162);
    log.write(Buffer.from('b'.repeat(50)));
    expect(fs.readFileSync(`${file}.1`, 'utf8')).toBe('from before\n' + 'a'.repeat(150));
    expect(fs.readFileSync(file, 'utf8')).toMatch(/^\[spritely: \S+ this log reached 200 bytes; the previous part is in serial\.log\.1\]\nb{50}$/);
    log.close();
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
  });

  it('never holds more than the cap per file, whatever it is given', () => {
    const file = path.join(dir, 'serial.log');
    const log = new RotatingLog(file, 1000);
    for (let i = 0; i < 500; i++) {
      log.write(Buffer.alloc(1 + ((i * 37) % 1500), 0x41 + (i % 26)));
      expect(size(file)).toBeLessThanOrEqual(1000);
      expect(size(`${file}.1`)).toBeLessThanOrEqual(1000);
    }
    log.close();
    expect(fs.readdirSync(dir).sort()).toEqual(['serial.log', 'serial.log.1']);
  });
});

describe('SerialLog', () => {
  /** A console socket that floods whoever connects, counting what it could write. */
  async function floodingConsole(sock: string): Promise<{ written: () => number }> {
    let written = 0;
    const chunk = Buffer.alloc(16 * 1024, 0x41);
    const server = net.createServer((s) => {
      s.on('error', () => {});
      const pump = () => {
        while (!s.destroyed && s.write(chunk)) written += chunk.length;
        if (!s.destroyed) s.once('drain', pump);
      };
      pump();
    });
    await new Promise<void>((r) => server.listen(sock, r));
    cleanups.push(() => server.close());
    return { written: () => written };
  }

  it('a flooding console is read at the paced rate, the log stays under its cap, and the flood is logged once', async () => {
    const sock = path.join(dir, 's');
    const flood = await floodingConsole(sock);
    const logs: string[] = [];
    const file = path.join(dir, 'serial.log');
    const serial = new SerialLog({ socketPath: sock, file, maxBytes: 64 * 1024, bytesPerSecond: 100 * 1024, burstBytes: 100 * 1024, log: (m) => logs.push(m) });
    cleanups.push(() => serial.close());
    const t0 = Date.now();
    await new Promise((r) => setTimeout(r, 1500));
    const secs = (Date.now() - t0) / 1000;
    const read = size(file) + size(`${file}.1`);
    expect(size(file)).toBeLessThanOrEqual(64 * 1024);
    expect(size(`${file}.1`)).toBeLessThanOrEqual(64 * 1024);
    expect(read).toBeGreaterThan(64 * 1024); // it did rotate
    // what was taken off the socket: the burst plus the rate, never the flood (the socket buffers
    // hold some of what the server wrote)
    expect(flood.written()).toBeLessThan(100 * 1024 * (secs + 1) + 4 * 1024 * 1024);
    expect(logs).toEqual(['the guest writes to its serial console faster than 100 KiB/s; its console is slowed down to that (and ' + file + ' is rotated at 65536 bytes)']);
  });

  it('connects when the console appears, and keeps what it says', async () => {
    const sock = path.join(dir, 's');
    const file = path.join(dir, 'serial.log');
    const serial = new SerialLog({ socketPath: sock, file });
    cleanups.push(() => serial.close());
    await new Promise((r) => setTimeout(r, 300));
    const server = net.createServer((s) => s.end('Debian GNU/Linux 12 dev ttyS0\n'));
    await new Promise<void>((r) => server.listen(sock, r));
    cleanups.push(() => server.close());
    const deadline = Date.now() + 3000;
    while (size(file) === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(fs.readFileSync(file, 'utf8')).toBe('Debian GNU/Linux 12 dev ttyS0\n');
  });
});
