import { describe, expect, it } from 'vitest';
import { quoteName, safeText } from './safe-text.ts';

describe('safeText', () => {
  it('leaves ordinary text alone, including non-ASCII letters and emoji', () => {
    expect(safeText('hello/wörld ✓ 日本 🙂')).toBe('hello/wörld ✓ 日本 🙂');
    expect(safeText('')).toBe('');
  });

  it('shows ESC and every other C0 control, DEL and C1 control as an escape', () => {
    expect(safeText('\x1b]0;pwned\x07title')).toBe('\\x1b]0;pwned\\x07title');
    expect(safeText('\x1b[2J\x1b[31mred')).toBe('\\x1b[2J\\x1b[31mred');
    expect(safeText('a\rb')).toBe('a\\x0db');
    expect(safeText('a\x00b\x7fc')).toBe('a\\x00b\\x7fc');
    // C1: CSI (0x9b) and OSC (0x9d) start sequences in some terminals without an ESC.
    expect(safeText('\u009b31m\u009d0;x\u009c')).toBe('\\x9b31m\\x9d0;x\\x9c');
    for (let c = 0; c < 0x20; c++) expect(safeText(String.fromCharCode(c))).toMatch(/^\\x[0-9a-f]{2}$/);
    for (let c = 0x7f; c < 0xa0; c++) expect(safeText(String.fromCharCode(c))).toMatch(/^\\x[0-9a-f]{2}$/);
  });

  it('escapes bidi overrides, isolates and marks and the Unicode line separators', () => {
    expect(safeText('invoice\u202efdp.exe')).toBe('invoice\\u202efdp.exe');
    for (const c of ['\u061c', '\u200e', '\u200f', '\u202a', '\u202b', '\u202c', '\u202d', '\u202e', '\u2066', '\u2067', '\u2068', '\u2069', '\u2028', '\u2029']) {
      expect(safeText(`x${c}y`)).toBe(`x\\u${c.codePointAt(0)!.toString(16).padStart(4, '0')}y`);
    }
  });

  it('escapes lone surrogates', () => {
    expect(safeText('a\ud800b')).toBe('a\\ud800b');
    expect(safeText('a\udc00')).toBe('a\\udc00');
  });

  it('keeps line feeds and tabs only when asked (carriage returns never)', () => {
    expect(safeText('one\ntwo\tthree')).toBe('one\\x0atwo\\x09three');
    expect(safeText('one\ntwo\tthree\r\x1b[A', { multiline: true })).toBe('one\ntwo\tthree\\x0d\\x1b[A');
  });

  it('cuts long text and says how much was left out (before escaping, so escapes are never split)', () => {
    expect(safeText('abcdef', { maxChars: 3 })).toBe('abc… (3 more characters)');
    expect(safeText('\x1b\x1b\x1b\x1b', { maxChars: 2 })).toBe('\\x1b\\x1b… (2 more characters)');
    expect(safeText('🙂🙂🙂', { maxChars: 2 })).toBe('🙂🙂… (1 more character)');
    expect(safeText('x'.repeat(1000))).toBe('x'.repeat(1000));
    expect(safeText('x'.repeat(1001))).toBe(`${'x'.repeat(1000)}… (1 more character)`);
  });
});

describe('quoteName', () => {
  it('quotes, escapes quotes and controls, and bounds the name', () => {
    expect(quoteName('a b')).toBe('"a b"');
    expect(quoteName('')).toBe('""');
    expect(quoteName('say "hi"\n')).toBe('"say \\"hi\\"\\x0a"');
    expect(quoteName('y'.repeat(300), 10)).toBe(`"${'y'.repeat(10)}… (290 more characters)"`);
  });
});
