import { describe, expect, it } from 'vitest';
import { SpritelyError } from '../errors.ts';
import { parseSize } from './agent-cp.ts';

describe('parseSize (--max-size, --max-file-size)', () => {
  it('reads bytes and K/M/G/T (powers of 1024), with or without "B"/"iB", any case', () => {
    expect(parseSize('100000')).toBe(100_000);
    expect(parseSize('512K')).toBe(512 * 1024);
    expect(parseSize('1M')).toBe(1024 ** 2);
    expect(parseSize('8G')).toBe(8 * 1024 ** 3);
    expect(parseSize('8gib')).toBe(8 * 1024 ** 3);
    expect(parseSize('2TB')).toBe(2 * 1024 ** 4);
    expect(parseSize('1.5G')).toBe(1.5 * 1024 ** 3);
    expect(parseSize(' 20G ')).toBe(20 * 1024 ** 3);
  });

  it('refuses what is not a size above zero', () => {
    for (const bad of ['', '0', '-1G', 'G', '1X', '1 G B', '1e9', 'lots', '99999999999999999999']) {
      expect(() => parseSize(bad), bad).toThrow(SpritelyError);
    }
    expect(() => parseSize('ten')).toThrow('expected a size such as 512M or 8G, got "ten"');
  });
});
