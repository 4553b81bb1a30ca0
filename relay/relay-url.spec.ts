import { describe, expect, it } from 'vitest';
import { isLoopbackHost, relayUrlProblem } from './relay-url.ts';

describe('relayUrlProblem', () => {
  it.each([
    'https://relay.example.com',
    'https://relay.example.com:8443/',
    'https://203.0.113.5',
    'http://127.0.0.1:8080',
    'http://127.9.9.9',
    'http://localhost:8080',
    'http://LOCALHOST',
    'http://[::1]:8080',
    'http://[::ffff:127.0.0.1]:8080',
    // WHATWG URL parsing canonicalizes these to 127.0.0.1, and so does the connection.
    'http://2130706433',
    'http://127.1',
  ])('allows %s', (url) => expect(relayUrlProblem(url)).toBeNull());

  it.each([
    'http://relay.example.com',
    'http://203.0.113.5:8080',
    'http://192.168.1.10',
    'http://[2001:db8::1]',
    'http://[::ffff:192.0.2.1]',
    'http://localhost.evil.example',
    'http://127.0.0.1.nip.example',
    'http://0.0.0.0:8080',
  ])('refuses plain http to %s, saying why and what to do', (url) => {
    const problem = relayUrlProblem(url);
    expect(problem).toMatch(/unencrypted/);
    expect(problem).toMatch(/https:\/\//);
  });

  it.each(['ftp://relay.example.com', 'ws://127.0.0.1', 'relay.example.com', ''])('refuses %j as not a relay URL', (url) => {
    expect(relayUrlProblem(url)).toMatch(/https:\/\/|not a URL/);
  });
});

describe('isLoopbackHost', () => {
  it.each([
    ['localhost', true],
    ['localhost.', true],
    ['127.0.0.1', true],
    ['[::1]', true],
    ['::1', true],
    ['[::ffff:7f00:1]', true],
    ['10.0.0.1', false],
    ['[fe80::1]', false],
    ['127.1', false],
    ['example.com', false],
  ])('%s → %s', (host, loopback) => expect(isLoopbackHost(host)).toBe(loopback));
});
