import { describe, expect, it } from 'vitest';
import type { RefusedDestination } from '../api/contract.ts';
import { refusedCount, refusedLines, refusedWhen, refusedWhere, refusedWhy } from './refused-lines.ts';

/** A local time (the formatter prints local time, whatever the test machine's zone). */
const local = (y: number, mo: number, d: number, h: number, mi: number, s: number) => new Date(y, mo - 1, d, h, mi, s);

function refusal(over: Partial<RefusedDestination>): RefusedDestination {
  return { at: local(2030, 1, 2, 14, 2, 11).toISOString(), protocol: 'tcp', name: 'github.com', address: null, port: 443, reason: 'github.com is not in this sprite’s allow list', count: 1, ...over };
}

describe('refusedWhere', () => {
  it('a name with its port, and the address it led to when there was one', () => {
    expect(refusedWhere({ name: 'github.com', address: null, port: 443 })).toBe('github.com:443');
    expect(refusedWhere({ name: 'github.com', address: '140.82.121.3', port: 22 })).toBe('github.com:22 (140.82.121.3)');
  });
  it('an address alone: IPv6 in brackets before a port', () => {
    expect(refusedWhere({ name: null, address: '127.0.0.1', port: 22 })).toBe('127.0.0.1:22');
    expect(refusedWhere({ name: null, address: '::1', port: 8080 })).toBe('[::1]:8080');
    expect(refusedWhere({ name: null, address: 'fe80::1', port: null })).toBe('[fe80::1]');
  });
  it('DNS has no port; neither name nor address is a "?"', () => {
    expect(refusedWhere({ name: 'printer.local', address: null, port: null })).toBe('printer.local');
    expect(refusedWhere({ name: null, address: null, port: 53 })).toBe('?:53');
  });
  it('guest text stays inert even if the daemon sent controls', () => {
    expect(refusedWhere({ name: 'evil\x1b]0;owned\x07.com', address: null, port: 80 })).toBe('evil\\x1b]0;owned\\x07.com:80');
    expect(refusedWhy({ reason: 'a\u202eb\r\nc' })).toBe('a\\u202eb\\x0d\\x0ac');
  });
});

describe('refusedWhen', () => {
  const now = local(2030, 1, 2, 18, 0, 0);
  it('the time alone on the same local day, the date before it', () => {
    expect(refusedWhen(local(2030, 1, 2, 9, 5, 7).toISOString(), now)).toBe('09:05:07');
    expect(refusedWhen(local(2030, 1, 1, 23, 59, 59).toISOString(), now)).toBe('2030-01-01 23:59:59');
  });
  it('a time that does not parse is shown as sent, inert', () => {
    expect(refusedWhen('soon\x1b', now)).toBe('soon\\x1b');
  });
});

describe('refusedCount', () => {
  it('×N for a burst, nothing for one', () => {
    expect(refusedCount({ count: 1 })).toBe('');
    expect(refusedCount({ count: 12 })).toBe('×12');
  });
});

describe('refusedLines', () => {
  const now = local(2030, 1, 2, 18, 0, 0);
  it('says when nothing was refused', () => {
    expect(refusedLines([], now)).toEqual(['nothing refused yet (the list starts empty when the daemon starts)']);
  });
  it('one aligned line per refusal, in the order given (newest first): time, destination, protocol, why, ×count', () => {
    const lines = refusedLines(
      [
        refusal({ count: 3 }),
        refusal({ at: local(2030, 1, 2, 14, 1, 50).toISOString(), name: null, address: '127.0.0.1', port: 22, reason: '127.0.0.1 is this computer' }),
        refusal({ at: local(2030, 1, 1, 8, 0, 0).toISOString(), protocol: 'dns', name: 'printer.local', port: null, reason: 'printer.local is a local name' }),
      ],
      now,
    );
    expect(lines).toEqual([
      'last refused, newest first:',
      '  14:02:11             github.com:443  tcp  github.com is not in this sprite’s allow list  ×3',
      '  14:01:50             127.0.0.1:22    tcp  127.0.0.1 is this computer',
      '  2030-01-01 08:00:00  printer.local   dns  printer.local is a local name',
    ]);
  });
  it('a very long destination does not push every column away', () => {
    const long = `${'a'.repeat(63)}.${'b'.repeat(63)}.example`;
    const lines = refusedLines([refusal({ name: long }), refusal({ name: 'x.org', port: 80 })], now);
    expect(lines[2]).toBe(`  14:02:11  ${'x.org:80'.padEnd(48)}  tcp  github.com is not in this sprite’s allow list`);
    expect(lines[1]).toContain(`${long}:443  tcp`);
  });
});
