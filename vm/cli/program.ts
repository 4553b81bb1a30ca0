/**
 * Every `spritely` command, declared (name, arguments, options, help) with nothing but commander,
 * and each action importing its implementation when it runs: start-up is paid by every command,
 * so `--version` must not load zod, ssh2 or the engine, and `list` must not load the MCP SDK. The
 * build (scripts/build-cli.mjs) turns each `await import()` here into its own chunk.
 *
 * A few modules declare their own commands next to their code (ui-command.ts, agent-cp.ts,
 * agent-ssh.ts). They are *deferred*: loaded and registered only when one of their commands is
 * invoked; until then a stub with the same usage and summary stands in the help (a spec checks
 * that the stubs match the real declarations).
 */
import { Command, Help, Option } from 'commander';
import { SpritelyError } from '../errors.ts';
import { registerMcpCommand } from '../mcp/command.ts';
import { VERSION } from '../version.ts';

export interface Deferred {
  /** Every command the module declares (hidden ones too): invoking one loads the module. */
  commands: string[];
  /** What the help lists for its visible commands until then. */
  listed: { name: string; usage: string; description: string }[];
  register(program: Command): Promise<void>;
}

export const DEFERRED: Deferred[] = [
  {
    commands: ['ui'],
    listed: [{ name: 'ui', usage: '[options]', description: 'Open the Spritely app in your browser (through a one-time login page)' }],
    register: async (program) => (await import('./ui-command.ts')).registerUiCommand(program),
  },
  {
    commands: ['cp', 'ssh-config', 'ssh-proxy'],
    listed: [
      { name: 'cp', usage: '[options] <src> <dst>', description: 'Copy files and directories between this computer and a sprite, either way (like docker cp)' },
      { name: 'ssh-config', usage: '[options] [name]', description: 'Print an OpenSSH "Host NAME" block for ~/.ssh/config (ssh NAME, scp, rsync, VS Code Remote-SSH)' },
    ],
    register: async (program) => {
      const [{ registerAgentCommands }, { client }] = await Promise.all([import('./agent-commands.ts'), import('./command-kit.ts')]);
      registerAgentCommands(program, client);
    },
  },
];

/** The command a command line invokes (`help X` invokes X's help), or undefined for none. */
export function commandWord(argv: string[]): string | undefined {
  const words = argv.slice(2).filter((a) => !a.startsWith('-'));
  return words[0] === 'help' ? words[1] : words[0];
}

function intArg(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n)) throw new SpritelyError('invalid_argument', `expected a whole number, got ${JSON.stringify(v)}`);
  return n;
}

const sprites = () => import('./sprite-commands.ts');
const execs = () => import('./exec-commands.ts');
const urls = () => import('./url-commands.ts');
const settings = () => import('./settings-commands.ts');
const checkpoints = () => import('./checkpoint-commands.ts');
const machinery = () => import('./daemon-commands.ts');
const hostCmds = () => import('./host-commands.ts');

/** Commands about this computer's own machinery, which --host does not apply to. */
const LOCAL_ONLY = new Set(['daemon', 'host', 'ui']);

/** The whole program for a command line whose command is `word` (see commandWord). */
export async function buildProgram(word: string | undefined): Promise<Command> {
  const program = new Command();
  program.name('spritely').description('Local disposable computers: real Linux VMs that start in about a second.').version(VERSION, '-v, --version');
  program.showHelpAfterError('(add --help for usage)');
  program.option('--host <name>', 'act on this remote host (spritely host list); default: $SPRITELY_HOST, else `spritely host use`, else this computer');
  program.hook('preAction', (_program, action) => {
    const host = program.opts().host as string | undefined;
    if (host === undefined) return;
    let top: Command = action;
    while (top.parent && top.parent !== program) top = top.parent;
    if (LOCAL_ONLY.has(top.name())) throw new SpritelyError('invalid_argument', `--host does not apply to \`spritely ${top.name()}\` (it is about this computer's own daemon and app).`);
    process.env.SPRITELY_HOST = host;
  });

  const image = program.command('image').description('Build and list guest images');
  image
    .command('build')
    .description('Build the default image from Debian packages (and nothing if it exists)')
    .option('--force', 'rebuild even if it exists')
    .option('--json', 'print JSON')
    .action(async (opts) => (await machinery()).imageBuild(opts));
  image
    .command('list')
    .description('List built images')
    .option('--json', 'print JSON')
    .action(async (opts) => (await machinery()).imageList(opts));

  program
    .command('create')
    .description('Create a sprite and start it (builds the image on first use)')
    .argument('<name>', 'a DNS label: a-z, 0-9 and "-"')
    .option('--image <id>', 'image to use (default: the default image)')
    .addOption(new Option('--memory <MiB>', 'guest RAM in MiB').argParser(intArg))
    .addOption(new Option('--cpus <n>', 'virtual CPUs').argParser(intArg))
    .addOption(new Option('--disk <GiB>', 'disk size in GiB (sparse)').argParser(intArg))
    .option('--network <policy>', 'internet (default: globally routable addresses only, never this computer or the LAN), none, or allow=HOST,*.DOMAIN,ADDRESS,…')
    .option('--json', 'print JSON')
    .action(async (name, opts) => (await sprites()).create(name, opts));

  program
    .command('list')
    .alias('ls')
    .description('List sprites')
    .option('--json', 'print JSON')
    .action(async (opts) => (await sprites()).list(opts));

  program
    .command('exec')
    .description('Run a command in a sprite; output streams, the exit code passes through')
    .argument('<name>')
    .argument('<command...>', 'the command (put -- before it)')
    .option('-t, --tty', 'allocate a terminal')
    .option('-w, --workdir <dir>', 'working directory in the sprite')
    .option('-e, --env <KEY=VALUE...>', 'environment variables')
    .option('--checkpoint [comment]', 'checkpoint the sprite first ("before: CMD", or --checkpoint=TEXT); its id goes to stderr')
    .action(async (name, command: string[], opts) => (await execs()).exec(name, command, opts));

  program
    .command('console')
    .description('Open an interactive root shell in a sprite (Ctrl-D leaves)')
    .argument('<name>')
    .action(async (name) => (await execs()).openConsole(name));

  program
    .command('start')
    .description('Start a stopped or crashed sprite')
    .argument('<name>')
    .option('--json', 'print JSON')
    .action(async (name, opts) => (await sprites()).start(name, opts));

  program
    .command('stop')
    .description('Power a sprite off (its disk stays)')
    .argument('<name>')
    .option('--force', 'do not wait for the guest to shut down (sync and end QEMU)')
    .option('--json', 'print JSON')
    .action(async (name, opts) => (await sprites()).stop(name, opts));

  program
    .command('destroy')
    .alias('rm')
    .description('Destroy a sprite and everything of it (asks unless --force)')
    .argument('<name>')
    .option('-f, --force', 'do not ask')
    .action(async (name, opts) => (await sprites()).destroy(name, opts));

  program
    .command('sleep')
    .description('Put a sprite to sleep: RAM saved to disk, QEMU gone (0 CPU, 0 RAM)')
    .argument('<name>')
    .option('--json', 'print JSON')
    .action(async (name, opts) => (await sprites()).sleep(name, opts));

  program
    .command('wake')
    .description('Wake a sleeping sprite at the exact moment it slept')
    .argument('<name>')
    .option('--json', 'print JSON')
    .action(async (name, opts) => (await sprites()).wake(name, opts));

  program
    .command('url')
    .description('URLs of a sprite: local (http://NAME.localhost:PORT/ → port 8080 inside) and, through a relay, public')
    .argument('<name>')
    .addOption(new Option('--port <n>', 'forward to this port in the sprite instead').argParser(intArg))
    .option('--public', 'publish it at a public URL through the connected relay')
    .addOption(new Option('--auth <mode>', 'who may open the public URL: sprite (needs its access token or a share link) or public').choices(['sprite', 'public']))
    .option('--share <duration>', 'print a signed link that opens the public URL for this long (e.g. 1h)')
    .option('--revoke-links', 'end every share link given out so far (and the cookies they set); the URL and its token stay')
    .option('--off', 'unpublish the public URL (ends its share links too)')
    .option('--json', 'print JSON')
    .action(async (name, opts) => (await urls()).url(name, opts));

  const relayCmd = program.command('relay').description('Public URLs through a self-hosted relay');
  relayCmd
    .command('connect')
    .description('Connect to a relay (remembered; reconnects on its own)')
    .argument('<url>', 'e.g. https://relay.example.com (plain http:// only to this machine: the token must not cross a network in the clear)')
    .option('--token-file <file>', 'read the tunnel token (`spritely-relay token add` printed it) from this file; without it the token is read from stdin or asked for (never on the command line: other local users can read it there)')
    .addOption(new Option('--token <token>').hideHelp())
    .option('--ca <file>', 'trust this CA certificate (PEM) for a self-hosted relay')
    .option('--json', 'print JSON')
    .action(async (url, opts) => (await urls()).relayConnect(url, opts));
  relayCmd
    .command('status')
    .description('Tunnel state and published sprites')
    .option('--json', 'print JSON')
    .action(async (opts) => (await urls()).relayStatus(opts));
  relayCmd
    .command('disconnect')
    .description('Disconnect and forget the relay')
    .action(async () => (await urls()).relayDisconnect());

  program
    .command('usage')
    .description('Per sprite: awake time, CPU time, disk use, last activity')
    .option('--json', 'print JSON')
    .action(async (opts) => (await sprites()).usage(opts));

  const netCmd = program.command('net').description("A sprite's network policy (enforced on the host; see docs/network.md)");
  netCmd
    .command('set')
    .description('Set what a sprite may reach; applies to its next connection, no restart')
    .argument('<name>')
    .argument('<policy>', 'internet | none | allow=HOST,*.DOMAIN,…')
    .option('--json', 'print JSON')
    .action(async (name, policy: string, opts) => (await settings()).netSet(name, policy, opts));
  netCmd
    .command('show')
    .description("Show a sprite's network policy and the last destinations it was refused, with why")
    .argument('<name>')
    .option('--json', 'print JSON')
    .action(async (name, opts) => (await settings()).netShow(name, opts));

  const config = program.command('config').description('Settings');
  config
    .command('set')
    .description('Set a setting: idle-timeout DURATION (e.g. 90s, 10m, 1h; 0 = never sleep) | memory-limit SIZE (guest RAM awake sprites may add up to, e.g. 8G, 12000M; default = 80% of host RAM) | warm-spare on|off (keep a machine per used shape restored ahead of time: creates take ~0.5 s; costs its RAM while it waits) | checkpoint-mounts N (checkpoints a sprite may have mounted inside it at once, 1-16; default 4)')
    .argument('<key>')
    .argument('<value>')
    .option('--sprite <name>', 'only for this sprite (idle-timeout)')
    .action(async (key: string, value: string, opts) => (await settings()).configSet(key, value, opts));
  config
    .command('get')
    .description('Show the settings')
    .option('--json', 'print JSON')
    .action(async (opts) => (await settings()).configGet(opts));

  const checkpoint = program.command('checkpoint').description('Capture and restore the whole machine (disk + RAM) as a tree');
  checkpoint
    .command('create')
    .description('Checkpoint a sprite (RAM + disk when running, disk when stopped)')
    .argument('<name>')
    .option('-m, --message <text>', 'what this checkpoint is')
    .option('--json', 'print JSON')
    .action(async (name, opts) => (await checkpoints()).checkpointCreate(name, opts));
  checkpoint
    .command('list')
    .alias('ls')
    .description('Show the checkpoint tree (* = what the machine descends from)')
    .argument('<name>')
    .option('--json', 'print JSON')
    .action(async (name, opts) => (await checkpoints()).checkpointList(name, opts));
  checkpoint
    .command('restore')
    .description('Go back to a checkpoint (an automatic checkpoint of the current state is taken first)')
    .argument('<name>')
    .argument('<id>')
    .option('--no-backup', 'do not take the automatic checkpoint first')
    .option('--json', 'print JSON')
    .action(async (name, id, opts) => (await checkpoints()).checkpointRestore(name, id, opts));
  checkpoint
    .command('delete')
    .alias('rm')
    .description('Delete a checkpoint (its children move up to its parent)')
    .argument('<name>')
    .argument('<id>')
    .action(async (name, id) => (await checkpoints()).checkpointDelete(name, id));
  checkpoint
    .command('diff')
    .description('What changed between two checkpoints, or one and now: added, removed, modified files (-- PATH… narrows it)')
    .argument('<name>')
    .argument('<from>', 'checkpoint id (v1, v2, …)')
    .argument('[to-and-paths...]', 'another checkpoint or "now" (the default); then -- and paths in the sprite')
    .option('--patch', 'show line diffs of changed text files')
    .option('--max <n>', 'list at most this many paths (default 10000)', (v) => Number(v))
    .option('--json', 'print JSON')
    .action(async (name, from, rest, opts) => (await checkpoints()).checkpointDiff(name, from, rest, opts));
  checkpoint
    .command('mount')
    .description('Show a checkpoint read-only inside the sprite, at /.spritely/checkpoints/ID')
    .argument('<name>')
    .argument('<id>')
    .option('--json', 'print JSON')
    .action(async (name, id, opts) => (await checkpoints()).checkpointMount(name, id, opts));
  checkpoint
    .command('unmount')
    .description('Stop showing a checkpoint inside the sprite')
    .argument('<name>')
    .argument('<id>')
    .option('--force', 'even while something inside uses it (it goes once nothing does)')
    .option('--json', 'print JSON')
    .action(async (name, id, opts) => (await checkpoints()).checkpointUnmount(name, id, opts));

  program
    .command('fork')
    .description('Create a new sprite from any checkpoint of another')
    .argument('<name>', 'the source sprite')
    .argument('<checkpoint>', 'checkpoint id (v1, v2, …)')
    .argument('<new-name>', 'name of the new sprite')
    .option('--json', 'print JSON')
    .action(async (name, id, newName, opts) => (await sprites()).fork(name, id, newName, opts));

  program
    .command('doctor')
    .description('Check QEMU, the accelerator, disk space and the data dir')
    .option('--json', 'print JSON')
    .action(async (opts) => (await machinery()).doctor(opts));

  const host = program.command('host').description('Remote Linux machines whose sprites this computer drives over SSH (see docs/hosts.md)');
  host
    .command('add')
    .description('Connect to a server over SSH, check its Spritely, QEMU, accelerator and disk, and remember it')
    .argument('<name>', 'a short name for it (a DNS label: a-z, 0-9, "-")')
    .argument('<url>', 'ssh://[user@]server[:port] (server may be an alias from ~/.ssh/config)')
    .option('--identity <file>', 'the SSH private key to log in with (else your ssh config and agent decide)')
    .option('--ssh-config <file>', 'use this ssh_config file instead of ~/.ssh/config')
    .option('--remote-command <cmd>', 'how to run Spritely on the server (default: spritely), e.g. "/usr/bin/node /opt/spritely/bin/spritely.js"')
    .option('--accept-new-host-key', "accept the server's SSH host key if your known_hosts has none for it (shown; written there)")
    .option('--json', 'print JSON')
    .action(async (name, url, opts) => (await hostCmds()).hostAdd(name, url, opts));
  host
    .command('list')
    .alias('ls')
    .description('The hosts, their state (connected, unreachable and why), accelerator and Spritely version')
    .option('--json', 'print JSON')
    .action(async (opts) => (await hostCmds()).hostList(opts));
  host
    .command('remove')
    .alias('rm')
    .description('Forget a host and close its SSH connection (its sprites keep running there)')
    .argument('<name>')
    .action(async (name) => (await hostCmds()).hostRemove(name));
  host
    .command('use')
    .description('Make a host the default for commands ("local": this computer)')
    .argument('<name>')
    .action(async (name) => (await hostCmds()).hostUse(name));

  await addDeferred(program, word);
  registerMcpCommand(program);

  const daemon = program.command('daemon').description('The background daemon that owns every sprite');
  daemon
    .command('run')
    .description('Run the daemon in the foreground')
    .action(async () => (await import('../daemon/daemon.ts')).runDaemon());
  daemon
    .command('start')
    .description('Start the daemon in the background if it is not running')
    .option('--json', 'print how to reach it as JSON (what a remote host add reads over SSH)')
    .action(async (opts) => (await machinery()).daemonStart(opts));
  daemon
    .command('status')
    .description('Is the daemon running?')
    .action(async () => (await machinery()).daemonStatus());
  daemon
    .command('stop')
    .description('Stop the daemon; awake sprites go to sleep first (nothing running is lost)')
    .option('--leave-running', 'leave sprites running (QEMU outlives the daemon; a new daemon re-attaches)')
    .action(async (opts) => (await machinery()).daemonStop(opts));

  return program;
}

/** Registers the deferred module `word` invokes for real, and stubs for the others. */
async function addDeferred(program: Command, word: string | undefined): Promise<void> {
  const stubs = new Set<Command>();
  for (const d of DEFERRED) {
    if (word !== undefined && d.commands.includes(word)) {
      await d.register(program);
      continue;
    }
    for (const l of d.listed) stubs.add(program.command(l.name).description(l.description).usage(l.usage));
  }
  program.configureHelp({
    subcommandTerm(this: Help, cmd: Command) {
      return stubs.has(cmd) ? `${cmd.name()} ${cmd.usage()}` : Help.prototype.subcommandTerm.call(this, cmd);
    },
  });
}
