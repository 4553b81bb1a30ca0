import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { layout } from '../paths.ts';
import { clientKeyFile, knownHostsLine, proxyCommand, proxyEnv, sshConfigBlock, sshConfigFor, sshConfigValue, SPRITELY_BIN, writeKnownHosts } from './ssh-config-block.ts';

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
        '  ForwardAgent no',
        '  ForwardX11 no',
        '  ClearAllForwardings yes',
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
      expect(opt('forwardagent')).toBe('no');
      expect(opt('forwardx11')).toBe('no');
      expect(opt('clearallforwardings')).toBe('yes');
      const v = spawnSync('ssh', ['-v', '-F', cfg, 'dev', 'true'], { encoding: 'utf8', timeout: 20_000 });
      expect(v.status).not.toBe(0);
      expect(v.stderr).toContain(`identity file ${path.join(dir, 'id_ed25519')} type -1`);
      expect(fs.readFileSync(path.join(dir, 'proxy-ran'), 'utf8')).toBe('ssh-proxy dev\n');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('a ~/.ssh/config with the generated file Included at the top', () => {
  it('keeps agent, X11 and forwardings from a later `Host *` away from the sprite; the ProxyCommand still runs; other hosts keep theirs', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agent-ssh-include-'));
    try {
      const script = path.join(dir, 'proxy.sh');
      fs.writeFileSync(script, `#!/bin/sh\necho "$@" > '${path.join(dir, 'proxy-ran')}'\n`, { mode: 0o755 });
      const generated = path.join(dir, 'spritely.conf');
      fs.writeFileSync(generated, sshConfigBlock({ name: 'dev', keyFile: path.join(dir, 'id'), knownHostsFile: path.join(dir, 'kh'), proxyCommand: proxyCommand({ execPath: '/bin/sh', script, name: 'dev' }) }));
      const cfg = path.join(dir, 'config');
      fs.writeFileSync(
        cfg,
        [`Include ${generated}`, '', 'Host *', '  ForwardAgent yes', '  ForwardX11 yes', '  RemoteForward 9999 127.0.0.1:22', '  LocalForward 8888 127.0.0.1:80', '  DynamicForward 1080', ''].join('\n'),
      );
      const g = (host: string) => {
        const r = spawnSync('ssh', ['-G', '-F', cfg, host], { encoding: 'utf8' });
        expect(r.status, r.stderr).toBe(0);
        return r.stdout;
      };
      const dev = g('dev');
      expect(dev).toMatch(/^forwardagent no$/m);
      expect(dev).toMatch(/^forwardx11 no$/m);
      expect(dev).toMatch(/^clearallforwardings yes$/m);
      expect(dev).not.toMatch(/^(local|remote|dynamic)forward /m);
      const other = g('elsewhere.example');
      expect(other).toMatch(/^forwardagent yes$/m);
      expect(other).toMatch(/^remoteforward 9999 /m);
      // the ProxyCommand runs as before (scp sets ClearAllForwardings itself and uses it too)
      spawnSync('ssh', ['-F', cfg, 'dev', 'true'], { encoding: 'utf8', timeout: 20_000 });
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

describe('the block for a sprite (what the CLI prints and the API returns)', () => {
  it('carries a non-default data dir and images dir, and Electron’s run-as-Node switch inside the app', () => {
    const l = { ...layout('/d/home'), imagesDir: '/d/images' };
    expect(proxyEnv(l, {}, false)).toEqual({ SPRITELY_HOME: undefined, SPRITELY_IMAGES_DIR: undefined });
    expect(proxyEnv(l, { SPRITELY_HOME: 'home', SPRITELY_IMAGES_DIR: 'x' }, false)).toEqual({ SPRITELY_HOME: '/d/home', SPRITELY_IMAGES_DIR: '/d/images' });
    expect(proxyEnv(l, {}, true)).toEqual({ ELECTRON_RUN_AS_NODE: '1', SPRITELY_HOME: undefined, SPRITELY_IMAGES_DIR: undefined });
  });

  it('refuses while the client key is missing, then writes known_hosts and names it', () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'ssh-config-'));
    try {
      const l = layout(home);
      const runtime = { execPath: '/usr/bin/node', electron: false };
      expect(() => sshConfigFor(l, 'dev', 'ssh-ed25519 AAAAk dev', {}, runtime)).toThrow(/client key .* does not exist yet/);
      fs.mkdirSync(l.keysDir, { recursive: true });
      fs.writeFileSync(clientKeyFile(l), 'key');
      const text = sshConfigFor(l, 'dev', 'ssh-ed25519 AAAAk dev', { SPRITELY_HOME: home }, runtime);
      expect(text).toContain(`  ProxyCommand env SPRITELY_HOME=${home} /usr/bin/node ${SPRITELY_BIN} ssh-proxy dev\n`);
      expect(text).toContain(`  UserKnownHostsFile ${path.join(home, 'ssh', 'dev.known_hosts')}\n`);
      expect(fs.readFileSync(path.join(home, 'ssh', 'dev.known_hosts'), 'utf8')).toBe('spritely-dev ssh-ed25519 AAAAk\n');
      expect(SPRITELY_BIN).toBe(path.resolve(import.meta.dirname, '../../bin/spritely.js'));
    } finally {
      fs.rmSync(home, { recursive: true, force: true });
    }
  });
});
