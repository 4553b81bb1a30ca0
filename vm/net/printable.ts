/**
 * Guest-supplied text (a host name in a CONNECT line, a URL) on its way into the daemon's log or a
 * refusal message: control characters become visible escapes, so a guest cannot forge log lines,
 * move a terminal's cursor or split a header, and the length is capped.
 */
export function printable(text: string, max = 300): string {
  const clean = text.replace(/[\x00-\x1f\x7f-\x9f\u2028\u2029]/g, (c) => {
    const code = c.charCodeAt(0);
    return code > 0xff ? `\\u${code.toString(16).padStart(4, '0')}` : `\\x${code.toString(16).padStart(2, '0')}`;
  });
  return clean.length > max ? `${clean.slice(0, max)}…` : clean;
}
