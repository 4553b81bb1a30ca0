import { describe, expect, it } from 'vitest';
import * as cli from '../../vm/cli/refused-lines.ts';
import { refusedCount, refusedWhen, refusedWhere, refusedWhy } from './refused-text.ts';

const local = (y: number, mo: number, d: number, h: number, mi: number, s: number) => new Date(y, mo - 1, d, h, mi, s);

describe('the dialog writes a refusal as `spritely net show` prints it', () => {
  const where = [
    { name: 'github.com', address: null, port: 443 },
    { name: 'github.com', address: '140.82.121.3', port: 22 },
    { name: null, address: '127.0.0.1', port: 22 },
    { name: null, address: '::1', port: 8080 },
    { name: null, address: 'fe80::1', port: null },
    { name: 'printer.local', address: null, port: null },
    { name: null, address: null, port: 53 },
    { name: 'evil\x1b]0;owned\x07<b>.com', address: null, port: 80 },
  ];
  it.each(where)('destination %j', (r) => {
    expect(refusedWhere(r)).toBe(cli.refusedWhere(r));
  });

  it('reason, count and time', () => {
    for (const reason of ["github.com is not in this sprite's allow list (allow=example.com)", 'a\u202eb\r\nc\u2028']) expect(refusedWhy({ reason })).toBe(cli.refusedWhy({ reason }));
    for (const count of [1, 2, 40]) expect(refusedCount({ count })).toBe(cli.refusedCount({ count }));
    const now = local(2030, 1, 2, 18, 0, 0);
    for (const at of [local(2030, 1, 2, 9, 5, 7).toISOString(), local(2030, 1, 1, 23, 59, 59).toISOString(), 'soon\x1b']) expect(refusedWhen(at, now)).toBe(cli.refusedWhen(at, now));
    expect(refusedWhen(local(2030, 1, 2, 9, 5, 7).toISOString(), now)).toBe('09:05:07');
    expect(refusedWhere(where[7])).toBe('evil\\x1b]0;owned\\x07<b>.com:80');
  });
});
