import { describe, expect, it } from 'vitest';
import { buildRemoteCommand, shellQuote } from './ssh-link.ts';

describe('buildRemoteCommand', () => {
  it('quotes every word so the remote shell runs exactly argv', () => {
    expect(buildRemoteCommand(['echo', 'a b', "it's", '$HOME', '*'])).toBe(`exec echo 'a b' 'it'\\''s' '$HOME' '*'`);
  });
  it('adds cwd and env safely', () => {
    expect(buildRemoteCommand(['ls'], { cwd: '/tmp/x y', env: { A: '1', B: 'two words' } })).toBe(`cd '/tmp/x y' && exec env -- A=1 'B=two words' ls`);
  });
  it('refuses empty argv and bad env names', () => {
    expect(() => buildRemoteCommand([])).toThrow(/nothing to run/);
    expect(() => buildRemoteCommand(['ls'], { env: { 'A;rm -rf /': '1' } })).toThrow(/invalid environment variable name/);
  });
  it('leaves plain words bare', () => {
    expect(shellQuote('uname')).toBe('uname');
    expect(shellQuote('')).toBe("''");
  });
});
