import { describe, expect, it } from 'vitest';
import { formatSshUrl, parseSshUrl, sshDestination } from './ssh-url.ts';

describe('parseSshUrl', () => {
  it('takes server, user@server, server:port, IPv4, IPv6 in brackets, an ssh_config alias and a trailing /', () => {
    expect(parseSshUrl('ssh://box')).toEqual({ user: null, server: 'box', port: null });
    expect(parseSshUrl('ssh://me@build.example.org')).toEqual({ user: 'me', server: 'build.example.org', port: null });
    expect(parseSshUrl('ssh://me@10.0.0.5:2222')).toEqual({ user: 'me', server: '10.0.0.5', port: 2222 });
    expect(parseSshUrl('ssh://[fd00::5]:22')).toEqual({ user: null, server: 'fd00::5', port: 22 });
    expect(parseSshUrl('SSH://u_1.x-y@my_alias/')).toEqual({ user: 'u_1.x-y', server: 'my_alias', port: null });
  });

  it.each([
    ['http://box', 'does not start with ssh://'],
    ['box', 'does not start with ssh://'],
    ['ssh://', 'server is missing'],
    ['ssh://me@', 'server is missing'],
    ['ssh://me:secret@box', 'password'],
    ['ssh://-oProxyCommand=x', 'may use only'],
    ['ssh://-l@box', 'user "-l"'],
    ['ssh://me@box:0', 'port "0"'],
    ['ssh://me@box:65536', 'port "65536"'],
    ['ssh://me@box:22x', 'port "22x"'],
    ['ssh://me@box/var/run/x.sock', 'path'],
    ['ssh://box?x=1', 'query'],
    ['ssh://box#frag', 'fragment'],
    ['ssh://[not-v6]', 'not an IPv6'],
    ['ssh://a@b@c', 'not of the form'],
    ['ssh://bo x', 'spaces'],
    ['ssh://box\n', 'control'],
    ['ssh://bo$x', 'may use only'],
  ])('refuses %j (%s)', (text, why) => {
    expect(() => parseSshUrl(text)).toThrow(why);
  });

  it('names the expected form in every refusal', () => {
    expect(() => parseSshUrl('nope')).toThrow('ssh://[user@]server[:port]');
  });
});

describe('formatSshUrl / sshDestination', () => {
  it('round-trips the canonical spelling', () => {
    for (const s of ['ssh://box', 'ssh://me@box:2222', 'ssh://[fd00::5]:22', 'ssh://10.0.0.5']) expect(formatSshUrl(parseSshUrl(s))).toBe(s);
    expect(formatSshUrl(parseSshUrl('SSH://box/'))).toBe('ssh://box');
  });

  it('puts options before `--` and the server last, so no part can be read as an option', () => {
    expect(sshDestination(parseSshUrl('ssh://me@box:2222'))).toEqual(['-l', 'me', '-p', '2222', '--', 'box']);
    expect(sshDestination(parseSshUrl('ssh://[fd00::5]'))).toEqual(['--', 'fd00::5']);
  });
});
