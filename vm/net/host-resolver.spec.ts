import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { HostResolver, hostResolver } from './host-resolver.ts';

afterEach(() => vi.useRealTimers());

describe('HostResolver', () => {
  it('builds its resolver again when resolv.conf changes, checking at most every 5 s', () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'resolv-'));
    const file = path.join(dir, 'resolv.conf');
    fs.writeFileSync(file, 'nameserver 192.0.2.53\n');
    try {
      const r = new HostResolver(file);
      const inner = () => (r as unknown as { current(): object }).current();
      const first = inner();
      expect(inner()).toBe(first);
      fs.writeFileSync(file, 'nameserver 192.0.2.54\nnameserver 192.0.2.55\n');
      vi.advanceTimersByTime(4000);
      expect(inner()).toBe(first); // checked less than 5 s ago
      vi.advanceTimersByTime(1000);
      const second = inner();
      expect(second).not.toBe(first);
      vi.advanceTimersByTime(5000);
      expect(inner()).toBe(second); // unchanged since
      fs.rmSync(file);
      vi.advanceTimersByTime(5000);
      expect(inner()).not.toBe(second); // gone is a change too
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('is one per daemon', () => {
    expect(hostResolver()).toBe(hostResolver());
  });
});
