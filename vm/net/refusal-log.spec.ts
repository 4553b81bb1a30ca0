import { afterEach, describe, expect, it, vi } from 'vitest';
import { INTERVAL_MS, LINES_PER_INTERVAL, LIST_SIZE, RefusalLog, refusalLine, type Refusal } from './refusal-log.ts';

const tcp = (name: string | null, address: string | null, port: number, reason = 'x is not in the allow list'): Refusal => ({ protocol: 'tcp', name, address, port, reason });

function setup(extra: Partial<ConstructorParameters<typeof RefusalLog>[0]> = {}) {
  let now = Date.parse('2026-12-01T10:00:00Z');
  const lines: string[] = [];
  const log = new RefusalLog({ sprite: 'dev', listedBy: 'spritely net show dev', log: (l) => lines.push(l), now: () => now, timer: false, ...extra });
  return { log, lines, advance: (ms: number) => (now += ms) };
}

afterEach(() => vi.useRealTimers());

describe('refusalLine', () => {
  it('names the protocol, destination and reason', () => {
    expect(refusalLine(tcp('example.com', null, 443, 'example.com is not in the allow list'))).toBe('egress refused: example.com:443: example.com is not in the allow list');
    expect(refusalLine(tcp('github.com', '140.82.121.3', 22, 'r'))).toBe('egress refused: github.com:22 (140.82.121.3): r');
    expect(refusalLine(tcp(null, '2001:db8::1', 80, 'r'))).toBe('egress refused: [2001:db8::1]:80: r');
    expect(refusalLine({ protocol: 'dns', name: 'evil.example', address: null, port: null, reason: 'r' })).toBe('dns refused: evil.example: r');
    expect(refusalLine({ protocol: 'udp', name: null, address: '192.0.2.1', port: 443, reason: 'r' })).toBe('udp refused: 192.0.2.1:443: r');
  });
});

describe('RefusalLog', () => {
  it('lists the last refusals newest first, with time, and one row for a burst of the same', () => {
    const { log, advance } = setup();
    log.record(tcp('a.example', null, 443));
    advance(1000);
    log.record({ protocol: 'dns', name: 'b.example', address: null, port: null, reason: 'b.example is not in the allow list' });
    advance(1000);
    log.record({ protocol: 'dns', name: 'b.example', address: null, port: null, reason: 'b.example is not in the allow list' });
    expect(log.list()).toEqual([
      { protocol: 'dns', name: 'b.example', address: null, port: null, reason: 'b.example is not in the allow list', at: '2026-12-01T10:00:02.000Z', count: 2 },
      { protocol: 'tcp', name: 'a.example', address: null, port: 443, reason: 'x is not in the allow list', at: '2026-12-01T10:00:00.000Z', count: 1 },
    ]);
  });

  it('keeps only the last LIST_SIZE', () => {
    const { log } = setup();
    for (let i = 0; i < LIST_SIZE + 10; i++) log.record(tcp(null, `192.0.2.${i}`, 80));
    const list = log.list();
    expect(list).toHaveLength(LIST_SIZE);
    expect(list[0].address).toBe(`192.0.2.${LIST_SIZE + 9}`);
    expect(list[LIST_SIZE - 1].address).toBe('192.0.2.10');
  });

  it('logs one line per destination per interval, and sums up the rest when the interval ends', () => {
    const { log, lines, advance } = setup();
    for (let i = 0; i < 1000; i++) log.record(tcp('flood.example', null, 443));
    for (let port = 1; port <= 100; port++) log.record(tcp(null, '192.0.2.7', port)); // a port scan: one host
    expect(lines).toEqual(['egress refused: flood.example:443: x is not in the allow list', 'egress refused: 192.0.2.7:1: x is not in the allow list']);
    advance(INTERVAL_MS);
    log.record(tcp('flood.example', null, 443));
    expect(lines.slice(2)).toEqual([
      '1098 more refused (2 destinations) in the last 60 s, not logged one by one; the latest: spritely net show dev',
      'egress refused: flood.example:443: x is not in the allow list',
    ]);
    advance(INTERVAL_MS);
    log.flush();
    expect(lines).toHaveLength(4); // nothing held back: no summary
  });

  it('caps lines per interval, however many destinations', () => {
    const { log, lines, advance } = setup();
    for (let i = 0; i < 500; i++) log.record({ protocol: 'dns', name: `r${i}.example`, address: null, port: null, reason: 'refused' });
    expect(lines).toHaveLength(LINES_PER_INTERVAL);
    advance(INTERVAL_MS);
    log.flush();
    expect(lines[LINES_PER_INTERVAL]).toBe(`${500 - LINES_PER_INTERVAL} more refused (${500 - LINES_PER_INTERVAL} destinations) in the last 60 s, not logged one by one; the latest: spritely net show dev`);
    expect(log.list()).toHaveLength(LIST_SIZE);
  });

  it('sums up on a timer when the guest goes quiet, and never keeps the process alive', () => {
    vi.useFakeTimers();
    const lines: string[] = [];
    const log = new RefusalLog({ sprite: 'dev', log: (l) => lines.push(l) });
    log.record(tcp('a.example', null, 1));
    log.record(tcp('a.example', null, 1));
    log.record(tcp('a.example', null, 1));
    expect(lines).toHaveLength(1);
    vi.advanceTimersByTime(INTERVAL_MS);
    expect(lines[1]).toBe('2 more refused (1 destination) in the last 60 s, not logged one by one'); // nothing lists them yet
    log.close();
  });

  it('keeps control characters out of the list and the log', () => {
    const { log, lines } = setup();
    log.record(tcp('\x1b[31mevil\x07', null, 1, 'because\nforged line'));
    expect(lines[0]).not.toMatch(/[\x00-\x1f\x7f]/);
    expect(JSON.stringify(log.list())).not.toMatch(/\\u001b|\\n/);
  });
});

describe('RefusalLog under a flood of distinct destinations', () => {
  it('stays bounded: past 1024 destinations in an interval, new ones are only counted', () => {
    const { log, lines, advance } = setup({ linesPerInterval: 5000 });
    for (let i = 0; i < 3000; i++) log.record({ protocol: 'dns', name: `r${i}.example`, address: null, port: null, reason: 'refused' });
    expect(lines).toHaveLength(1024);
    advance(INTERVAL_MS);
    log.flush();
    expect(lines[1024]).toMatch(/^1976 more refused \(1024\+ destinations\)/);
    advance(1);
    log.record({ protocol: 'dns', name: 'fresh.example', address: null, port: null, reason: 'refused' });
    expect(lines.at(-1)).toBe('dns refused: fresh.example: refused'); // the old keys were pruned
  });
});
