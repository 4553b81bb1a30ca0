import { expect, it } from 'vitest';
import { bareCheckpointFlag, checkpointComment } from './agent-checkpoint.ts';

it('names the command in the comment unless one is given', () => {
  expect(checkpointComment(['apt-get', 'install', '-y', 'curl'], '')).toBe('before: apt-get install -y curl');
  expect(checkpointComment(['sh', '-c', 'rm -rf /tmp/x'], true)).toBe("before: sh -c 'rm -rf /tmp/x'");
  expect(checkpointComment(['ls'], 'my own words')).toBe('my own words');
  expect(checkpointComment(['echo', 'x'.repeat(5000)], '').length).toBe(1000);
});

it('a bare --checkpoint never takes the next word as its comment', () => {
  const n = (...a: string[]) => bareCheckpointFlag(['node', 'spritely', ...a]).slice(2);
  expect(n('exec', '--checkpoint', 'dev', '--', 'ls')).toEqual(['exec', '--checkpoint=', 'dev', '--', 'ls']);
  expect(n('exec', 'dev', '--checkpoint', '--', 'ls', '--checkpoint')).toEqual(['exec', 'dev', '--checkpoint=', '--', 'ls', '--checkpoint']);
  expect(n('exec', '--checkpoint=why', 'dev', '--', 'ls')).toEqual(['exec', '--checkpoint=why', 'dev', '--', 'ls']);
  expect(n('checkpoint', 'create', '--checkpoint')).toEqual(['checkpoint', 'create', '--checkpoint']);
});
