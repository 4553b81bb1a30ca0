import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { dnsServersFromEnv, HostResolver, hostResolver } from './host-resolver.ts';

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

  it('asks the servers it is given instead of resolv.conf, and does not watch the file then', () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'resolv-'));
    const file = path.join(dir, 'resolv.conf');
    fs.writeFileSync(file, 'nameserver 192.0.2.53\n');
    try {
      const r = new HostResolver(file, ['127.0.0.1:5353', '[::1]:53']);
      const inner = () => (r as unknown as { current(): { getServers(): string[] } }).current();
      const first = inner();
      expect(first.getServers()).toEqual(['127.0.0.1:5353', '::1']);
      fs.writeFileSync(file, 'nameserver 192.0.2.54\n');
      vi.advanceTimersByTime(10_000);
      expect(inner()).toBe(first);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reads SPRITELY_DNS_SERVERS strictly: addresses with an optional port, the rest ignored and logged', () => {
    const logs: string[] = [];
    expect(dnsServersFromEnv(undefined)).toBeNull();
    expect(dnsServersFromEnv('  ')).toBeNull();
    expect(dnsServersFromEnv('10.1.2.3, 10.1.2.4:5353,[fd00::53]:53,[::1]', (l) => logs.push(l))).toEqual(['10.1.2.3', '10.1.2.4:5353', '[fd00::53]:53', '[::1]']);
    expect(logs).toEqual([]);
    expect(dnsServersFromEnv('dns.example,10.1.2.3:0,10.1.2.3:70000,300.1.1.1,::1,10.0.0.1;rm', (l) => logs.push(l))).toBeNull();
    expect(logs).toHaveLength(6);
    expect(logs[0]).toMatch(/ignoring "dns.example" in SPRITELY_DNS_SERVERS/);
  });

  it('is one per daemon', () => {
    expect(hostResolver()).toBe(hostResolver());
  });
});
