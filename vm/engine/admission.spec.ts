import { describe, expect, it } from 'vitest';
import { Admission, decideAdmission } from './admission.ts';

const awake = (...xs: [string, number][]) => xs.map(([name, memoryMiB]) => ({ name, memoryMiB }));

describe('decideAdmission', () => {
  it('admits what fits, up to the limit exactly', () => {
    expect(decideAdmission({ name: 'x', memoryMiB: 512, limitMiB: 1024, awake: awake(['a', 512]), pending: [] })).toEqual({ ok: true });
    expect(decideAdmission({ name: 'x', memoryMiB: 513, limitMiB: 1024, awake: awake(['a', 512]), pending: [] }).ok).toBe(false);
    expect(decideAdmission({ name: 'x', memoryMiB: 1024, limitMiB: 1024, awake: [], pending: [] })).toEqual({ ok: true });
  });

  it('does not count the sprite against itself (awake already, or its own launch pending)', () => {
    expect(decideAdmission({ name: 'x', memoryMiB: 512, limitMiB: 600, awake: awake(['x', 512]), pending: awake(['x', 512]) })).toEqual({ ok: true });
  });

  it('names the biggest awake sprites whose sleep makes room, no more than needed', () => {
    const d = decideAdmission({ name: 'x', memoryMiB: 600, limitMiB: 1500, awake: awake(['small', 128], ['big', 1024], ['mid', 256]), pending: [] });
    expect(d).toEqual({ ok: false, usedMiB: 1408, sleepFirst: ['big'], hint: expect.stringMatching(/^sleep big first \(spritely sleep NAME\), or raise the limit/) });
    const two = decideAdmission({ name: 'x', memoryMiB: 600, limitMiB: 1000, awake: awake(['a', 300], ['b', 300], ['c', 300]), pending: [] });
    expect(two).toMatchObject({ ok: false, usedMiB: 900, sleepFirst: ['a', 'b'] });
    const tie = decideAdmission({ name: 'x', memoryMiB: 300, limitMiB: 700, awake: awake(['b', 300], ['a', 300]), pending: [] });
    expect(tie).toMatchObject({ sleepFirst: ['a'] });
  });

  it('counts launches under way, and says so when sleeping the awake ones would not be enough', () => {
    const d = decideAdmission({ name: 'x', memoryMiB: 600, limitMiB: 1000, awake: [], pending: awake(['y', 600]) });
    expect(d).toMatchObject({ ok: false, usedMiB: 600, sleepFirst: [], hint: expect.stringMatching(/^other launches are under way; try again in a moment/) });
  });

  it('says when the sprite alone needs more than the limit', () => {
    const d = decideAdmission({ name: 'x', memoryMiB: 2048, limitMiB: 1024, awake: awake(['a', 512]), pending: [] });
    expect(d).toMatchObject({ ok: false, hint: expect.stringMatching(/^it alone needs more than the limit: give it less memory/) });
  });
});

describe('Admission', () => {
  it('reserves until released, and refuses with a resource_exhausted error meanwhile', () => {
    const a = new Admission();
    const release = a.reserve('one', 600, 1000, []);
    expect(() => a.reserve('two', 600, 1000, [])).toThrow(/Not enough memory for "two": it needs 600 MiB and awake sprites already use 600 MiB of the 1000 MiB limit; other launches are under way/);
    try {
      a.reserve('two', 600, 1000, []);
    } catch (err) {
      expect(err).toMatchObject({ code: 'resource_exhausted', details: { neededMiB: 600, usedMiB: 600, limitMiB: 1000, sleepFirst: [] } });
    }
    release();
    expect(() => a.reserve('two', 600, 1000, [])()).not.toThrow();
  });
});
