import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { viewCommand } from './guest-view-script.ts';

// The script mounts for real, so only what it refuses runs here (it refuses before touching anything).
const run = (...args: string[]) => {
  const c = viewCommand(...args);
  const r = spawnSync(c.path, c.args, { encoding: 'utf8' });
  return { code: r.status, stderr: r.stderr.trim() };
};

describe('the guest view script', () => {
  it('is valid POSIX sh', () => {
    const c = viewCommand();
    expect(spawnSync('sh', ['-n', '-c', c.args[1]]).status).toBe(0);
  });

  it('refuses ids and serials that are not what the daemon sends', () => {
    for (const id of ['v0', 'v1;reboot', '../etc', 'v1/x', 'v12345678901', '', 'x1']) {
      expect(run('mount', id, `spritely-${id}`), id).toEqual({ code: 2, stderr: 'bad checkpoint id' });
      expect(run('umount', id), id).toEqual({ code: 2, stderr: 'bad checkpoint id' });
    }
    expect(run('mount', 'v1', 'spritely-v2')).toEqual({ code: 2, stderr: 'bad serial' });
    expect(run('format', 'v1').code).toBe(2);
  });
});
