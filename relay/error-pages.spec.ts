import { describe, expect, it } from 'vitest';
import { escapeHtml, relayPage } from './error-pages.ts';

describe('relayPage', () => {
  it.each([
    ['unknown-host', 404],
    ['unauthorized', 401],
    ['body-too-large', 413],
    ['headers-too-large', 431],
    ['rate-limited', 429],
    ['app-down', 502],
    ['no-target', 502],
    ['too-many-streams', 503],
    ['timeout', 504],
  ] as const)('%s is a %i page with a machine-readable code', (code, status) => {
    const page = relayPage(code);
    expect(page.status).toBe(status);
    expect(page.headers['spritely-relay-error']).toBe(code);
    expect(Number(page.headers['content-length'])).toBe(Buffer.byteLength(page.body));
  });
  it('escapes the detail', () => {
    expect(relayPage('unauthorized', '<script>').body).toContain('&#60;script&#62;');
    expect(escapeHtml(`&"'`)).toBe('&#38;&#34;&#39;');
  });
});
