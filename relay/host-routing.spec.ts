import { describe, expect, it } from 'vitest';
import { normalizeHost, parsePublicHost, spriteLabel, spriteNameProblem, spriteUrl } from './host-routing.ts';

describe('normalizeHost', () => {
  it.each([
    ['Dev-ABC123.Relay.Example.com:443', 'dev-abc123.relay.example.com'],
    ['relay.example.com.', 'relay.example.com'],
    [' relay.example.com ', 'relay.example.com'],
    ['[::1]:443', ''],
    ['bad_host.example.com', ''],
    ['', ''],
    [undefined, ''],
  ])('%s → %s', (input, expected) => expect(normalizeHost(input)).toBe(expected));
});

describe('parsePublicHost', () => {
  const domain = 'relay.example.com';
  it('finds sprite and suffix', () => {
    expect(parsePublicHost('dev-k3x9ab.relay.example.com', domain)).toEqual({ kind: 'sprite', label: 'dev-k3x9ab', sprite: 'dev', suffix: 'k3x9ab' });
  });
  it('keeps hyphens in the sprite name; the suffix is the last segment', () => {
    expect(parsePublicHost('my-web-app-k3x9ab.relay.example.com:8443', domain)).toMatchObject({ sprite: 'my-web-app', suffix: 'k3x9ab' });
  });
  it('is case-insensitive and ignores the port', () => {
    expect(parsePublicHost('DEV-K3X9AB.relay.example.com:443', domain)).toMatchObject({ sprite: 'dev', suffix: 'k3x9ab' });
  });
  it('recognises the apex', () => {
    expect(parsePublicHost('relay.example.com:443', domain)).toEqual({ kind: 'apex' });
  });
  it.each([
    'dev-k3x9ab.other.example.com',
    'a.dev-k3x9ab.relay.example.com',
    'devk3x9ab.relay.example.com',
    '-k3x9ab.relay.example.com',
    'dev-.relay.example.com',
    'dev-k3.relay.example.com',
    'dev--k3x9ab.relay.example.com',
    'evilrelay.example.com',
    `${'a'.repeat(60)}-k3x9ab.relay.example.com`,
    '127.0.0.1',
  ])('rejects %s', (host) => expect(parsePublicHost(host, domain)).toEqual({ kind: 'unknown' }));
});

describe('spriteNameProblem', () => {
  it('accepts DNS-safe names', () => {
    expect(spriteNameProblem('dev', 'k3x9ab')).toBeNull();
    expect(spriteNameProblem('a-b-1', 'k3x9ab')).toBeNull();
  });
  it.each(['Dev', 'dev_1', '-dev', 'dev-', 'dé', '', 'a.b'])('rejects %j', (name) => expect(spriteNameProblem(name, 'k3x9ab')).toMatch(/invalid sprite name/));
  it('rejects names that make the label longer than 63', () => {
    expect(spriteNameProblem('a'.repeat(56), 'k3x9ab')).toBeNull();
    expect(spriteNameProblem('a'.repeat(57), 'k3x9ab')).toMatch(/too long/);
  });
});

describe('spriteUrl', () => {
  it('omits default ports', () => {
    expect(spriteUrl('dev', 'k3x9ab', 'relay.example.com')).toBe('https://dev-k3x9ab.relay.example.com');
    expect(spriteUrl('dev', 'k3x9ab', 'relay.example.com', 'https:', '443')).toBe('https://dev-k3x9ab.relay.example.com');
    expect(spriteUrl('dev', 'k3x9ab', 'relay.example.com', 'http:', '80')).toBe('http://dev-k3x9ab.relay.example.com');
  });
  it('keeps other ports', () => {
    expect(spriteUrl('dev', 'k3x9ab', 'relay.test', 'https:', '8443')).toBe('https://dev-k3x9ab.relay.test:8443');
  });
  it('labels are name-suffix', () => expect(spriteLabel('dev', 'k3x9ab')).toBe('dev-k3x9ab'));
});
