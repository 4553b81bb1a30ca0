import { describe, expect, it } from 'vitest';
import { parseByteSize, parseDomain, parseDuration, parseListen } from './relay-config.ts';

describe('parseListen', () => {
  it.each([
    ['0.0.0.0:443', { host: '0.0.0.0', port: 443 }],
    ['127.0.0.1:8080', { host: '127.0.0.1', port: 8080 }],
    ['[::]:443', { host: '::', port: 443 }],
    ['localhost:0', { host: 'localhost', port: 0 }],
    ['8443', { host: '0.0.0.0', port: 8443 }],
  ])('%s', (input, expected) => expect(parseListen(input)).toEqual(expected));
  it.each(['', 'host', 'host:', 'host:70000', ':443', 'a:b'])('rejects %j', (input) => expect(() => parseListen(input)).toThrow());
});

describe('parseByteSize', () => {
  it.each([
    ['1024', 1024],
    ['512k', 512 * 1024],
    ['10mb', 10 * 1024 * 1024],
    ['10MiB', 10 * 1024 * 1024],
    ['1g', 1024 ** 3],
    ['1.5k', 1536],
  ])('%s', (input, expected) => expect(parseByteSize(input)).toBe(expected));
  it.each(['', 'ten', '-1', '5tb'])('rejects %j', (input) => expect(() => parseByteSize(input)).toThrow());
});

describe('parseDuration', () => {
  it.each([
    ['500', 500],
    ['500ms', 500],
    ['30s', 30_000],
    ['2m', 120_000],
    ['1h', 3_600_000],
    ['1.5s', 1500],
  ])('%s', (input, expected) => expect(parseDuration(input)).toBe(expected));
  it.each(['', 's', '5d', '-1s'])('rejects %j', (input) => expect(() => parseDuration(input)).toThrow());
});

describe('parseDomain', () => {
  it('normalises', () => expect(parseDomain('Relay.Example.com.')).toBe('relay.example.com'));
  it.each(['', 'a..b', '-a.com', 'a_b.com', 'https://a.com'])('rejects %j', (input) => expect(() => parseDomain(input)).toThrow());
});
