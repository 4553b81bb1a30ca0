/**
 * `spritely`: the command line. Every command is a client of the daemon's API (started in the
 * background when needed); nothing here touches a VM directly. Errors print as one sentence and a
 * non-zero exit; `--json` prints one JSON document for machines.
 */
import fs from 'node:fs';
import { Command, Option } from 'commander';
import { SpritelyError } from '../errors.ts';
import { assertSpriteName } from '../names.ts';
import { layout } from '../paths.ts';
import { VERSION } from '../version.ts';
import { runConsole, runExec } from './streams.ts';
import { confirm, formatAge, formatTable, parseDuration, withProgress } from './ui.ts';
import { formatBytes, formatTimeline } from '../checkpoints/timeline-text.ts';
import { ensureDaemon } from '../daemon/autostart.ts';
import { ApiClient } from '../api/client.ts';
import { registerUiCommand } from './ui-command.ts';
import { bareCheckpointFlag, checkpointBefore, registerAgentCommands } from './agent-commands.ts';
import { registerMcpCommand } from '../mcp/command.ts';

const program = new Command();
program.name('spritely').description('Local disposable computers: real Linux VMs that start in about a second.').version(VERSION, '-v, --version');
program.showHelpAfterError('(add --help for usage)');

const client = () => ensureDaemon(layout());

function print(json: boolean, value: unknown, human: () => string): void {
  process.stdout.write(json ? JSON.stringify(value, null, 2) + '\n' : human() + '\n');
}

function nameArg(name: string): string {
  assertSpriteName(name);
  return name;
}

const image = program.command('image').description('Build and list guest images');
image
  .command('build')
  .description('Build the default image from Debian packages (and nothing if it exists)')
  .option('--force', 'rebuild even if it exists')
  .option('--json', 'print JSON')
  .action(async (opts) => {
    const api = await client();
    const img = await withProgress(api, !opts.json, () => api.call('images.build', { force: opts.force }, {}));
    print(opts.json, img, () => `image ${img.id} ready (${(img.sizeBytes / 2 ** 20).toFixed(0)} MiB)`);
  });
image
  .command('list')
  .description('List built images')
  .option('--json', 'print JSON')
  .action(async (opts) => {
    const imgs = await (await client()).call('images.list');
    print(opts.json, imgs, () => formatTable(['ID', 'DEFAULT', 'SIZE', 'CREATED'], imgs.map((i) => [i.id, i.default ? 'yes' : '', `${(i.sizeBytes / 2 ** 20).toFixed(0)} MiB`, formatAge(i.createdAt)])));
  });

program
  .command('create')
  .description('Create a sprite and start it (builds the image on first use)')
  .argument('<name>', 'a DNS label: a-z, 0-9 and "-"')
  .option('--image <id>', 'image to use (default: the default image)')
  .addOption(new Option('--memory <MiB>', 'guest RAM in MiB').argParser(intArg))
  .addOption(new Option('--cpus <n>', 'virtual CPUs').argParser(intArg))
  .addOption(new Option('--disk <GiB>', 'disk size in GiB (sparse)').argParser(intArg))
  .option('--network <policy>', 'internet (default: public addresses, never this computer or the LAN), none, or allow=HOST,*.DOMAIN,…')
  .option('--json', 'print JSON')
  .action(async (name, opts) => {
    nameArg(name);
    const api = await client();
    const r = await withProgress(api, !opts.json, () => api.call('sprites.create', { name, image: opts.image, memoryMiB: opts.memory, cpus: opts.cpus, diskGiB: opts.disk, network: opts.network }));
    print(opts.json, { name: r.sprite.name, state: r.sprite.state, timings: r.timings, sprite: r.sprite }, () => {
      const t = r.timings;
      const detail = t.runningMs !== undefined ? ` (running after ${fmtMs(t.runningMs)}${t.goldenMs > 1000 ? `, golden state built in ${fmtMs(t.goldenMs)}` : ''}${t.imageMs > 1000 ? `, image ${fmtMs(t.imageMs)}` : ''})` : '';
      return `created ${name} in ${fmtMs(t.totalMs)}${detail} [${r.sprite.accel}]`;
    });
  });

program
  .command('list')
  .alias('ls')
  .description('List sprites')
  .option('--json', 'print JSON')
  .action(async (opts) => {
    const sprites = await (await client()).call('sprites.list');
    print(opts.json, sprites, () =>
      sprites.length
        ? formatTable(
            ['NAME', 'STATE', 'IMAGE', 'CREATED', 'UPTIME'],
            sprites.map((s) => [s.name, s.operation ? `${s.state} (${s.operation})` : s.state, s.image, formatAge(s.createdAt), s.uptimeSeconds === null ? '-' : formatDuration(s.uptimeSeconds)]),
          )
        : 'no sprites yet: spritely create NAME',
    );
  });

program
  .command('exec')
  .description('Run a command in a sprite; output streams, the exit code passes through')
  .argument('<name>')
  .argument('<command...>', 'the command (put -- before it)')
  .option('-t, --tty', 'allocate a terminal')
  .option('-w, --workdir <dir>', 'working directory in the sprite')
  .option('-e, --env <KEY=VALUE...>', 'environment variables')
  .option('--checkpoint [comment]', 'checkpoint the sprite first ("before: CMD", or --checkpoint=TEXT); its id goes to stderr')
  .action(async (name, command: string[], opts) => {
    nameArg(name);
    const env: Record<string, string> = {};
    for (const kv of opts.env ?? []) {
      const at = kv.indexOf('=');
      if (at < 1) throw new SpritelyError('invalid_argument', `--env takes KEY=VALUE (got ${JSON.stringify(kv)})`);
      env[kv.slice(0, at)] = kv.slice(at + 1);
    }
    if (opts.checkpoint !== undefined) await checkpointBefore(await client(), name, command, opts.checkpoint);
    process.exitCode = await runExec(await client(), name, command, { tty: !!opts.tty, cwd: opts.workdir, env });
  });

program
  .command('console')
  .description('Open an interactive root shell in a sprite (Ctrl-D leaves)')
  .argument('<name>')
  .action(async (name) => {
    nameArg(name);
    process.exitCode = await runConsole(await client(), name);
  });

program
  .command('start')
  .description('Start a stopped or crashed sprite')
  .argument('<name>')
  .option('--json', 'print JSON')
  .action(async (name, opts) => {
    nameArg(name);
    const r = await (await client()).call('sprites.start', { name });
    print(opts.json, r, () => `started ${name} in ${fmtMs(r.timings.totalMs)}`);
  });

program
  .command('stop')
  .description('Power a sprite off (its disk stays)')
  .argument('<name>')
  .option('--force', 'do not wait for the guest to shut down (sync and end QEMU)')
  .option('--json', 'print JSON')
  .action(async (name, opts) => {
    nameArg(name);
    const s = await (await client()).call('sprites.stop', { name, force: opts.force });
    print(opts.json, s, () => `stopped ${name}`);
  });

program
  .command('destroy')
  .alias('rm')
  .description('Destroy a sprite and everything of it (asks unless --force)')
  .argument('<name>')
  .option('-f, --force', 'do not ask')
  .action(async (name, opts) => {
    nameArg(name);
    const api = await client();
    await api.call('sprites.get', { name });
    if (!opts.force && !(await confirm(`Destroy sprite "${name}" and its disk? Type the name to confirm: `, name))) {
      throw new SpritelyError('failed_precondition', 'Not destroyed.');
    }
    await api.call('sprites.destroy', { name });
    process.stdout.write(`destroyed ${name}\n`);
  });

program
  .command('sleep')
  .description('Put a sprite to sleep: RAM saved to disk, QEMU gone (0 CPU, 0 RAM)')
  .argument('<name>')
  .option('--json', 'print JSON')
  .action(async (name, opts) => {
    nameArg(name);
    const r = await (await client()).call('sprites.sleep', { name });
    print(opts.json, r, () => `${name} is asleep (${fmtMs(r.timings.totalMs)})`);
  });

program
  .command('wake')
  .description('Wake a sleeping sprite at the exact moment it slept')
  .argument('<name>')
  .option('--json', 'print JSON')
  .action(async (name, opts) => {
    nameArg(name);
    const r = await (await client()).call('sprites.wake', { name });
    print(opts.json, r, () => `${name} is awake (${fmtMs(r.timings.totalMs)})${r.sprite.lastError ? `\nnote: ${r.sprite.lastError}` : ''}`);
  });

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
  .action(async (name, opts) => {
    nameArg(name);
    const api = await client();
    const local = await api.call('sprites.url', { name, port: opts.port });
    const out: Record<string, unknown> = { ...local };
    const lines = [`local   ${local.local}  → port ${local.port} in ${name}`];
    if (opts.off) {
      await api.call('sprites.publish', { name, off: true });
      out.public = null;
      lines.push('public  (unpublished)');
    } else if (opts.public || opts.auth) {
      const p = await api.call('sprites.publish', { name, auth: opts.auth });
      Object.assign(out, { public: p.url, auth: p.auth, accessToken: p.accessToken, live: p.live });
      lines.push(`public  ${p.url}  [${p.auth}${p.live ? '' : ', published once the relay connects'}]`);
      if (p.accessToken) lines.push(`token   ${p.accessToken}  (send as "Authorization: Bearer …", or make a share link with --share 1h)`);
    } else if (opts.revokeLinks) {
      const r = await api.call('sprites.revokeLinks', { name });
      Object.assign(out, { public: r.url, auth: r.auth, live: r.live, linksRevoked: true });
      lines.push(`public  ${r.url}  [${r.auth}]`, `links   every earlier share link is revoked${r.live ? '' : ' (the relay hears it as soon as it reconnects)'}`);
    } else {
      const st = await api.call('relay.status').catch(() => null);
      const pub = st?.published.find((x) => x.name === name);
      if (pub) {
        Object.assign(out, { public: pub.url, auth: pub.auth });
        lines.push(`public  ${pub.url}  [${pub.auth}]`);
      }
    }
    if (opts.share) {
      const s = await api.call('sprites.share', { name, ttlSec: parseDuration(opts.share) });
      out.share = s;
      lines.push(`share   ${s.link}  (until ${s.expiresAt})`);
    }
    print(opts.json, out, () => lines.join('\n'));
  });

const relayCmd = program.command('relay').description('Public URLs through a self-hosted relay');
relayCmd
  .command('connect')
  .description('Connect to a relay (remembered; reconnects on its own)')
  .argument('<url>', 'e.g. https://relay.example.com (plain http:// only to this machine: the token must not cross a network in the clear)')
  .requiredOption('--token <token>', 'the tunnel token `spritely-relay token add` printed')
  .option('--ca <file>', 'trust this CA certificate (PEM) for a self-hosted relay')
  .option('--json', 'print JSON')
  .action(async (url, opts) => {
    const ca = opts.ca ? fs.readFileSync(opts.ca, 'utf8') : undefined;
    const st = await (await client()).call('relay.connect', { url, token: opts.token, ca });
    print(opts.json, st, () => `relay ${st.url}: ${st.status}${st.reason ? ` (${st.reason})` : ''}${st.account ? `, account ${st.account}` : ''}`);
    if (st.status === 'unauthorized') process.exitCode = 1;
  });
relayCmd
  .command('status')
  .description('Tunnel state and published sprites')
  .option('--json', 'print JSON')
  .action(async (opts) => {
    const st = await (await client()).call('relay.status');
    print(opts.json, st, () => (st.configured ? [`relay ${st.url}: ${st.status}${st.reason ? ` (${st.reason})` : ''}`, ...st.published.map((p) => `  ${p.name}  ${p.url}  [${p.auth}]`)].join('\n') : 'no relay connected (spritely relay connect URL --token TOKEN)'));
  });
relayCmd
  .command('disconnect')
  .description('Disconnect and forget the relay')
  .action(async () => {
    await (await client()).call('relay.disconnect');
    process.stdout.write('relay disconnected\n');
  });

program
  .command('usage')
  .description('Per sprite: awake time, CPU time, disk use, last activity')
  .option('--json', 'print JSON')
  .action(async (opts) => {
    const rows = await (await client()).call('sprites.usage');
    print(opts.json, rows, () =>
      formatTable(['NAME', 'STATE', 'AWAKE', 'CPU', 'DISK', 'LAST ACTIVE'], rows.map((u) => [u.name, u.state, formatDuration(u.awakeSeconds), `${u.cpuSeconds.toFixed(1)}s`, formatBytes(u.diskBytes), u.lastActiveAt ? formatAge(u.lastActiveAt) : '-'])),
    );
  });

const netCmd = program.command('net').description("A sprite's network policy (enforced on the host; see docs/network.md)");
netCmd
  .command('set')
  .description('Set what a sprite may reach; applies to its next connection, no restart')
  .argument('<name>')
  .argument('<policy>', 'internet | none | allow=HOST,*.DOMAIN,…')
  .option('--json', 'print JSON')
  .action(async (name, policy: string, opts) => {
    nameArg(name);
    const s = await (await client()).call('sprites.network', { name, policy });
    print(opts.json, s, () => `${name}: network ${s.network}`);
  });
netCmd
  .command('show')
  .description("Show a sprite's network policy")
  .argument('<name>')
  .option('--json', 'print JSON')
  .action(async (name, opts) => {
    nameArg(name);
    const s = await (await client()).call('sprites.get', { name });
    print(opts.json, { name, network: s.network }, () => s.network);
  });

const config = program.command('config').description('Settings');
config
  .command('set')
  .description('Set a setting: idle-timeout DURATION (e.g. 90s, 10m, 1h; 0 = never sleep) | memory-limit SIZE (guest RAM awake sprites may add up to, e.g. 8G, 12000M; default = 80% of host RAM)')
  .argument('<key>')
  .argument('<value>')
  .option('--sprite <name>', 'only for this sprite (idle-timeout)')
  .action(async (key: string, value: string, opts) => {
    if (opts.sprite) nameArg(opts.sprite);
    if (key === 'idle-timeout') {
      const seconds = parseDuration(value);
      await (await client()).call('config.set', { idleTimeoutSec: seconds, sprite: opts.sprite });
      process.stdout.write(`idle-timeout = ${seconds ? formatDuration(seconds) : 'never'}${opts.sprite ? ` for ${opts.sprite}` : ''}\n`);
    } else if (key === 'memory-limit') {
      const c = await (await client()).call('config.set', { memoryLimitMiB: parseMiB(value), sprite: opts.sprite });
      process.stdout.write(`memory-limit = ${formatMiB(c.memoryLimitMiB)}${c.memoryLimitDefault ? ' (default)' : ''}\n`);
    } else throw new SpritelyError('invalid_argument', `Unknown setting "${key}" (known: idle-timeout, memory-limit).`);
  });
config
  .command('get')
  .description('Show the settings')
  .option('--json', 'print JSON')
  .action(async (opts) => {
    const c = await (await client()).call('config.get');
    print(opts.json, c, () => `idle-timeout = ${c.idleTimeoutSec ? formatDuration(c.idleTimeoutSec) : 'never'}\nmemory-limit = ${formatMiB(c.memoryLimitMiB)}${c.memoryLimitDefault ? ' (default: 80% of host RAM)' : ''}`);
  });

/** "8G", "512M", "12000" (MiB), "default" or "0" (the default). */
function parseMiB(text: string): number {
  const t = text.trim().toLowerCase();
  if (t === 'default') return 0;
  const m = /^(\d+(?:\.\d+)?)\s*(m|mi|mib|g|gi|gib)?$/.exec(t);
  if (!m) throw new SpritelyError('invalid_argument', `"${text}" is not a size: use e.g. 8G, 512M or default`);
  const n = Number(m[1]) * (m[2]?.startsWith('g') ? 1024 : 1);
  if (!Number.isFinite(n) || n > 16 * 1024 * 1024) throw new SpritelyError('invalid_argument', `"${text}" is too large`);
  if (n !== 0 && n < 256) throw new SpritelyError('invalid_argument', `"${text}" is below 256 MiB, too small for any sprite`);
  return Math.round(n);
}

function formatMiB(mib: number): string {
  return mib >= 1024 ? `${(mib / 1024).toFixed(1).replace(/\.0$/, '')} GiB` : `${mib} MiB`;
}

const checkpoint = program.command('checkpoint').description('Capture and restore the whole machine (disk + RAM) as a tree');
checkpoint
  .command('create')
  .description('Checkpoint a sprite (RAM + disk when running, disk when stopped)')
  .argument('<name>')
  .option('-m, --message <text>', 'what this checkpoint is')
  .option('--json', 'print JSON')
  .action(async (name, opts) => {
    nameArg(name);
    const r = await (await client()).call('checkpoints.create', { name, comment: opts.message });
    print(opts.json, { ...r.checkpoint, timings: r.timings }, () => `${r.checkpoint.id}${r.checkpoint.memory ? ` (guest paused ${fmtMs(r.checkpoint.pauseMs)}, RAM ${formatBytes(r.checkpoint.ramBytes)})` : ' (disk only)'}`);
  });
checkpoint
  .command('list')
  .alias('ls')
  .description('Show the checkpoint tree (* = what the machine descends from)')
  .argument('<name>')
  .option('--json', 'print JSON')
  .action(async (name, opts) => {
    nameArg(name);
    const cps = await (await client()).call('checkpoints.list', { name });
    print(opts.json, cps, () => formatTimeline(cps));
  });
checkpoint
  .command('restore')
  .description('Go back to a checkpoint (an automatic checkpoint of the current state is taken first)')
  .argument('<name>')
  .argument('<id>')
  .option('--no-backup', 'do not take the automatic checkpoint first')
  .option('--json', 'print JSON')
  .action(async (name, id, opts) => {
    nameArg(name);
    const r = await (await client()).call('checkpoints.restore', { name, id, backup: opts.backup });
    print(opts.json, r, () => `restored ${name} to ${id} in ${fmtMs(r.timings.totalMs)}${r.backup ? ` (undo with: spritely checkpoint restore ${name} ${r.backup})` : ''}`);
  });
checkpoint
  .command('delete')
  .alias('rm')
  .description('Delete a checkpoint (its children move up to its parent)')
  .argument('<name>')
  .argument('<id>')
  .action(async (name, id) => {
    nameArg(name);
    await (await client()).call('checkpoints.delete', { name, id });
    process.stdout.write(`deleted ${id} of ${name}\n`);
  });

program
  .command('fork')
  .description('Create a new sprite from any checkpoint of another')
  .argument('<name>', 'the source sprite')
  .argument('<checkpoint>', 'checkpoint id (v1, v2, …)')
  .argument('<new-name>', 'name of the new sprite')
  .option('--json', 'print JSON')
  .action(async (name, id, newName, opts) => {
    nameArg(name);
    nameArg(newName);
    const r = await (await client()).call('sprites.fork', { name, checkpoint: id, newName });
    print(opts.json, { name: r.sprite.name, state: r.sprite.state, timings: r.timings, sprite: r.sprite }, () => `forked ${name}@${id} into ${newName} in ${fmtMs(r.timings.totalMs)}`);
  });

program
  .command('doctor')
  .description('Check QEMU, the accelerator, disk space and the data dir')
  .option('--json', 'print JSON')
  .action(async (opts) => {
    const api = await client();
    const [d, info] = await Promise.all([api.call('daemon.doctor'), api.call('daemon.info')]);
    print(opts.json, { ...d, info }, () => d.checks.map((c) => `${c.ok ? 'ok  ' : 'FAIL'} ${c.name.padEnd(14)} ${c.detail}`).join('\n') + `\n     data dir       ${info.home}`);
    if (d.checks.some((c) => !c.ok)) process.exitCode = 1;
  });

registerUiCommand(program);
registerAgentCommands(program, client);
registerMcpCommand(program);

const daemon = program.command('daemon').description('The background daemon that owns every sprite');
daemon
  .command('run')
  .description('Run the daemon in the foreground')
  .action(async () => {
    const { runDaemon } = await import('../daemon/daemon.ts');
    await runDaemon();
  });
daemon
  .command('start')
  .description('Start the daemon in the background if it is not running')
  .action(async () => {
    const info = await (await client()).call('daemon.info');
    process.stdout.write(`daemon running (pid ${info.pid}), data in ${info.home}\n`);
  });
daemon
  .command('status')
  .description('Is the daemon running?')
  .action(async () => {
    const api = new ApiClient(layout().apiSocket);
    try {
      const info = await api.call('daemon.info');
      process.stdout.write(`running (pid ${info.pid}, version ${info.version}); accelerator ${info.accel ? `${info.accel.accel}: ${info.accel.reason}` : 'not chosen yet'}\n`);
    } catch {
      process.stdout.write('not running\n');
      process.exitCode = 3;
    }
  });
daemon
  .command('stop')
  .description('Stop the daemon; awake sprites go to sleep first (nothing running is lost)')
  .option('--leave-running', 'leave sprites running (QEMU outlives the daemon; a new daemon re-attaches)')
  .action(async (opts) => {
    const l = layout();
    const api = new ApiClient(l.apiSocket);
    let pid: number;
    try {
      pid = (await api.call('daemon.info')).pid;
    } catch {
      process.stdout.write('daemon was not running\n');
      return;
    }
    await api.call('daemon.shutdown', { leaveRunning: !!opts.leaveRunning });
    for (let i = 0; i < 1200; i++) {
      try {
        process.kill(pid, 0);
      } catch {
        break;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    process.stdout.write(opts.leaveRunning ? 'daemon stopped; sprites left running\n' : 'daemon stopped; awake sprites are asleep\n');
  });

function intArg(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n)) throw new SpritelyError('invalid_argument', `expected a whole number, got ${JSON.stringify(v)}`);
  return n;
}

function fmtMs(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(2)} s`;
}

function formatDuration(s: number): string {
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

program.parseAsync(bareCheckpointFlag(process.argv)).catch((err: unknown) => {
  const msg = err instanceof SpritelyError ? err.message : (err as Error)?.message ?? String(err);
  process.stderr.write(`spritely: ${msg}\n`);
  process.exitCode = err instanceof SpritelyError && err.code === 'invalid_argument' ? 2 : 1;
});
