import { expect, it } from 'vitest';
import { exitStatus } from './streams.ts';

it('passes exit codes through and maps signals to 128 + N', () => {
  expect(exitStatus(0, null)).toBe(0);
  expect(exitStatus(7, null)).toBe(7);
  expect(exitStatus(null, 'SIGKILL')).toBe(137);
  expect(exitStatus(null, 'KILL')).toBe(137);
  expect(exitStatus(null, 'TERM')).toBe(143);
  expect(exitStatus(null, null)).toBe(255);
});
