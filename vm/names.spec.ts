import { describe, expect, it } from 'vitest';
import { assertSpriteName, spriteNameProblem } from './names.ts';

describe('sprite names', () => {
  it.each(['a', 'dev', 'my-box-2', '0', 'a'.repeat(63), 'x1-y2'])('accepts %s', (n) => {
    expect(spriteNameProblem(n)).toBeNull();
  });
  it.each([
    ['', 'empty'],
    ['-dev', 'starts or ends'],
    ['dev-', 'starts or ends'],
    ['Dev', 'capital'],
    ['dev_1', '"_"'],
    ['dev.box', '"."'],
    ['../etc', '"."'],
    ['a'.repeat(64), 'at most 63'],
    ['a b', '" "'],
    ['dev\n', '"\\n"'],
    ['dév', '"é"'],
  ])('refuses %j with a reason', (n, why) => {
    expect(spriteNameProblem(n)).toContain(why);
    expect(() => assertSpriteName(n)).toThrow(/Invalid sprite name/);
  });
  it('refuses non-strings', () => {
    expect(spriteNameProblem(3)).toContain('string');
    expect(spriteNameProblem(undefined)).toContain('string');
  });
});
