import { expect, it } from 'vitest';
import { formatAge, formatTable, parseDuration } from './ui.ts';

it('parses durations', () => {
  expect(parseDuration('90')).toBe(90);
  expect(parseDuration('90s')).toBe(90);
  expect(parseDuration('10m')).toBe(600);
  expect(parseDuration('1h30m')).toBe(5400);
  expect(parseDuration('0')).toBe(0);
  expect(() => parseDuration('soon')).toThrow(/not a duration/);
  expect(() => parseDuration('')).toThrow(/not a duration/);
});

it('formats ages and tables', () => {
  expect(formatAge('2026-01-01T00:00:00Z', Date.parse('2026-01-01T02:00:00Z'))).toBe('2h ago');
  expect(formatTable(['A', 'BB'], [['xyz', '1']])).toBe('A    BB\nxyz  1');
});
