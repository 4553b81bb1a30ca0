/** Runs the guest's apply-identity with `sh` against a temporary root (SPRITELY_ROOT): parsing,
 * validation before any change, resulting files and modes. Live actions are skipped in this mode. */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DEFAULT_RECIPE } from './recipe.js';

const script = path.join(DEFAULT_RECIPE.guestDir, 'usr/lib/spritely/apply-identity');
const PRIV = '-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n';
const PUB = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAbc root@x\n';
let root: string;
let scratchDir: string;

beforeEach(() => {
  root = mkdtempSync(path.join(os.tmpdir(), 'apply-identity-'));
  scratchDir = path.join(root, 'scratch');
  mkdirSync(scratchDir);
  mkdirSync(path.join(root, 'etc/ssh'), { recursive: true });
  mkdirSync(path.join(root, 'root'));
  writeFileSync(path.join(root, 'etc/hostname'), 'spritely\n');
  writeFileSync(path.join(root, 'etc/hosts'), '127.0.0.1\tlocalhost\n127.0.1.1\tspritely\n::1\tlocalhost\n');
  writeFileSync(path.join(root, 'etc/machine-id'), '0'.repeat(32) + '\n', { mode: 0o444 });
  for (const f of ['ssh_host_ed25519_key', 'ssh_host_ed25519_key.pub', 'ssh_host_rsa_key', 'ssh_host_rsa_key.pub']) {
    writeFileSync(path.join(root, 'etc/ssh', f), 'old\n');
  }
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

function apply(fields: Array<[string, string]> | string) {
  const input = typeof fields === 'string' ? fields : fields.map(([k, v]) => `${k} ${Buffer.from(v, 'latin1').toString('base64')}\n`).join('');
  return spawnSync('sh', [script], { input, env: { ...process.env, SPRITELY_ROOT: root, TMPDIR: scratchDir }, encoding: 'utf8' });
}
const read = (p: string) => readFileSync(path.join(root, p), 'utf8');
const mode = (p: string) => (statSync(path.join(root, p)).mode & 0o777).toString(8);

describe('apply-identity', () => {
  it('applies hostname, machine-id, host key and authorized_keys with the right modes', () => {
    const r = apply([
      ['hostname', 'dev-1'],
      ['machine_id', 'ab'.repeat(16)],
      ['host_key', PRIV],
      ['host_key_pub', PUB],
      ['authorized_keys', 'ssh-ed25519 AAAA user@host\n'],
      ['seed', 'ignored in test mode'],
      ['time', '1700000000123456789'],
    ]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(read('etc/hostname')).toBe('dev-1\n');
    expect(read('etc/hosts')).toBe('127.0.0.1\tlocalhost\n::1\tlocalhost\n127.0.1.1\tdev-1\n');
    expect(read('etc/machine-id')).toBe('ab'.repeat(16) + '\n');
    expect(mode('etc/machine-id')).toBe('444');
    expect(readdirSync(path.join(root, 'etc/ssh')).sort()).toEqual(['ssh_host_ed25519_key', 'ssh_host_ed25519_key.pub']);
    expect(read('etc/ssh/ssh_host_ed25519_key')).toBe(PRIV);
    expect(mode('etc/ssh/ssh_host_ed25519_key')).toBe('600');
    expect(read('etc/ssh/ssh_host_ed25519_key.pub')).toBe(PUB);
    expect(mode('etc/ssh/ssh_host_ed25519_key.pub')).toBe('644');
    expect(mode('root/.ssh')).toBe('700');
    expect(mode('root/.ssh/authorized_keys')).toBe('600');
    expect(read('root/.ssh/authorized_keys')).toBe('ssh-ed25519 AAAA user@host\n');
  });

  it('adds a 127.0.1.1 line when /etc/hosts has none, and accepts a last line without newline', () => {
    writeFileSync(path.join(root, 'etc/hosts'), '127.0.0.1\tlocalhost\n');
    const r = apply(`hostname ${Buffer.from('a').toString('base64')}`);
    expect(r.status).toBe(0);
    expect(read('etc/hosts')).toBe('127.0.0.1\tlocalhost\n127.0.1.1\ta\n');
  });

  it('changes nothing when any field is invalid', () => {
    for (const bad of [
      [['hostname', 'ok'], ['machine_id', 'xyz']],
      [['hostname', 'Bad_Name']],
      [['hostname', '-x']],
      [['hostname', 'a'.repeat(64)]],
      [['host_key', PRIV]],
      [['host_key', 'not a key'], ['host_key_pub', PUB]],
      [['hostname', 'ok'], ['colour', 'blue']],
      [['resize', 'vda']],
      [['time', '12']],
    ] as Array<Array<[string, string]>>) {
      const r = apply(bad);
      expect(r.status, JSON.stringify(bad)).not.toBe(0);
      expect(r.stderr).toMatch(/^apply-identity: /);
      expect(read('etc/hostname')).toBe('spritely\n');
      expect(read('etc/ssh/ssh_host_rsa_key')).toBe('old\n');
    }
    const notB64 = apply('hostname !!!not-base64!!!\n');
    expect(notB64.status).not.toBe(0);
    expect(notB64.stderr).toContain('invalid base64');
    const dup = apply([['hostname', 'a'], ['hostname', 'b']]);
    expect(dup.stderr).toContain('duplicate key');
  });

  it('keeps every value intact whatever order the keys come in', () => {
    const r = apply([['seed', 'x'.repeat(100)], ['time', '1700000000123456789'], ['hostname', 'h1'], ['authorized_keys', 'k\n'], ['machine_id', 'cd'.repeat(16)]]);
    expect(r.stderr).toBe('');
    expect(read('etc/hostname')).toBe('h1\n');
    expect(read('etc/machine-id')).toBe('cd'.repeat(16) + '\n');
  });

  it('accepts empty input and leaves no scratch file behind', () => {
    expect(apply('').status).toBe(0);
    expect(apply([['hostname', 'x']]).status).toBe(0);
    expect(readdirSync(scratchDir)).toEqual([]);
  });

  it('decodes binary and long values exactly (builtin base64 decoder)', () => {
    const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const long = 'ssh-ed25519 ' + 'A'.repeat(2000) + ' x\n' + bytes.toString('latin1');
    for (const value of [long, 'a', 'ab', 'abc', 'abcd']) {
      const r = apply([['authorized_keys', value]]);
      expect(r.status).toBe(0);
      expect(readFileSync(path.join(root, 'root/.ssh/authorized_keys')).equals(Buffer.from(value, 'latin1'))).toBe(true);
    }
  });
});
