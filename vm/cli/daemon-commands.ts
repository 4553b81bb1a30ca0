/**
 * The commands about the machinery rather than a sprite: `daemon start|status|stop`, `doctor` and
 * `image build|list`. (`daemon run`, the daemon itself, is imported straight from program.ts.)
 */
import fs from 'node:fs';
import path from 'node:path';
import { ApiClient } from '../api/client.ts';
import { API_VERSION } from '../api/contract.ts';
import { ensureDaemon } from '../daemon/autostart.ts';
import type { RemoteHello } from '../hosts/host-compat.ts';
import { layout } from '../paths.ts';
import { client, print } from './command-kit.ts';
import { formatAge, formatTable, withProgress } from './ui.ts';

interface Json {
  json?: boolean;
}

export async function daemonStart(opts: Json = {}): Promise<void> {
  // Always this computer's daemon: over SSH, this is how a remote host add starts and finds it.
  const l = layout();
  const info = await (await ensureDaemon(l)).call('daemon.info');
  if (!opts.json) return void process.stdout.write(`daemon running (pid ${info.pid}), data in ${info.home}\n`);
  let urlPort: number | null = null;
  try {
    urlPort = Number(fs.readFileSync(path.join(l.home, 'url-port'), 'utf8').trim()) || null;
  } catch {
    /* no URL proxy */
  }
  const hello: RemoteHello = { version: info.version, api: API_VERSION, pid: info.pid, home: info.home, socket: l.apiSocket, urlPort, accel: info.accel, qemuVersion: info.qemuVersion };
  process.stdout.write(JSON.stringify(hello) + '\n');
}

export async function daemonStatus(): Promise<void> {
  const api = new ApiClient(layout().apiSocket);
  try {
    const info = await api.call('daemon.info');
    process.stdout.write(`running (pid ${info.pid}, version ${info.version}); accelerator ${info.accel ? `${info.accel.accel}: ${info.accel.reason}` : 'not chosen yet'}\n`);
  } catch {
    process.stdout.write('not running\n');
    process.exitCode = 3;
  }
}

export async function daemonStop(opts: { leaveRunning?: boolean }): Promise<void> {
  const api = new ApiClient(layout().apiSocket);
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
}

export async function doctor(opts: Json): Promise<void> {
  const api = await client();
  const [d, info] = await Promise.all([api.call('daemon.doctor'), api.call('daemon.info')]);
  print(opts.json, { ...d, info }, () => d.checks.map((c) => `${c.ok ? 'ok  ' : 'FAIL'} ${c.name.padEnd(14)} ${c.detail}`).join('\n') + `\n     data dir       ${info.home}`);
  if (d.checks.some((c) => !c.ok)) process.exitCode = 1;
}

export async function imageBuild(opts: Json & { force?: boolean }): Promise<void> {
  const api = await client();
  const img = await withProgress(api, !opts.json, () => api.call('images.build', { force: opts.force }, {}));
  print(opts.json, img, () => `image ${img.id} ready (${(img.sizeBytes / 2 ** 20).toFixed(0)} MiB)`);
}

export async function imageList(opts: Json): Promise<void> {
  const imgs = await (await client()).call('images.list');
  print(opts.json, imgs, () => formatTable(['ID', 'DEFAULT', 'SIZE', 'CREATED'], imgs.map((i) => [i.id, i.default ? 'yes' : '', `${(i.sizeBytes / 2 ** 20).toFixed(0)} MiB`, formatAge(i.createdAt)])));
}
