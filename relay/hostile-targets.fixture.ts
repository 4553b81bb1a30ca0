/**
 * Request targets that must never become a `Location` off the relay's host after a share link: shared
 * by the unit spec (relay/redirect-target.spec.ts) and the end-to-end table (relay-share.test.ts).
 */

export const HOSTILE_TARGETS = [
  '//evil.example/',
  '//evil.example',
  '///evil.example/',
  '/\\evil.example/',
  '\\\\evil.example/',
  '\\/evil.example/',
  'https://evil.example/',
  'http://evil.example/x?y=1',
  'HTTPS://evil.example',
  'javascript:alert(1)',
  'data:text/html,hi',
  'evil.example/',
  '/\t/evil.example/',
  '/\n/evil.example/',
  '/ /evil.example/',
  '/%2F%2Fevil.example/',
  '/%2f/evil.example/',
  '/%5C%5Cevil.example/',
  '/%5c/evil.example',
  '/.//evil.example/',
  '/..//evil.example/',
  '/a/..//evil.example/',
  '/%2e%2e//evil.example/',
  '/./%2e//evil.example',
  '/a\\b',
  '/\u00e9vil',
  '',
  `/${'a'.repeat(9000)}`,
];

