/**
 * The relay's own answers (404, 401, 502, 504, limits): short HTML pages a phone user can read, with
 * a `spritely-relay-error` header so scripts and tests can tell them from the app's own responses.
 */

export type RelayErrorCode =
  | 'unknown-host'
  | 'unauthorized'
  | 'body-too-large'
  | 'headers-too-large'
  | 'rate-limited'
  | 'app-down'
  | 'no-target'
  | 'tunnel-error'
  | 'too-many-streams'
  | 'timeout';

const PAGES: Record<RelayErrorCode, { status: number; title: string; detail: string }> = {
  // One page for "never published", "unpublished", "unknown or revoked account" and "its computer is
  // offline": telling them apart would tell strangers which accounts exist.
  'unknown-host': { status: 404, title: 'No sprite here', detail: 'Nothing is published at this address, or the computer that serves it is not connected.' },
  unauthorized: { status: 401, title: 'This sprite is private', detail: 'Open it with a share link, or send an access token.' },
  'body-too-large': { status: 413, title: 'Request too large', detail: 'The request body is larger than this relay accepts.' },
  'headers-too-large': { status: 431, title: 'Request headers too large', detail: 'The request headers are larger than this relay accepts.' },
  'rate-limited': { status: 429, title: 'Too many requests', detail: 'Slow down and try again shortly.' },
  'app-down': { status: 502, title: 'The app is not answering', detail: "The sprite is running, but nothing answers on its app's port." },
  'no-target': { status: 502, title: 'The sprite could not be reached', detail: 'The sprite could not be started or no longer exists.' },
  'tunnel-error': { status: 502, title: 'Bad gateway', detail: 'The connection to the sprite failed.' },
  'too-many-streams': { status: 503, title: 'Too busy', detail: 'Too many requests are in flight for this sprite right now.' },
  timeout: { status: 504, title: 'The sprite did not answer in time', detail: 'It may still be waking up: reload in a moment.' },
};

export interface RelayPage {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export function relayPage(code: RelayErrorCode, detail?: string): RelayPage {
  const page = PAGES[code];
  const text = detail ?? page.detail;
  const body = `<!doctype html><html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">` +
    `<title>${page.status} ${escapeHtml(page.title)}</title></head><body style="font-family:system-ui,sans-serif;max-width:36em;margin:4em auto;padding:0 1em">` +
    `<h1>${escapeHtml(page.title)}</h1><p>${escapeHtml(text)}</p><p style="color:#888">${page.status} · spritely relay</p></body></html>\n`;
  return {
    status: page.status,
    headers: {
      'content-type': 'text/html; charset=utf-8',
      'content-length': String(Buffer.byteLength(body)),
      'cache-control': 'no-store',
      'spritely-relay-error': code,
    },
    body,
  };
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
