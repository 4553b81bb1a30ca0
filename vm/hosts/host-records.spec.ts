import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { EMPTY_HOSTS, hostNameProblem, parseHostsFile, readHostsFile, remoteCommandProblem, withHost, withoutHost, writeHostsFile, type HostRecord } from './host-records.ts';

const rec = (name: string, over: Partial<HostRecord> = {}): HostRecord => ({
  name,
  url: 'ssh://me@box:2222',
  identity: null,
  sshConfig: null,
  remoteCommand: 'spritely',
  addedAt: '2026-11-30T00:00:00.000Z',
  ...over,
});

describe('host names', () => {
  it('are DNS labels, and "local" is reserved for this computer', () => {
    expect(hostNameProblem('gpu-box')).toBeNull();
    expect(hostNameProblem('b1')).toBeNull();
    expect(hostNameProblem('local')).toMatch(/this computer/);
    expect(hostNameProblem('')).toMatch(/empty/);
    expect(hostNameProblem('Box')).toMatch(/DNS label/);
    expect(hostNameProblem('-box')).toMatch(/DNS label/);
    expect(hostNameProblem('a.b')).toMatch(/DNS label/);
    expect(hostNameProblem('x'.repeat(64))).toMatch(/63/);
    expect(hostNameProblem(42)).toMatch(/empty/);
  });
});

describe('remote commands', () => {
  it('are one line of a shell command', () => {
    expect(remoteCommandProblem('spritely')).toBeNull();
    expect(remoteCommandProblem('env SPRITELY_HOME=/srv/s /usr/bin/node /opt/spritely/bin/spritely.js')).toBeNull();
    expect(remoteCommandProblem('  ')).toMatch(/empty/);
    expect(remoteCommandProblem('a\nb')).toMatch(/control/);
    expect(remoteCommandProblem('x'.repeat(1001))).toMatch(/1000/);
  });
});

describe('the host list', () => {
  it('adds and removes records, refusing a duplicate or an unknown name', () => {
    const one = withHost(EMPTY_HOSTS, rec('a'));
    const two = withHost(one, rec('b'));
    expect(two.hosts.map((h) => h.name)).toEqual(['a', 'b']);
    expect(() => withHost(two, rec('a'))).toThrow(/already a host named "a"/);
    expect(withoutHost(two, 'a').hosts.map((h) => h.name)).toEqual(['b']);
    expect(() => withoutHost(two, 'zz')).toThrow(/no host named "zz"/);
    expect(EMPTY_HOSTS.hosts).toEqual([]);
  });

  it('refuses records that could not have been written by host add', () => {
    expect(() => withHost(EMPTY_HOSTS, rec('a', { url: 'ssh://me@box:2222/' }))).toThrow();
    expect(() => withHost(EMPTY_HOSTS, rec('a', { url: 'ssh://-oProxyCommand=x' }))).toThrow();
    expect(() => withHost(EMPTY_HOSTS, rec('local'))).toThrow();
    expect(() => withHost(EMPTY_HOSTS, rec('a', { remoteCommand: 'x\ny' }))).toThrow();
    expect(() => withHost(EMPTY_HOSTS, { ...rec('a'), token: 'x' } as HostRecord)).toThrow();
  });

  it('parses a missing file as empty and names the file and the field of a bad one', () => {
    expect(parseHostsFile(null)).toEqual(EMPTY_HOSTS);
    expect(() => parseHostsFile({ version: 2, hosts: [] }, '/x/hosts.json')).toThrow(/\/x\/hosts.json is not a valid host list \(version/);
    expect(() => parseHostsFile({ version: 1, hosts: [rec('a', { url: 'http://x' })] })).toThrow(/hosts.0.url/);
    expect(() => parseHostsFile({ version: 1, hosts: [rec('a'), rec('a')] })).toThrow(/twice/);
  });
});

describe('hosts.json on disk', () => {
  let dir: string | null = null;
  afterEach(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
    dir = null;
  });

  it('is written owner-only and atomically (no temp file left), and read back equal', async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hosts-spec-'));
    const file = path.join(dir, 'hosts.json');
    expect(readHostsFile(file)).toEqual(EMPTY_HOSTS);
    const list = withHost(EMPTY_HOSTS, rec('a', { identity: '/home/me/.ssh/id_ed25519' }));
    await writeHostsFile(file, list);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(readHostsFile(file)).toEqual(list);
    await writeHostsFile(file, withoutHost(list, 'a'));
    expect(readHostsFile(file)).toEqual(EMPTY_HOSTS);
    expect(fs.readdirSync(dir)).toEqual(['hosts.json']);
  });

  it('says which file is unreadable', () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hosts-spec-'));
    const file = path.join(dir, 'hosts.json');
    fs.writeFileSync(file, '{nope');
    expect(() => readHostsFile(file)).toThrow(file);
  });
});
