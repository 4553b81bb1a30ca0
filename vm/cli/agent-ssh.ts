/**
 * Plain OpenSSH into sprites: `spritely ssh-config NAME` prints a `Host NAME` block (for
 * ~/.ssh/config, VS Code Remote-SSH, rsync, scp…) and `spritely ssh-proxy NAME` is its
 * ProxyCommand. The proxy wakes the sprite, keeps it awake while the connection lasts (it holds an
 * idle exec channel, as an open terminal does) and pipes stdin/stdout to the sprite's SSH port on
 * 127.0.0.1. The host key is verified against the key the daemon generated and pinned for the
 * sprite (asked of the daemon: `sprites.hostKey`), written to a known_hosts file of our own under a
 * per-sprite alias. The block itself is built in vm/ssh/ssh-config-block.ts, shared with the API
 * (`sprites.sshConfig`, the app's "Copy SSH config").
 */
import net from 'node:net';
import type { Command } from 'commander';
import type { ApiClient } from '../api/client.ts';
import { SpritelyError } from '../errors.ts';
import { assertSpriteName } from '../names.ts';
import { layout, type Layout } from '../paths.ts';
import { knownHostsFile, sshConfigFor, writeKnownHosts } from '../ssh/ssh-config-block.ts';
import { ExecStream } from './agent-exec-stream.ts';

/**
 * The ProxyCommand: wake (the exec below wakes a sleeping sprite and waits until its SSH server
 * answers), hold it awake, then pipe stdin/stdout to its SSH port until either side closes.
 */
export async function runSshProxy(api: ApiClient, name: string, l: Layout = layout()): Promise<number> {
  const { hostKey } = await api.call('sprites.hostKey', { name }); // not_found ends it here
  try {
    writeKnownHosts(l, name, hostKey); // a sprite re-created under the same name has a new key
  } catch (err) {
    process.stderr.write(`spritely ssh-proxy: could not refresh ${knownHostsFile(l, name)}: ${(err as Error).message}\n`);
  }
  const hold = new ExecStream(api, name, ['cat'], { stdin: true });
  await hold.started;
  const sprite = await api.call('sprites.get', { name });
  if (!sprite.sshPort) {
    hold.close();
    throw new SpritelyError('unavailable', `Sprite "${name}" is ${sprite.state}${sprite.state === 'stopped' || sprite.state === 'crashed' ? ` (spritely start ${name})` : ''}.`);
  }
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: '127.0.0.1', port: sprite.sshPort! });
    let connected = false;
    let finished = false;
    const done = (err?: Error) => {
      if (finished) return;
      finished = true;
      hold.close();
      process.stdin.unpipe(sock);
      process.stdin.destroy();
      if (err && !connected) reject(new SpritelyError('unavailable', `Could not connect to the SSH port of "${name}" (127.0.0.1:${sprite.sshPort}): ${err.message}`));
      else process.stdout.end(() => resolve(err ? 1 : 0));
    };
    sock.once('connect', () => {
      connected = true;
      sock.setNoDelay(true);
      process.stdin.pipe(sock);
      sock.pipe(process.stdout, { end: false });
    });
    sock.once('error', (err) => done(err));
    sock.once('close', () => done());
    // The hold ending (sprite put to sleep or stopped, daemon gone) leaves the TCP connection to
    // fail or finish on its own.
    hold.finished.catch(() => {});
  });
}

function remoteSsh(host: string): SpritelyError {
  return new SpritelyError('invalid_argument', `ssh-config is for sprites on this computer. For a sprite on host "${host}": spritely console/exec/cp --host ${host}, or run spritely ssh-config on ${host} itself.`);
}

export function registerSshCommands(program: Command, client: () => Promise<ApiClient>): void {
  program
    .command('ssh-config')
    .description('Print an OpenSSH "Host NAME" block for ~/.ssh/config (ssh NAME, scp, rsync, VS Code Remote-SSH)')
    .argument('[name]', 'the sprite')
    .option('--all', 'a block for every sprite')
    .action(async (name: string | undefined, opts: { all?: boolean }) => {
      if (!name && !opts.all) throw new SpritelyError('invalid_argument', 'Name a sprite (spritely ssh-config NAME) or pass --all.');
      if (name && opts.all) throw new SpritelyError('invalid_argument', 'Either a sprite name or --all, not both.');
      if (name) assertSpriteName(name);
      const api = await client();
      if (api.host) throw remoteSsh(api.host);
      const names = name ? [name] : (await api.call('sprites.list')).map((s) => s.name);
      const keys = await Promise.all(names.map((n) => api.call('sprites.hostKey', { name: n })));
      const l = layout();
      process.stdout.write(keys.map((k) => sshConfigFor(l, k.name, k.hostKey)).join('\n'));
    });
  program
    .command('ssh-proxy', { hidden: true })
    .description('ProxyCommand for ssh-config: wake the sprite and pipe stdin/stdout to its SSH port')
    .argument('<name>')
    .action(async (name: string) => {
      assertSpriteName(name);
      const api = await client();
      if (api.host) throw remoteSsh(api.host);
      process.exitCode = await runSshProxy(api, name);
    });
}
