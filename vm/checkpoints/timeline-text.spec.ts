import { expect, it } from 'vitest';
import { formatBytes, formatTimeline } from './timeline-text.ts';

const cp = (id: string, parent: string | null, extra: object = {}) => ({ id, parent, comment: `c${id}`, createdAt: '2026-01-01T00:00:00Z', auto: false, memory: true, bytes: 2 * 1024 ** 2, ramBytes: 0, diskBytes: 0, pauseMs: 0, current: false, ...extra });

it('draws branches under their parent and marks the current one', () => {
  const text = formatTimeline([cp('v1', null), cp('v2', 'v1'), cp('v3', 'v1', { current: true, auto: true, memory: false })], Date.parse('2026-01-01T00:01:00Z'));
  expect(text.split('\n')).toEqual([
    ' v1  cv1  [ram+disk, 2 MiB, 1m ago]',
    '├─  v2  cv2  [ram+disk, 2 MiB, 1m ago]',
    '└─ *v3  cv3  [disk, 2 MiB, 1m ago, auto]',
  ]);
  expect(formatTimeline([])).toMatch(/no checkpoints/);
  expect(formatBytes(1536)).toBe('2 KiB');
});
