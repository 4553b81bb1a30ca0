/**
 * Where the relay may send a browser after swapping a share link for its cookie: only to a path on
 * the same host. The target comes from the request line, which anyone can write, so it is parsed
 * strictly and anything that is not plainly a same-host path becomes `/`. Browsers read `//host`,
 * `/\host`, `\\host` and `/<TAB>/host` as other hosts, resolve dot segments (`/..//host`), and some
 * servers behind the redirect decode `%2F`/`%5C`; an absolute-form target (`GET https://…`) names a
 * host outright. None of these may leave the relay as a `Location`.
 */

const BASE = new URL('https://relay.invalid');
/** Longer targets are not worth keeping (Node caps the request head at --max-header anyway). */
const MAX_TARGET = 8192;

/** The `Location` for a same-host redirect to `target` (path and query): `target` normalized, or `/`. */
export function safeRedirectPath(target: string): string {
  if (target.length === 0 || target.length > MAX_TARGET) return '/';
  // One leading slash, then not a second slash or backslash: a path, not a scheme or an authority.
  if (target[0] !== '/' || target[1] === '/' || target[1] === '\\') return '/';
  // Printable ASCII only (browsers drop tabs and newlines inside URLs), and no backslash anywhere.
  if (/[^\x21-\x7e]/.test(target) || target.includes('\\')) return '/';
  let url: URL;
  try {
    url = new URL(target, BASE);
  } catch {
    return '/';
  }
  if (url.origin !== BASE.origin) return '/';
  const path = `${url.pathname}${url.search}`;
  // Dot segments can leave `//host` after normalizing; an encoded slash up front invites a decoder to.
  if (!path.startsWith('/') || /^\/(?:[/\\]|%2f|%5c)/i.test(path)) return '/';
  return path;
}
