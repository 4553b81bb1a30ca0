/**
 * What a remote host adds: `exec true` on a sprite of a second host (a network namespace with its
 * own sshd and Spritely, reached over a loopback-speed veth with real OpenSSH: test/vm/remote-host.ts)
 * through this computer's daemon and its one SSH connection, against the same exec asked of that
 * host's daemon directly ("on that machine"). Interleaved rounds, medians; the same for a small
 * API call (GET info) and for the whole CLI (`spritely exec --host box b -- true` against
 * `spritely exec b -- true` run on the server's data dir).
 *   node bin/run-ts.js bench/remote.ts [ROUNDS=60] [CLI_ROUNDS=20]
 */
import fs from 'node:fs';
import { ApiClient } from '../vm/api/client.ts';
import { BIN, runCommand, startDaemon } from '../test/vm/harness.ts';
import { startRemoteHost } from '../test/vm/remote-host.ts';
import { median } from './stats.ts';

const ROUNDS = Number(process.argv[2] ?? 60);
const CLI_ROUNDS = Number(process.argv[3] ?? 20);

/** One streamed `exec true` (the path the CLI takes): start → exit, in ms. */
function execTrue(api: ApiClient, name: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const ws = api.socket(`/v1/sprites/${name}/exec`);
    ws.on('open', () => ws.send(JSON.stringify({ type: 'start', argv: ['true'], stdin: false })));
    ws.on('message', (raw, isBinary) => {
      if (isBinary) return;
      const m = JSON.parse(raw.toString());
      if (m.type === 'exit') {
        resolve(performance.now() - t0);
        ws.close();
      } else if (m.type === 'error') reject(new Error(m.message));
    });
    ws.on('error', reject);
  });
}

/** The transport alone: open an exec stream for a sprite that does not exist, until its error arrives (no guest). */
function streamRoundTrip(api: ApiClient): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const ws = api.socket('/v1/sprites/no-such-sprite/exec');
    ws.on('open', () => ws.send(JSON.stringify({ type: 'start', argv: ['true'], stdin: false })));
    ws.on('message', (raw) => {
      if (JSON.parse(raw.toString()).type === 'error') {
        resolve(performance.now() - t0);
        ws.close();
      }
    });
    ws.on('error', reject);
  });
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

const rh = await startRemoteHost();
const d = await startDaemon();
try {
  rh.setKnownHost('real');
  await d.api.call('hosts.add', { name: 'box', url: rh.url, sshConfig: rh.sshConfig, remoteCommand: rh.remoteCommand }, { timeoutMs: 300_000 });
  const viaHere = d.api.forHost('box');
  const direct = new ApiClient(rh.layout.apiSocket);
  await viaHere.call('sprites.create', { name: 'b' }, { timeoutMs: 900_000 });
  for (let i = 0; i < 5; i++) {
    await execTrue(direct, 'b');
    await execTrue(viaHere, 'b');
  }
  const ex = { direct: [] as number[], via: [] as number[], diff: [] as number[] };
  const info = { direct: [] as number[], via: [] as number[] };
  const stream = { direct: [] as number[], via: [] as number[] };
  for (let i = 0; i < ROUNDS; i++) {
    const a = await execTrue(direct, 'b');
    const b = await execTrue(viaHere, 'b');
    ex.direct.push(a);
    ex.via.push(b);
    ex.diff.push(b - a);
    stream.direct.push(await streamRoundTrip(direct));
    stream.via.push(await streamRoundTrip(viaHere));
    info.direct.push(await timed(() => direct.call('daemon.info')));
    info.via.push(await timed(() => viaHere.call('daemon.info')));
  }
  const cli = { direct: [] as number[], via: [] as number[] };
  const remoteEnv = { ...process.env, SPRITELY_HOME: rh.home, SPRITELY_IMAGES_DIR: d.env.SPRITELY_IMAGES_DIR };
  for (let i = 0; i < CLI_ROUNDS; i++) {
    const a = await runCommand(process.execPath, [BIN, 'exec', 'b', '--', 'true'], remoteEnv);
    const b = await runCommand(process.execPath, [BIN, 'exec', '--host', 'box', 'b', '--', 'true'], d.env);
    if (a.code || b.code) throw new Error(`cli exec failed: ${a.stderr} ${b.stderr}`);
    cli.direct.push(a.ms);
    cli.via.push(b.ms);
  }
  const f = (x: number) => x.toFixed(1);
  const q = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))];
  console.log(`exec true, streamed (${ROUNDS} interleaved rounds): on that machine p50 ${f(median(ex.direct))} ms; through this computer's daemon and SSH p50 ${f(median(ex.via))} ms; added p50 ${f(median(ex.via) - median(ex.direct))} ms (paired differences p25/p50/p75 ${f(q(ex.diff, 0.25))}/${f(median(ex.diff))}/${f(q(ex.diff, 0.75))} ms; direct p25–p75 ${f(q(ex.direct, 0.25))}–${f(q(ex.direct, 0.75))} ms)`);
  console.log(`exec stream open → first answer, no guest (${ROUNDS} rounds): on that machine p50 ${f(median(stream.direct))} ms; through this computer p50 ${f(median(stream.via))} ms; added ${f(median(stream.via) - median(stream.direct))} ms`);
  console.log(`GET /v1/info: on that machine p50 ${f(median(info.direct))} ms; through this computer p50 ${f(median(info.via))} ms; added ${f(median(info.via) - median(info.direct))} ms`);
  console.log(`CLI spritely exec … -- true (${CLI_ROUNDS} rounds, wall): on that machine p50 ${f(median(cli.direct))} ms; --host box p50 ${f(median(cli.via))} ms; added ${f(median(cli.via) - median(cli.direct))} ms`);
  console.log(`load average ${fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}; ssh processes for the host: 1 (pid ${(await d.api.call('hosts.get', { host: 'box' })).sshPid})`);
} finally {
  await d.cleanup();
  await rh.cleanup();
}
