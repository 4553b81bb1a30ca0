/**
 * A second Linux host on this machine, for the remote-host tests and bench/remote.ts: a network
 * namespace made here (a veth pair with a private /30), its own `sshd` (Debian's openssh-server)
 * listening only on the namespace's address, with host keys and an authorized client key made in
 * a temp dir, and its own Spritely data dir (this checkout's bin/spritely.js, sharing the cached
 * test images). It is reached with real OpenSSH through an ssh_config of its own (known_hosts,
 * key), never the user's ~/.ssh.
 *
 * Addresses are 192.168.2xx.1/.2: every octet either ≥ 100 or < 8, so no zero-padded spelling of
 * them means something else to a C library (egress-proxy.spec.ts probes every interface address of
 * this computer in such spellings and would trip over 10.x while this test runs).
 *
 * Cutting the link (`setLink(false)`) keeps the packets on this machine: see there.
 *
 * Cleanup ends, by pid, every process in the namespace (sshd, its sessions, the remote daemon
 * and its QEMUs all live there), then deletes the namespace and the temp dirs, even after a failure.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { layout, type Layout } from '../../vm/paths.ts';
import { BIN, killQemusOf, makeHome, testImagesDir } from './harness.ts';

export interface RemoteHost {
  ns: string;
  address: string;
  /** ssh://root@ADDRESS */
  url: string;
  dir: string;
  /** -F file for ssh (known_hosts and key of the test). */
  sshConfig: string;
  knownHosts: string;
  hostKeyPub: string;
  /** `ssh-keygen -l` of the server's key: `SHA256:…`. */
  fingerprint: string;
  /** The remote Spritely data dir and its layout. */
  home: string;
  layout: Layout;
  /** What `--remote-command` runs on the server. */
  remoteCommand: string;
  sshdPid: number;
  /** Writes the server's real key (or `wrongKeyPub`) to known_hosts; `null` empties it. */
  setKnownHost(which: 'real' | 'wrong' | null): void;
  /** Cuts the link (packets dropped: the server looks dead) or restores it. */
  setLink(up: boolean): void;
  /** The remote daemon's pid (from its pid file), or null. */
  remoteDaemonPid(): number | null;
  cleanup(): Promise<void>;
}

function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function pick(): { ns: string; hostIf: string; nsIf: string; a: string; b: string } {
  const used = sh('ip', ['-4', '-o', 'addr']);
  for (let i = 0; i < 50; i++) {
    const third = 200 + crypto.randomInt(55);
    const a = `192.168.${third}.1`;
    if (used.includes(`192.168.${third}.`)) continue;
    const tag = crypto.randomBytes(3).toString('hex');
    return { ns: `sprh-${tag}`, hostIf: `sph${tag}a`, nsIf: `sph${tag}b`, a, b: `192.168.${third}.2` };
  }
  throw new Error('no free 192.168.2xx.0/30 for the test host');
}

async function waitPort(host: string, port: number, ms: number, proc: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) throw new Error(`sshd exited: ${log()}`);
    const ok = await new Promise<boolean>((r) => {
      const s = net.connect({ host, port });
      s.once('connect', () => (s.destroy(), r(true)));
      s.once('error', () => r(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`sshd did not listen on ${host}:${port}: ${log()}`);
}

export async function startRemoteHost(): Promise<RemoteHost> {
  const n = pick();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sprh-'));
  const home = makeHome();
  let sshd: ChildProcess | null = null;
  const cleanup = async () => {
    // every process in the namespace: sshd, its sessions, the remote daemon, its QEMUs
    for (let round = 0; round < 3; round++) {
      let pids: number[] = [];
      try {
        pids = sh('ip', ['netns', 'pids', n.ns]).split('\n').filter(Boolean).map(Number);
      } catch {
        break;
      }
      if (!pids.length) break;
      for (const pid of pids) {
        try {
          process.kill(pid, round === 0 ? 'SIGTERM' : 'SIGKILL');
        } catch {
          /* gone */
        }
      }
      await new Promise((r) => setTimeout(r, round === 0 ? 1500 : 300));
    }
    if (sshd && sshd.exitCode === null) sshd.kill('SIGKILL');
    killQemusOf(home);
    try {
      sh('ip', ['netns', 'del', n.ns]);
    } catch {
      /* not made */
    }
    try {
      sh('ip', ['route', 'del', 'unreachable', `${n.a.split('.').slice(0, 3).join('.')}.0/30`]);
    } catch {
      /* none */
    }
    try {
      sh('ip', ['link', 'del', n.hostIf]);
    } catch {
      /* went with the namespace */
    }
    if (!process.env.SPRITELY_TEST_KEEP) {
      fs.rmSync(dir, { recursive: true, force: true });
      fs.rmSync(home, { recursive: true, force: true });
      fs.rmSync(layout(home).runDir, { recursive: true, force: true });
    }
  };
  try {
    sh('ip', ['netns', 'add', n.ns]);
    sh('ip', ['link', 'add', n.hostIf, 'type', 'veth', 'peer', 'name', n.nsIf]);
    sh('ip', ['link', 'set', n.nsIf, 'netns', n.ns]);
    sh('ip', ['addr', 'add', `${n.a}/30`, 'dev', n.hostIf]);
    sh('ip', ['link', 'set', n.hostIf, 'up']);
    sh('ip', ['netns', 'exec', n.ns, 'ip', 'addr', 'add', `${n.b}/30`, 'dev', n.nsIf]);
    sh('ip', ['netns', 'exec', n.ns, 'ip', 'link', 'set', n.nsIf, 'up']);
    sh('ip', ['netns', 'exec', n.ns, 'ip', 'link', 'set', 'lo', 'up']);

    const hostKey = path.join(dir, 'ssh_host_ed25519_key');
    const wrongKey = path.join(dir, 'wrong_host_key');
    const clientKey = path.join(dir, 'id_ed25519');
    for (const k of [hostKey, wrongKey, clientKey]) sh('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'spritely-test', '-f', k]);
    fs.copyFileSync(`${clientKey}.pub`, path.join(dir, 'authorized_keys'));
    fs.mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
    const sshdConfig = path.join(dir, 'sshd_config');
    fs.writeFileSync(
      sshdConfig,
      [
        `ListenAddress ${n.b}:22`,
        `HostKey ${hostKey}`,
        `AuthorizedKeysFile ${path.join(dir, 'authorized_keys')}`,
        'StrictModes no',
        'UsePAM no',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'PermitRootLogin prohibit-password',
        'AllowStreamLocalForwarding yes',
        'AllowTcpForwarding yes',
        'PidFile none',
        'MaxSessions 64',
        'LogLevel VERBOSE',
        '',
      ].join('\n'),
    );
    const sshdLog = path.join(dir, 'sshd.log');
    const logFd = fs.openSync(sshdLog, 'a');
    sshd = spawn('ip', ['netns', 'exec', n.ns, '/usr/sbin/sshd', '-D', '-e', '-f', sshdConfig], { stdio: ['ignore', logFd, logFd] });
    fs.closeSync(logFd);
    await waitPort(n.b, 22, 10_000, sshd, () => fs.readFileSync(sshdLog, 'utf8'));

    const knownHosts = path.join(dir, 'known_hosts');
    fs.writeFileSync(knownHosts, '');
    const sshConfig = path.join(dir, 'ssh_config');
    fs.writeFileSync(sshConfig, ['Host *', `  UserKnownHostsFile ${knownHosts}`, '  GlobalKnownHostsFile /dev/null', `  IdentityFile ${clientKey}`, '  IdentitiesOnly yes', '  HashKnownHosts no', ''].join('\n'));
    const hostKeyPub = fs.readFileSync(`${hostKey}.pub`, 'utf8').trim();
    const wrongPub = fs.readFileSync(`${wrongKey}.pub`, 'utf8').trim();
    const fingerprint = sh('ssh-keygen', ['-l', '-f', `${hostKey}.pub`]).split(/\s+/)[1];
    // The server's Spritely: this checkout, its own data dir, the shared test images.
    const remoteCommand = `env SPRITELY_HOME=${home} SPRITELY_IMAGES_DIR=${testImagesDir()} ${process.execPath} ${BIN}`;
    const l = layout(home);
    const sshdPid = sshd.pid!;
    return {
      ns: n.ns,
      address: n.b,
      url: `ssh://root@${n.b}`,
      dir,
      sshConfig,
      knownHosts,
      hostKeyPub,
      fingerprint,
      home,
      layout: l,
      remoteCommand,
      sshdPid,
      setKnownHost(which) {
        const key = which === 'real' ? hostKeyPub : which === 'wrong' ? wrongPub : null;
        fs.writeFileSync(knownHosts, key ? `${n.b} ${key.split(' ').slice(0, 2).join(' ')}\n` : '');
      },
      setLink(up) {
        // A downed link takes its connected route along, and the address would then follow the
        // default route off this machine: an `unreachable` route for the /30 keeps every packet
        // here (and makes new connections fail at once, as a dead LAN would).
        const net = `${n.a.split('.').slice(0, 3).join('.')}.0/30`;
        if (!up) {
          sh('ip', ['route', 'replace', 'unreachable', net]);
          sh('ip', ['link', 'set', n.hostIf, 'down']);
          return;
        }
        sh('ip', ['link', 'set', n.hostIf, 'up']);
        if (!sh('ip', ['-4', '-o', 'addr', 'show', 'dev', n.hostIf]).includes(n.a)) sh('ip', ['addr', 'add', `${n.a}/30`, 'dev', n.hostIf]);
        try {
          sh('ip', ['route', 'del', 'unreachable', net]);
        } catch {
          /* not there */
        }
      },
      remoteDaemonPid() {
        try {
          return Number(fs.readFileSync(l.daemonPidFile, 'utf8').trim()) || null;
        } catch {
          return null;
        }
      },
      cleanup,
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}
