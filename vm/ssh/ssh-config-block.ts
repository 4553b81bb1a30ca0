/**
 * The OpenSSH `Host NAME` block of a sprite, one builder for everyone who hands it out: the CLI
 * (`spritely ssh-config NAME`) and the API (`sprites.sshConfig`, the app's "Copy SSH config").
 * The block pins the sprite's host key (written to a known_hosts file of our own under a
 * per-sprite alias) and reaches the sprite through `spritely ssh-proxy NAME`, which wakes it.
 * The text is built by pure functions; `sshConfigFor` is the thin shell that checks the client key
 * and writes the known_hosts file the block points at.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SpritelyError } from '../errors.ts';
import type { Layout } from '../paths.ts';
import { shellQuote } from './shell-quote.ts';

/** The `spritely` command a ProxyCommand runs (the same checkout as the code building the block). */
export const SPRITELY_BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/spritely.js');

export function hostKeyAlias(name: string): string {
  return `spritely-${name}`;
}

export function clientKeyFile(l: Layout): string {
  return path.join(l.keysDir, 'id_ed25519');
}

export function knownHostsFile(l: Layout, name: string): string {
  return path.join(l.home, 'ssh', `${name}.known_hosts`);
}

export function knownHostsLine(name: string, hostKeyPub: string): string {
  const [type, blob] = hostKeyPub.trim().split(/\s+/);
  if (!type || !blob) throw new SpritelyError('internal', `The pinned host key of "${name}" is not an OpenSSH public key.`);
  return `${hostKeyAlias(name)} ${type} ${blob}\n`;
}

/** ssh_config expands %-tokens (and ~) in these values: "%" is written "%%"; spaces need quotes. */
export function sshConfigValue(value: string): string {
  const v = value.replaceAll('%', '%%');
  if (/^[A-Za-z0-9_\-+=/.,:@%]+$/.test(v)) return v;
  return `"${v.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/**
 * The ProxyCommand: run by ssh through the user's shell, so every word is shell-quoted, then "%"
 * doubled for ssh's own token expansion. A non-default data dir (SPRITELY_HOME) travels with it.
 */
export function proxyCommand(opts: { execPath: string; script: string; name: string; env?: Record<string, string | undefined> }): string {
  const env = Object.entries(opts.env ?? {}).filter((e): e is [string, string] => typeof e[1] === 'string' && e[1] !== '');
  const words = [...(env.length ? ['env', ...env.map(([k, v]) => `${k}=${v}`)] : []), opts.execPath, opts.script, 'ssh-proxy', opts.name];
  return words.map(shellQuote).join(' ').replaceAll('%', '%%');
}

export interface SshConfigInput {
  name: string;
  keyFile: string;
  knownHostsFile: string;
  proxyCommand: string;
}

/**
 * The `Host NAME` block. Root in a sprite is untrusted, so nothing of this computer is handed to it:
 * no agent forwarding (it could sign in elsewhere as you while you are connected), no X11 (it
 * could watch your display), and no port forwardings from other config blocks (a RemoteForward
 * under `Host *` would open a way back into this computer). OpenSSH takes the first value it meets
 * for each option, so these hold only when the block comes before any `Host *`: docs/agents.md
 * says how to `Include` the generated file at the top of ~/.ssh/config. ClearAllForwardings also
 * drops `-L`/`-R`/`-D` given on the command line; `ssh -o ClearAllForwardings=no -L …` is how to
 * ask for one on purpose (command-line options come first).
 */
export function sshConfigBlock(c: SshConfigInput): string {
  return [
    `# spritely sprite "${c.name}" (spritely ssh-config ${c.name})`,
    `Host ${c.name}`,
    `  User root`,
    `  IdentityFile ${sshConfigValue(c.keyFile)}`,
    `  IdentitiesOnly yes`,
    `  ProxyCommand ${c.proxyCommand}`,
    `  HostKeyAlias ${hostKeyAlias(c.name)}`,
    `  UserKnownHostsFile ${sshConfigValue(c.knownHostsFile)}`,
    `  StrictHostKeyChecking yes`,
    `  UpdateHostKeys no`,
    `  ForwardAgent no`,
    `  ForwardX11 no`,
    `  ClearAllForwardings yes`,
    '',
  ].join('\n');
}

/**
 * The environment the ProxyCommand needs to reach the same daemon: a non-default data dir and
 * images dir, and — when this runs inside Electron's Node (the desktop app's daemon) — the switch
 * that makes the Electron binary behave as Node instead of opening the app.
 */
export function proxyEnv(l: Layout, env: NodeJS.ProcessEnv, electron: boolean): Record<string, string | undefined> {
  return {
    ...(electron ? { ELECTRON_RUN_AS_NODE: '1' } : {}),
    SPRITELY_HOME: env.SPRITELY_HOME ? l.home : undefined,
    SPRITELY_IMAGES_DIR: env.SPRITELY_IMAGES_DIR ? l.imagesDir : undefined,
  };
}

/** Writes the sprite's pinned host key to its known_hosts file (0600, in a 0700 dir) when it differs. */
export function writeKnownHosts(l: Layout, name: string, hostKeyPub: string): string {
  const file = knownHostsFile(l, name);
  const text = knownHostsLine(name, hostKeyPub);
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  let current: string | null = null;
  try {
    current = fs.readFileSync(file, 'utf8');
  } catch {
    /* not written yet */
  }
  if (current !== text) {
    const tmp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, text, { mode: 0o600 });
    fs.renameSync(tmp, file);
  }
  fs.chmodSync(file, 0o600);
  return file;
}

/** The block for `name`, after writing the known_hosts file it names. */
export function sshConfigFor(l: Layout, name: string, hostKeyPub: string, env: NodeJS.ProcessEnv = process.env, runtime = { execPath: process.execPath, electron: !!process.versions.electron }): string {
  const keyFile = clientKeyFile(l);
  if (!fs.existsSync(keyFile)) throw new SpritelyError('failed_precondition', `The client key ${keyFile} does not exist yet (the daemon makes it when it starts).`);
  return sshConfigBlock({
    name,
    keyFile,
    knownHostsFile: writeKnownHosts(l, name, hostKeyPub),
    proxyCommand: proxyCommand({ execPath: runtime.execPath, script: SPRITELY_BIN, name, env: proxyEnv(l, env, runtime.electron) }),
  });
}
