/**
 * Text from a guest (file names in its tar stream, its programs' stderr, anything root in a sprite
 * can choose) is hostile when it reaches a terminal: an ESC or C1 control starts a sequence that can
 * retitle the window, rewrite what is on screen or, in some terminals, answer back as typed input; a
 * carriage return hides what came before it on the line; bidi overrides make a name read differently
 * from what it is. `safeText` makes such text inert before it goes into a message: every control
 * character is written as a visible escape (`\x1b`, `\u202e`), so nothing is interpreted and nothing
 * is hidden, and the text is bounded.
 */

/**
 * C0 controls, DEL and C1 controls (\p{Cc}), lone surrogates (\p{Cs}), bidi embeddings, overrides,
 * isolates and marks, the Arabic letter mark, and the Unicode line and paragraph separators.
 */
const UNSAFE = /[\p{Cc}\p{Cs}\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]/gu;

export interface SafeTextOptions {
  /** Keep line feeds and tabs (for multi-line output such as a program's stderr). Default false. */
  multiline?: boolean;
  /** At most this many characters of the input are kept (default 1000); more is cut and marked. */
  maxChars?: number;
}

function escape(ch: string): string {
  const cp = ch.codePointAt(0)!;
  return cp <= 0xff ? `\\x${cp.toString(16).padStart(2, '0')}` : `\\u${cp.toString(16).padStart(4, '0')}`;
}

/** `text` with every terminal control shown as an escape, cut to `maxChars` (the cut is marked). */
export function safeText(text: string, opts: SafeTextOptions = {}): string {
  const max = opts.maxChars ?? 1000;
  const chars = Array.from(text);
  const kept = chars.length > max ? chars.slice(0, max).join('') : text;
  const more = chars.length - max;
  const cut = more > 0 ? `… (${more} more character${more === 1 ? '' : 's'})` : '';
  const safe = kept.replace(UNSAFE, (ch) => (opts.multiline && (ch === '\n' || ch === '\t') ? ch : escape(ch)));
  return safe + cut;
}

/** A guest-chosen name for a message: made safe and quoted, so spaces and empty names show. */
export function quoteName(name: string, maxChars = 200): string {
  return `"${safeText(name, { maxChars }).replace(/"/g, '\\"')}"`;
}
