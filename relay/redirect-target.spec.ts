import { describe, expect, it } from 'vitest';
import { HOSTILE_TARGETS } from './hostile-targets.fixture.ts';
import { safeRedirectPath } from './redirect-target.ts';

describe('safeRedirectPath', () => {
  it.each(HOSTILE_TARGETS.map((target) => [target]))('sends %j to /', (target) => {
    expect(safeRedirectPath(target)).toBe('/');
  });
  it.each([
    ['/', '/'],
    ['/page', '/page'],
    ['/page?x=1&y=2', '/page?x=1&y=2'],
    ['/a/b/../c', '/a/c'],
    ['/a/./b', '/a/b'],
    ['/../x', '/x'],
    ['/docs?next=//evil.example', '/docs?next=//evil.example'],
    ['/a%2Fb', '/a%2Fb'],
    ['/a#frag', '/a'],
    ['/search?q=a+b', '/search?q=a+b'],
  ])('keeps the same-host path %j as %j', (target, expected) => {
    expect(safeRedirectPath(target)).toBe(expected);
  });
  it('whatever it is given, answers a path that no browser resolves off the host', () => {
    for (const target of HOSTILE_TARGETS) {
      const location = safeRedirectPath(target);
      expect(new URL(location, 'https://dev-k3x9ab.relay.example/').host).toBe('dev-k3x9ab.relay.example');
    }
  });
});
