import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { layout } from '../paths.ts';
import { clientKeyFile, knownHostsLine, proxyCommand, sshConfigBlock, sshConfigValue, writeKnownHosts } from './agent-ssh.ts';

describe('ssh_config values', () => {
  it('leaves plain paths alone, quotes spaces and doubles "%"', () => {
    expect(sshConfigValue('/home/a/.local/share/spritely/keys/id_ed25519')).toBe('/home/a/.local/share/spritely/keys/id_ed25519');
    expect(sshConfigValue('/Users/A B/Library/spritely/keys/id_ed25519')).toBe('"/Users/A B/Library/spritely/keys/id_ed25519"');
    expect(sshConfigValue('/tmp/100%/k')).toBe('/tmp/100%%/k');
    expect(sshConfigValue('/tmp/a "b"\\c')).toBe('"/tmp/a \\"b\\"\\\\c"');
  });

  it('builds a shell-quoted ProxyCommand that carries a non-default data dir', () => {
    expect(proxyCommand({ execPath: '/usr/bin/node', script: '/opt/spritely/bin/spritely.js', name: 'dev' })).toBe('/usr/bin/node /opt/spritely/bin/spritely.js ssh-proxy dev');
    expect(proxyCommand({ execPath: '/Applications/My Node/node', script: "/x/it's/spritely.js", name: 'dev', env: { SPRITELY_HOME: '/d/50%', SPRITELY_IMAGES_DIR: undefined } })).toBe(
      `env SPRITELY_HOME=/d/50%% '/Applications/My Node/node' '/x/it'\\''s/spritely.js' ssh-proxy dev`,
    );
  });

  it('a Host block that pins the sprite key under its alias', () => {
    const text = sshConfigBlock({ name: 'dev', keyFile: '/k/id_ed25519', knownHostsFile: '/h/ssh/dev.known_hosts', proxyCommand: 'node s.js ssh-proxy dev' });
    expect(text).toBe(
      [
        '# spritely sprite "dev" (spritely ssh-config dev)',
        'Host dev',
        '  User root',
        '  IdentityFile /k/id_ed25519',
        '  IdentitiesOnly yes',
        '  ProxyCommand node s.js ssh-proxy dev',
        '  HostKeyAlias spritely-dev',
        '  UserKnownHostsFile /h/ssh/dev.known_hosts',
        '  StrictHostKeyChecking yes',
        '  UpdateHostKeys no',
        '',
      ].join('\n'),
    );
    expect(knownHostsLine('dev', 'ssh-ed25519 AAAAC3Nz host-comment\n')).toBe('spritely-dev ssh-ed25519 AAAAC3Nz\n');
    expect(() => knownHostsLine('dev', 'garbage')).toThrow(/not an OpenSSH public key/);
  });

  it('OpenSSH reads the block as meant, spaces and "%" in paths included', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agent ssh %x-'));
    try {
      // A stand-in ProxyCommand that records that it ran (and then hangs up: no server behind it).
      const script = path.join(dir, 'fake proxy.sh');
      fs.writeFileSync(script, `#!/bin/sh\necho "$@" > '${path.join(dir, 'proxy-ran')}'\n`, { mode: 0o755 });
      const cfg = path.join(dir, 'config');
      fs.writeFileSync(
        cfg,
        sshConfigBlock({
          name: 'dev',
          keyFile: path.join(dir, 'id_ed25519'),
          knownHostsFile: path.join(dir, 'dev.known_hosts'),
          proxyCommand: proxyCommand({ execPath: '/bin/sh', script, name: 'dev' }),
        }),
      );
      const g = spawnSync('ssh', ['-G', '-F', cfg, 'dev'], { encoding: 'utf8' });
      expect(g.status, g.stderr).toBe(0);
      const opt = (k: string) => g.stdout.split('\n').find((l) => l.startsWith(`${k} `))?.slice(k.length + 1);
      expect(opt('user')).toBe('root');
      expect(opt('hostkeyalias')).toBe('spritely-dev');
      expect(opt('stricthostkeychecking')).toBe('true');
      expect(opt('identitiesonly')).toBe('yes');
      const v = spawnSync('ssh', ['-v', '-F', cfg, 'dev', 'true'], { encoding: 'utf8', timeout: 20_000 });
      expect(v.status).not.toBe(0);
      expect(v.stderr).toContain(`identity file ${path.join(dir, 'id_ed25519')} type -1`);
      expect(fs.readFileSync(path.join(dir, 'proxy-ran'), 'utf8')).toBe('ssh-proxy dev\n');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('known_hosts from the pinned key', () => {
  it('writes the pinned key 0600 in a 0700 dir and rewrites it when the sprite was re-created', async () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'agent-ssh-'));
    try {
      const l = layout(home);
      const file = writeKnownHosts(l, 'dev', 'ssh-ed25519 AAAAfirst dev');
      expect(fs.readFileSync(file, 'utf8')).toBe('spritely-dev ssh-ed25519 AAAAfirst\n');
      expect(fs.statSync(file).mode & 0o777).toBe(0o600);
      expect(fs.statSync(path.dirname(file)).mode & 0o777).toBe(0o700);
      writeKnownHosts(l, 'dev', 'ssh-ed25519 AAAAsecond dev');
      expect(fs.readFileSync(file, 'utf8')).toBe('spritely-dev ssh-ed25519 AAAAsecond\n');
      expect(() => writeKnownHosts(l, 'dev', 'garbage')).toThrow(/not an OpenSSH public key/);
      expect(clientKeyFile(l)).toBe(path.join(home, 'keys', 'id_ed25519'));
    } finally {
      fs.rmSync(home, { recursive: true, force: true });
    }
  });
});
