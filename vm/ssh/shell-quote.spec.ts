import { describe, expect, it } from 'vitest';
import { shellQuote } from './shell-quote.ts';

describe('shellQuote', () => {
  it('leaves plain words bare', () => {
    expect(shellQuote('uname')).toBe('uname');
    expect(shellQuote('/usr/bin/ssh-proxy')).toBe('/usr/bin/ssh-proxy');
  });
  it('quotes everything a shell would read otherwise, single quotes included', () => {
    expect(['a b', "it's", '$HOME', '*', ''].map(shellQuote)).toEqual([`'a b'`, `'it'\\''s'`, `'$HOME'`, `'*'`, `''`]);
  });
});
