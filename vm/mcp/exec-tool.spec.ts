import { describe, expect, it } from 'vitest';
import type { SpritelyError } from '../errors.ts';
import { buildExecRequest, checkpointComment, DEFAULT_EXEC_OUTPUT_BYTES, DEFAULT_EXEC_TIMEOUT_MS, formatExecResult, shapeExecResult, type ExecToolResult } from './exec-tool.ts';

const refusal = (fn: () => unknown): string | null => {
  try {
    fn();
  } catch (e) {
    expect((e as SpritelyError).code).toBe('invalid_argument');
    return (e as Error).message;
  }
  return null;
};

describe('buildExecRequest', () => {
  it('runs a command line with bash -lc, untouched, with the timeout for the daemon to enforce', () => {
    const cmd = `cd /tmp && echo "$HOME" | tr a-z A-Z; ls 'a b' 2>&1`;
    expect(buildExecRequest({ name: 'dev', command: cmd })).toEqual({
      req: { name: 'dev', argv: ['bash', '-lc', cmd], timeoutMs: 300_000, maxOutputBytes: DEFAULT_EXEC_OUTPUT_BYTES },
      timeoutMs: DEFAULT_EXEC_TIMEOUT_MS,
      maxOutputBytes: DEFAULT_EXEC_OUTPUT_BYTES,
    });
  });

  it('passes argv through as it is, with cwd, env, stdin, timeout and output cap', () => {
    expect(buildExecRequest({ name: 'dev', argv: ['printf', '%s', '$(x) *'], cwd: '/srv/app', env: { A: '1', B_2: 'two words' }, stdin: 'in', timeout_ms: 1500, max_output_bytes: 10 }).req).toEqual({
      name: 'dev',
      argv: ['printf', '%s', '$(x) *'],
      cwd: '/srv/app',
      env: { A: '1', B_2: 'two words' },
      stdin: 'in',
      timeoutMs: 1500,
      maxOutputBytes: 10,
    });
    expect(buildExecRequest({ name: 'dev', argv: ['true'], env: {} }).req).not.toHaveProperty('env');
    expect(buildExecRequest({ name: 'dev', argv: ['true'], max_output_bytes: 0 }).req.maxOutputBytes).toBe(0);
    // The API's backstop never goes past the API's own maximum.
    expect(buildExecRequest({ name: 'dev', argv: ['true'], timeout_ms: 86_400_000 }).req.timeoutMs).toBe(86_400_000);
  });

  it('refuses what cannot run, saying what to give instead', () => {
    expect(refusal(() => buildExecRequest({ name: 'dev' }))).toMatch(/Nothing to run: give argv .* or command/);
    expect(refusal(() => buildExecRequest({ name: 'dev', argv: ['ls'], command: 'ls' }))).toMatch(/either argv .* or command .*, not both/);
    expect(refusal(() => buildExecRequest({ name: 'dev', argv: [] }))).toMatch(/argv is empty/);
    expect(refusal(() => buildExecRequest({ name: 'dev', argv: [''] }))).toMatch(/argv\[0\]/);
    expect(refusal(() => buildExecRequest({ name: 'dev', command: '   ' }))).toMatch(/command is empty/);
    expect(refusal(() => buildExecRequest({ name: 'dev', argv: ['echo', 'a\0b'] }))).toMatch(/argv\[1\] contains a NUL/);
    expect(refusal(() => buildExecRequest({ name: 'dev', command: 'echo \0' }))).toMatch(/NUL/);
    expect(refusal(() => buildExecRequest({ name: 'dev', argv: ['ls'], cwd: '' }))).toMatch(/cwd is empty/);
    expect(refusal(() => buildExecRequest({ name: 'dev', argv: ['ls'], cwd: '/a\0' }))).toMatch(/cwd contains a NUL/);
    expect(refusal(() => buildExecRequest({ name: 'dev', argv: ['ls'], env: { 'A;rm -rf /': '1' } }))).toMatch(/Invalid environment variable name/);
    expect(refusal(() => buildExecRequest({ name: 'dev', argv: ['ls'], env: { A: 'x\0' } }))).toMatch(/value of A contains a NUL/);
    expect(refusal(() => buildExecRequest({ name: 'dev', argv: ['ls'], timeout_ms: 0 }))).toMatch(/timeout_ms/);
    expect(refusal(() => buildExecRequest({ name: 'dev', argv: ['ls'], timeout_ms: 1.5 }))).toMatch(/timeout_ms/);
    expect(refusal(() => buildExecRequest({ name: 'dev', argv: ['ls'], max_output_bytes: 2 * 1024 * 1024 }))).toMatch(/max_output_bytes/);
  });
});

describe('shapeExecResult', () => {
  const r = { exitCode: 0, signal: null, stdout: '', stderr: '', truncated: false, timedOut: false, durationMs: 100 };
  it('turns the in-guest timeout firing (124 after TERM, 137 after KILL) into timedOut with no exit code', () => {
    expect(shapeExecResult({ ...r, exitCode: 124, durationMs: 2050 }, { timeoutMs: 2000 })).toEqual({ ...r, exitCode: null, signal: 'TERM', timedOut: true, durationMs: 2050 });
    expect(shapeExecResult({ ...r, exitCode: 137, durationMs: 7100 }, { timeoutMs: 2000 })).toEqual({ ...r, exitCode: null, signal: 'KILL', timedOut: true, durationMs: 7100 });
    expect(shapeExecResult({ ...r, exitCode: null, signal: 'KILL', durationMs: 7100 }, { timeoutMs: 2000 })).toMatchObject({ exitCode: null, signal: 'KILL', timedOut: true });
    expect(shapeExecResult({ ...r, exitCode: null, signal: 'SIGKILL', durationMs: 7100 }, { timeoutMs: 2000 })).toMatchObject({ signal: 'KILL', timedOut: true });
    // Killed by someone else before the time was up: not a timeout.
    expect(shapeExecResult({ ...r, exitCode: null, signal: 'KILL', durationMs: 100 }, { timeoutMs: 2000 })).toMatchObject({ signal: 'KILL', timedOut: false });
  });
  it('keeps a program\'s own 124 before the time is up, and every other result', () => {
    expect(shapeExecResult({ ...r, exitCode: 124, durationMs: 50 }, { timeoutMs: 2000 })).toEqual({ ...r, exitCode: 124, durationMs: 50 });
    expect(shapeExecResult({ ...r, exitCode: 3 }, { timeoutMs: 10 })).toEqual({ ...r, exitCode: 3 });
    expect(shapeExecResult({ ...r, exitCode: 0, timedOut: true }, { timeoutMs: 10 })).toMatchObject({ exitCode: null, signal: 'TERM', timedOut: true });
  });
});

describe('checkpointComment', () => {
  it('is null unless asked; true names the command; a string is the comment', () => {
    expect(checkpointComment({ command: 'ls' })).toBeNull();
    expect(checkpointComment({ command: 'ls', checkpoint_before: false })).toBeNull();
    expect(checkpointComment({ command: 'apt-get -y upgrade', checkpoint_before: true })).toBe('before: apt-get -y upgrade');
    expect(checkpointComment({ argv: ['rm', '-rf', 'my dir', "it's"], checkpoint_before: true })).toBe(`before: rm -rf 'my dir' 'it'\\''s'`);
    expect(checkpointComment({ command: 'x', checkpoint_before: '  before the migration ' })).toBe('before the migration');
    expect(checkpointComment({ command: 'echo a\n\necho b', checkpoint_before: '' })).toBe('before: echo a echo b');
    const long = checkpointComment({ command: 'y'.repeat(500), checkpoint_before: true })!;
    expect(long.length).toBe('before: '.length + 200);
    expect(long.endsWith('…')).toBe(true);
  });
});

describe('formatExecResult', () => {
  const base: ExecToolResult = { exitCode: 0, signal: null, stdout: 'out\n', stderr: '', truncated: false, timedOut: false, durationMs: 1234, checkpoint: null };
  const req = { timeoutMs: 5000, maxOutputBytes: 100 };

  it('puts the outcome first, then each non-empty stream', () => {
    expect(formatExecResult(base, req)).toBe('exit code 0 (1.2 s)\n--- stdout ---\nout');
    expect(formatExecResult({ ...base, exitCode: 2, stdout: '', stderr: 'ls: cannot access\n', durationMs: 40 }, req)).toBe('exit code 2 (40 ms)\n--- stderr ---\nls: cannot access');
    expect(formatExecResult({ ...base, stdout: '' }, req)).toBe('exit code 0 (1.2 s)\n(no output)');
  });

  it('says when it timed out, was killed, was cut, and which checkpoint came first', () => {
    const t = formatExecResult({ ...base, exitCode: null, signal: 'KILL', timedOut: true, truncated: true, checkpoint: 'v3' }, req);
    expect(t).toMatch(/^timed out after 5000 ms and was killed/);
    expect(t).toContain('checkpoint v3 was taken before running');
    expect(t).toContain('only the first 100 bytes of each stream');
    expect(formatExecResult({ ...base, exitCode: null, signal: 'SEGV' }, req)).toMatch(/^killed by signal SEGV/);
  });
});
