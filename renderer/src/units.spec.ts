import { describe, expect, it } from 'vitest';
import { parseDuration as cliDuration } from '../../vm/cli/ui.ts';
import { parseMiB as cliMiB } from '../../vm/cli/settings-commands.ts';
import { durationText, formatMiB, formatSeconds, idleWords, memoryText, parseDuration, parseIdleTimeout, parseMemory, type Parsed } from './units.ts';

/** What the CLI makes of a text, in the same shape. */
function cli(fn: (t: string) => number, text: string): Parsed {
  try {
    return { ok: true, value: fn(text) };
  } catch (err) {
    return { ok: false, problem: (err as Error).message };
  }
}

describe('durations, as the CLI reads them', () => {
  const inputs = ['90', '90s', '10m', '1h', '1h30m', '2h5s', ' 10M ', '0', '', 'm', '10 m', '1.5h', '-5', 'ten', '1d', '10m30', '3600s'];
  it.each(inputs)('%j', (t) => {
    expect(parseDuration(t)).toEqual(cli(cliDuration, t));
  });

  it('reads what it writes', () => {
    for (const s of [0, 1, 59, 60, 90, 300, 3599, 3600, 3661, 5400, 86400, 30 * 86400]) expect(parseDuration(durationText(s))).toEqual({ ok: true, value: s });
    expect([durationText(90), durationText(300), durationText(3600), durationText(5400)]).toEqual(['1m30s', '5m', '1h', '1h30m']);
  });

  it('an idle timeout is at most 30 days', () => {
    expect(parseIdleTimeout('720h')).toEqual({ ok: true, value: 2_592_000 });
    expect(parseIdleTimeout('721h')).toEqual({ ok: false, problem: '"721h" is longer than 30 days, the longest idle timeout.' });
    expect(parseIdleTimeout('soon').ok).toBe(false);
    expect([idleWords(0), idleWords(300)]).toEqual(['never', 'after 5m']);
  });
});

describe('sizes, as the CLI reads them', () => {
  const inputs = ['8G', '12g', '512M', '512', '1.5G', '12000', 'default', 'DEFAULT', '0', '100M', '255', '256', '12 GiB', '12T', 'lots', '', '99999999G'];
  it.each(inputs)('%j', (t) => {
    expect(parseMemory(t)).toEqual(cli(cliMiB, t));
  });

  it('reads what it writes, and says it for people', () => {
    for (const m of [256, 512, 1024, 1536, 4096, 12288, 19660]) expect(parseMemory(memoryText(m))).toEqual({ ok: true, value: m });
    expect([formatMiB(512), formatMiB(4096), formatMiB(19660)]).toEqual(['512 MiB', '4 GiB', '19.2 GiB']);
    expect([formatSeconds(45), formatSeconds(754), formatSeconds(11100), formatSeconds(187200)]).toEqual(['45s', '12m 34s', '3h 05m', '2d 4h']);
  });
});
