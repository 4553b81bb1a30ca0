/**
 * Guest-supplied text (a host name in a CONNECT line, a URL) on its way into the daemon's log or a
 * refusal message: the shared sanitizer (vm/safe-text.ts) shows every control character (C0, C1,
 * bidi overrides, line separators) as a visible escape, so a guest cannot forge log lines, move a
 * terminal's cursor, make a name read backwards or split a header, and the length is capped.
 */
import { safeText } from '../safe-text.ts';

export function printable(text: string, max = 300): string {
  return safeText(text, { maxChars: max });
}
