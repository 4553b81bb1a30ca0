/**
 * What each API method does: a thin mapping from the contract onto the engine. Inputs arrive
 * already validated by the contract's schemas.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import { promisify } from 'node:util';
import type { Engine } from '../engine/engine.ts';
import type { RelayLink } from '../net/relay-link.ts';
import { SpritelyError } from '../errors.ts';
import { parseNetworkPolicy, type NetworkPolicy } from '../net/egress-policy.ts';
import { defaultMemoryLimitMiB } from '../engine/daemon-config.ts';
import { sshConfigFor } from '../ssh/ssh-config-block.ts';
import type { MethodInput, MethodName, MethodOutput } from './contract.ts';
import type { RemoteHosts } from './remote-hosts.ts';

const execFileP = promisify(execFile);

export type Handlers = { [M in MethodName]: (input: MethodInput<M>) => Promise<MethodOutput<M>> };

export const DEFAULT_EXEC_OUTPUT_CAP = 8 * 1024 * 1024;
/** Output the guest agent may send per stream ahead of what the daemon has read (fewer round trips for big outputs). */
export const EXEC_WINDOW = 1024 * 1024;

export interface HandlerOptions {
  version: string;
  onShutdown?: (leaveRunning: boolean) => void;
  loginUrl: () => string;
  loginFile?: () => { path: string; expiresAt: string };
  logoutAll?: () => number;
  localUrl?: (name: string) => string;
  relay?: RelayLink;
  /** The host's RAM, for the default memory limit (the engine's own source unless a spec fakes it). */
  hostMemoryMiB?: () => number;
  /** Builds a sprite's ssh-config block (the real one writes its known_hosts file in the data dir). */
  sshConfig?: (name: string, hostKey: string) => string;
  /** The remote hosts this daemon drives (absent: hosts.* say so). */
  hosts?: RemoteHosts;
}

export function createHandlers(engine: Engine, opts: HandlerOptions): Handlers {
  const relay = () => {
    if (!opts.relay) throw new SpritelyError('unavailable', 'This daemon has no relay support.');
    return opts.relay;
  };
  const hosts = () => {
    if (!opts.hosts) throw new SpritelyError('unavailable', 'This daemon drives no remote hosts.');
    return opts.hosts;
  };
  const hostMemoryMiB = opts.hostMemoryMiB ?? (() => os.totalmem() / 2 ** 20);
  const sshConfig = opts.sshConfig ?? ((name: string, hostKey: string) => sshConfigFor(engine.layout, name, hostKey));
  const configView = () => {
    const c = engine.configView();
    return { ...c, memoryLimitDefaultMiB: c.memoryLimitDefault ? c.memoryLimitMiB : defaultMemoryLimitMiB(hostMemoryMiB()) };
  };
  const imageView = (img: { id: string; createdAt: string; sizeBytes: number; diskVirtualBytes: number }) => ({
    id: img.id,
    createdAt: img.createdAt,
    sizeBytes: img.sizeBytes,
    diskVirtualBytes: img.diskVirtualBytes,
    default: img.id === engine.images.defaultImageId(),
  });
  return {
    'daemon.info': async () => ({
      version: opts.version,
      pid: process.pid,
      home: engine.layout.home,
      accel: engine.knownAccelerator ? { accel: engine.knownAccelerator.name, reason: engine.knownAccelerator.reason } : null,
      qemuVersion: await engine.hypervisorVersion().catch(() => null),
    }),
    'daemon.doctor': async () => ({ checks: await doctor(engine) }),
    'daemon.shutdown': async (input) => {
      setImmediate(() => opts.onShutdown?.(input.leaveRunning ?? false));
      return { ok: true as const };
    },
    'ui.loginUrl': async () => ({ url: opts.loginUrl() }),
    'ui.loginFile': async () => {
      if (!opts.loginFile) throw new SpritelyError('unavailable', 'This daemon has no browser logins.');
      return opts.loginFile();
    },
    'ui.logoutAll': async () => {
      if (!opts.logoutAll) throw new SpritelyError('unavailable', 'This daemon has no browser logins.');
      return { sessions: opts.logoutAll() };
    },
    'images.list': async () => engine.images.list().map(imageView),
    'images.build': async (input) => imageView(await engine.ensureImage(undefined, { force: input.force })),
    'sprites.list': async () => engine.list(),
    'sprites.get': async ({ name }) => engine.get(name),
    'sprites.create': async ({ network, ...rest }) => engine.create({ ...rest, network: network === undefined ? undefined : policyOf(network) }),
    'sprites.network': async ({ name, policy }) => engine.setNetwork(name, policyOf(policy)),
    'sprites.netShow': async ({ name }) => engine.networkView(name),
    'sprites.start': async ({ name }) => engine.start(name),
    'sprites.stop': async ({ name, force }) => engine.stop(name, { force }),
    'sprites.destroy': async ({ name }) => {
      await engine.destroy(name);
      return { ok: true as const };
    },
    'sprites.exec': async (input) => execBuffered(engine, input),
    'sprites.hostKey': async ({ name }) => ({ name, hostKey: engine.hostKey(name) }),
    'sprites.sshConfig': async ({ name }) => ({ name, config: sshConfig(name, engine.hostKey(name)) }),
    'checkpoints.list': async ({ name }) => engine.listCheckpoints(name),
    'checkpoints.create': async ({ name, comment }) => engine.createCheckpoint(name, { comment }),
    'checkpoints.restore': async ({ name, id, backup }) => engine.restoreCheckpoint(name, id, { backup }),
    'checkpoints.delete': async ({ name, id }) => {
      await engine.deleteCheckpoint(name, id);
      return { ok: true as const };
    },
    'checkpoints.diff': async ({ name, ...req }) => engine.diffCheckpoints(name, req),
    'checkpoints.mount': async ({ name, id }) => engine.mountCheckpoint(name, id),
    'checkpoints.unmount': async ({ name, id, force }) => engine.unmountCheckpoint(name, id, { force }),
    'sprites.fork': async ({ name, checkpoint, newName }) => engine.fork(name, checkpoint, newName),
    'sprites.sleep': async ({ name }) => engine.sleep(name),
    'sprites.wake': async ({ name }) => engine.wake(name),
    'sprites.url': async ({ name, port }) => {
      if (port !== undefined) await engine.setUrlPort(name, port);
      if (!opts.localUrl) throw new SpritelyError('unavailable', 'The daemon serves no local URLs (its proxy port is not open).');
      return { local: opts.localUrl(name), port: engine.get(name).urlPort };
    },
    'relay.connect': async ({ url, token, ca }) => relay().connect(url, token, ca),
    'relay.status': async () => relay().status(),
    'relay.disconnect': async () => {
      await relay().disconnect();
      return { ok: true as const };
    },
    'sprites.publish': async ({ name, auth, off }) => {
      engine.get(name);
      if (off) {
        await relay().unpublish(name);
        return { name, url: null, auth: null, accessToken: null, live: false };
      }
      return relay().publish(name, auth ?? 'sprite');
    },
    'sprites.share': async ({ name, ttlSec }) => {
      engine.get(name);
      return relay().shareLink(name, ttlSec * 1000);
    },
    'sprites.revokeLinks': async ({ name }) => {
      engine.get(name);
      return relay().revokeLinks(name);
    },
    'hosts.list': async () => hosts().list(),
    'hosts.get': async ({ host }) => hosts().get(host),
    'hosts.add': async (input) => hosts().add(input),
    'hosts.remove': async ({ host }) => {
      await hosts().remove(host);
      return { ok: true as const };
    },
    'sprites.usage': async () =>
      engine.list().map((s) => {
        const cps = engine.listCheckpoints(s.name);
        return { name: s.name, state: s.state, ...s.usage, checkpoints: cps.length, checkpointBytes: cps.reduce((n, c) => n + c.bytes, 0) };
      }),
    'config.get': async () => configView(),
    'config.set': async ({ idleTimeoutSec, memoryLimitMiB, warmSpare, checkpointMounts, sprite }) => {
      if (idleTimeoutSec === undefined && memoryLimitMiB === undefined && warmSpare === undefined && checkpointMounts === undefined) throw new SpritelyError('invalid_argument', 'Nothing to set: give idleTimeoutSec, memoryLimitMiB, warmSpare and/or checkpointMounts.');
      if (warmSpare !== undefined && sprite) throw new SpritelyError('invalid_argument', 'Warm spares are daemon-wide; the setting takes no sprite.');
      if (checkpointMounts !== undefined && sprite) throw new SpritelyError('invalid_argument', 'The number of checkpoint mounts is daemon-wide; it takes no sprite.');
      if (idleTimeoutSec === null && !sprite) throw new SpritelyError('invalid_argument', 'idleTimeoutSec: null (back to the default) needs a sprite; the daemon-wide idle timeout takes seconds (0 = never).');
      if (memoryLimitMiB !== undefined && memoryLimitMiB > 0 && memoryLimitMiB < 256) throw new SpritelyError('invalid_argument', `A memory limit of ${memoryLimitMiB} MiB is below 256 MiB, too small for any sprite (0 = the default).`);
      if (memoryLimitMiB !== undefined && sprite) throw new SpritelyError('invalid_argument', 'The memory limit is daemon-wide; it takes no sprite.');
      if (idleTimeoutSec !== undefined) await engine.setIdleTimeout(idleTimeoutSec, sprite);
      if (memoryLimitMiB !== undefined) await engine.setMemoryLimit(memoryLimitMiB);
      if (warmSpare !== undefined) await engine.setWarmSpare(warmSpare);
      if (checkpointMounts !== undefined) await engine.setCheckpointMounts(checkpointMounts);
      return configView();
    },
  };
}

async function execBuffered(engine: Engine, input: MethodInput<'sprites.exec'>): Promise<MethodOutput<'sprites.exec'>> {
  const t0 = Date.now();
  const release = engine.hold(input.name);
  try {
    return await runBuffered(engine, input, t0);
  } finally {
    release();
  }
}

async function runBuffered(engine: Engine, input: MethodInput<'sprites.exec'>, t0: number): Promise<MethodOutput<'sprites.exec'>> {
  // The guest agent enforces the timeout (SIGKILL to the command's process group) and reports it.
  const channel = await engine.exec(input.name, { argv: input.argv, cwd: input.cwd, env: input.env, timeoutMs: input.timeoutMs, window: EXEC_WINDOW });
  const cap = input.maxOutputBytes ?? DEFAULT_EXEC_OUTPUT_CAP;
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  let outSize = 0;
  let errSize = 0;
  let truncated = false;
  channel.on('data', (d: Buffer) => {
    if (outSize + d.length > cap) truncated = true;
    const keep = d.subarray(0, Math.max(0, cap - outSize));
    out.push(keep);
    outSize += keep.length;
  });
  channel.stderr.on('data', (d: Buffer) => {
    if (errSize + d.length > cap) truncated = true;
    const keep = d.subarray(0, Math.max(0, cap - errSize));
    err.push(keep);
    errSize += keep.length;
  });
  if (input.stdin !== undefined) channel.end(input.stdin);
  else channel.end();
  // backstop, should the guest's own timeout not answer: the session is closed (its group killed)
  const timer = input.timeoutMs ? setTimeout(() => channel.close(), input.timeoutMs + 10_000) : null;
  const exit = await channel.done;
  if (timer) clearTimeout(timer);
  if (exit.lost) throw new SpritelyError('unavailable', `The command in "${input.name}" did not finish: ${exit.lost}.`);
  return {
    exitCode: exit.code,
    signal: exit.signal,
    stdout: Buffer.concat(out).toString('utf8'),
    stderr: Buffer.concat(err).toString('utf8'),
    truncated,
    timedOut: exit.timedOut,
    durationMs: Date.now() - t0,
  };
}

async function doctor(engine: Engine): Promise<{ name: string; ok: boolean; detail: string }[]> {
  const checks: { name: string; ok: boolean; detail: string }[] = [];
  const check = async (name: string, fn: () => Promise<string>) => {
    try {
      checks.push({ name, ok: true, detail: await fn() });
    } catch (err) {
      checks.push({ name, ok: false, detail: err instanceof SpritelyError ? err.message : (err as Error).message });
    }
  };
  checks.push(...(await engine.driver.checks()));
  await check('image', async () => {
    const img = engine.images.get(engine.images.defaultImageId());
    if (!img) throw new Error(`the default image ${engine.images.defaultImageId()} is not built yet (spritely image build; create also builds it)`);
    return `${img.id} (${(img.sizeBytes / 2 ** 20).toFixed(0)} MiB)`;
  });
  await check('accelerator', async () => {
    const img = engine.images.get(engine.images.defaultImageId());
    if (!img) {
      const kvm = fs.existsSync('/dev/kvm') ? '/dev/kvm exists; a canary boot decides once the image exists' : 'no /dev/kvm: software emulation (TCG)';
      return kvm;
    }
    const a = await engine.accelerator(img);
    return `${a.name}: ${a.reason}`;
  });
  await check('image builder', async () => {
    const { stdout } = await execFileP('mmdebstrap', ['--version']).catch(() => {
      throw new Error('mmdebstrap is missing (sudo apt-get install mmdebstrap); needed only to build images');
    });
    return stdout.trim();
  });
  await check('data dir', async () => {
    const st = fs.statSync(engine.layout.home);
    if ((st.mode & 0o077) !== 0) throw new Error(`${engine.layout.home} is readable by others (mode ${(st.mode & 0o777).toString(8)}); run chmod 700`);
    fs.accessSync(engine.layout.home, fs.constants.W_OK);
    return `${engine.layout.home} (owner-only)`;
  });
  await check('free disk', async () => {
    const s = fs.statfsSync(engine.layout.home);
    const free = s.bavail * s.bsize;
    const gib = free / 2 ** 30;
    if (gib < 2) throw new Error(`only ${gib.toFixed(1)} GiB free in ${engine.layout.home}; sprites and checkpoints need room`);
    return `${gib.toFixed(1)} GiB free`;
  });
  return checks;
}

function policyOf(text: string): NetworkPolicy {
  try {
    return parseNetworkPolicy(text);
  } catch (err) {
    throw new SpritelyError('invalid_argument', (err as Error).message);
  }
}
