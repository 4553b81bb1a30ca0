import { describe, expect, it } from 'vitest';
import { addEntries, policyText, readPolicy, splitEntries } from './network-policy-text.ts';

describe('network policy text', () => {
  it('reads the three spellings and writes them back', () => {
    for (const t of ['internet', 'none', 'allow=mirror.example.org,*.github.com,192.168.1.0/24']) expect(policyText(readPolicy(t))).toBe(t);
    expect(readPolicy('allow=a.example,b.example')).toEqual({ mode: 'allow', allow: ['a.example', 'b.example'] });
    expect(readPolicy('something new')).toEqual({ mode: 'internet', allow: [] });
  });

  it('splits pasted lists on commas, spaces and lines, without repeats', () => {
    expect(splitEntries(' a.example, b.example\n*.c.example  a.example ,, ')).toEqual(['a.example', 'b.example', '*.c.example']);
    expect(addEntries(['a.example'], 'b.example a.example [2001:db8::1]')).toEqual(['a.example', 'b.example', '[2001:db8::1]']);
    expect(policyText({ mode: 'allow', allow: [] })).toBe('allow=');
  });
});
