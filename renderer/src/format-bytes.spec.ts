import { describe, expect, it } from 'vitest';
import { formatBytes } from './format-bytes.ts';

describe('formatBytes', () => {
  it('formats sizes', () => {
    expect([formatBytes(512), formatBytes(2048), formatBytes(5 * 2 ** 20), formatBytes(300 * 2 ** 20), formatBytes(3 * 2 ** 30)]).toEqual(['512 B', '2.0 KiB', '5.0 MiB', '300 MiB', '3.0 GiB']);
  });
});
