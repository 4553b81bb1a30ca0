import { describe, expect, it } from 'vitest';
import { GRACE_MS, ResolvedNames } from './resolved-names.ts';

describe('ResolvedNames', () => {
  it('maps an answered address back to the name, in any spelling of the address', () => {
    const t = new ResolvedNames();
    t.record('github.com', ['140.82.121.3', '2606:50c0:8000::153'], 60, 0);
    expect(t.namesFor('140.82.121.3', 1000)).toEqual(['github.com']);
    expect(t.namesFor('::ffff:140.82.121.3', 1000)).toEqual(['github.com']);
    expect(t.namesFor('2606:50C0:8000:0:0:0:0:153', 1000)).toEqual(['github.com']);
    expect(t.namesFor('140.82.121.4', 1000)).toEqual([]);
    expect(t.namesFor('not an address', 1000)).toEqual([]);
  });

  it('keeps a name for its TTL plus the grace period, then forgets it', () => {
    const t = new ResolvedNames();
    t.record('a.example', ['192.0.2.1'], 60, 0);
    expect(t.namesFor('192.0.2.1', 60_000 + GRACE_MS - 1)).toEqual(['a.example']);
    expect(t.namesFor('192.0.2.1', 60_000 + GRACE_MS)).toEqual([]);
    expect(t.size).toBe(0);
    const short = new ResolvedNames({ graceMs: 0 });
    short.record('a.example', ['192.0.2.1'], 5, 0);
    expect(short.namesFor('192.0.2.1', 4999)).toEqual(['a.example']);
    expect(short.namesFor('192.0.2.1', 5000)).toEqual([]);
  });

  it('a new answer renews the name; several names on one address come most recent first', () => {
    const t = new ResolvedNames({ graceMs: 0 });
    t.record('a.example', ['192.0.2.1'], 10, 0);
    t.record('b.example', ['192.0.2.1'], 10, 1000);
    expect(t.namesFor('192.0.2.1', 2000)).toEqual(['b.example', 'a.example']);
    t.record('a.example', ['192.0.2.1'], 10, 5000);
    expect(t.namesFor('192.0.2.1', 6000)).toEqual(['a.example', 'b.example']);
    expect(t.namesFor('192.0.2.1', 12_000)).toEqual(['a.example']); // b expired at 11 s
  });

  it('is bounded: names per address and addresses, the least recently answered going first', () => {
    const t = new ResolvedNames({ maxAddresses: 3, maxNamesPerAddress: 2 });
    for (const n of ['a', 'b', 'c']) t.record(`${n}.example`, ['192.0.2.1'], 60, 0);
    expect(t.namesFor('192.0.2.1', 1)).toEqual(['c.example', 'b.example']);
    for (let i = 2; i <= 5; i++) t.record(`h${i}.example`, [`192.0.2.${i}`], 60, i);
    expect(t.size).toBe(3);
    expect(t.namesFor('192.0.2.1', 10)).toEqual([]);
    expect(t.namesFor('192.0.2.2', 10)).toEqual([]);
    expect(t.namesFor('192.0.2.5', 10)).toEqual(['h5.example']);
  });

  it('prune drops every expired name', () => {
    const t = new ResolvedNames({ graceMs: 0 });
    t.record('a.example', ['192.0.2.1', '192.0.2.2'], 1, 0);
    t.record('b.example', ['192.0.2.3'], 100, 0);
    t.prune(5000);
    expect(t.size).toBe(1);
  });
});
