/** The sprite lifecycle commands: create, list, start, stop, destroy, sleep, wake, fork, usage. */
import type { ApiClient } from '../api/client.ts';
import type { HostStatus, Sprite } from '../api/contract.ts';
import { formatBytes } from '../checkpoints/timeline-text.ts';
import { SpritelyError } from '../errors.ts';
import { client, fmtMs, formatDuration, nameArg, print } from './command-kit.ts';
import { confirm, formatAge, formatTable, withProgress } from './ui.ts';

interface Json {
  json?: boolean;
}

/** How long `spritely list` waits for a connected remote host's answer. */
export const LIST_HOST_TIMEOUT_MS = 2000;

export async function create(name: string, opts: Json & { image?: string; memory?: number; cpus?: number; disk?: number; network?: string }): Promise<void> {
  nameArg(name);
  const api = await client();
  const r = await withProgress(api, !opts.json, () => api.call('sprites.create', { name, image: opts.image, memoryMiB: opts.memory, cpus: opts.cpus, diskGiB: opts.disk, network: opts.network }));
  print(opts.json, { name: r.sprite.name, state: r.sprite.state, timings: r.timings, sprite: r.sprite }, () => {
    const t = r.timings;
    const detail = t.runningMs !== undefined ? ` (running after ${fmtMs(t.runningMs)}${t.goldenMs > 1000 ? `, golden state built in ${fmtMs(t.goldenMs)}` : ''}${t.imageMs > 1000 ? `, image ${fmtMs(t.imageMs)}` : ''})` : '';
    return `created ${name} in ${fmtMs(t.totalMs)}${detail} [${r.sprite.accel}]`;
  });
}

const spriteRow = (s: Sprite) => [s.name, s.operation ? `${s.state} (${s.operation})` : s.state, s.image, formatAge(s.createdAt), s.uptimeSeconds === null ? '-' : formatDuration(s.uptimeSeconds)];
const HEAD = ['NAME', 'STATE', 'IMAGE', 'CREATED', 'UPTIME'];

/**
 * One host's sprites (--host, $SPRITELY_HOST), or — with no host named — every host's: this
 * computer's, then each remote host's, asked in parallel. A host that is not connected costs
 * nothing (its state is known); a connected one that does not answer within LIST_HOST_TIMEOUT_MS
 * is shown as such, so one dead server never holds up the list.
 */
export async function list(opts: Json): Promise<void> {
  if (process.env.SPRITELY_HOST?.trim()) {
    const sprites = await (await client()).call('sprites.list');
    return print(opts.json, sprites, () => (sprites.length ? formatTable(HEAD, sprites.map(spriteRow)) : 'no sprites yet: spritely create NAME'));
  }
  const api = (await client()).forHost(null);
  const [local, hosts] = await Promise.all([api.call('sprites.list'), api.call('hosts.list')]);
  if (!hosts.length) return print(opts.json, local, () => (local.length ? formatTable(HEAD, local.map(spriteRow)) : 'no sprites yet: spritely create NAME'));
  const groups = await listHosts(api, hosts);
  const all = [{ host: 'local', sprites: local, state: 'connected', problem: null as string | null }, ...groups];
  if (opts.json) {
    for (const g of all) if (g.problem) process.stderr.write(`spritely: host ${g.host}: ${g.problem}\n`);
    return print(true, all.flatMap((g) => (g.sprites ?? []).map((s) => ({ host: g.host, ...s }))), () => '');
  }
  const rows = all.flatMap((g) => (g.sprites ? g.sprites.map((s) => [g.host, ...spriteRow(s)]) : [[g.host, '-', g.state, '', '', '']]));
  const notes = all.filter((g) => g.problem).map((g) => `${g.host}: ${g.problem}`);
  print(false, null, () => [formatTable(['HOST', ...HEAD], rows), ...(notes.length ? ['', ...notes] : [])].join('\n'));
}

async function listHosts(api: ApiClient, hosts: HostStatus[]): Promise<{ host: string; sprites: Sprite[] | null; state: string; problem: string | null }[]> {
  return Promise.all(
    hosts.map(async (h) => {
      if (h.state !== 'connected') return { host: h.name, sprites: null, state: h.state, problem: h.reason ?? h.state };
      try {
        return { host: h.name, sprites: await api.forHost(h.name).call('sprites.list', {}, { timeoutMs: LIST_HOST_TIMEOUT_MS }), state: 'connected', problem: null };
      } catch (err) {
        const msg = (err as Error).message;
        return { host: h.name, sprites: null, state: 'no answer', problem: /did not answer/.test(msg) ? `no answer within ${LIST_HOST_TIMEOUT_MS / 1000} s` : msg };
      }
    }),
  );
}

export async function start(name: string, opts: Json): Promise<void> {
  nameArg(name);
  const r = await (await client()).call('sprites.start', { name });
  print(opts.json, r, () => `started ${name} in ${fmtMs(r.timings.totalMs)}`);
}

export async function stop(name: string, opts: Json & { force?: boolean }): Promise<void> {
  nameArg(name);
  const s = await (await client()).call('sprites.stop', { name, force: opts.force });
  print(opts.json, s, () => `stopped ${name}`);
}

export async function destroy(name: string, opts: { force?: boolean }): Promise<void> {
  nameArg(name);
  const api = await client();
  await api.call('sprites.get', { name });
  if (!opts.force && !(await confirm(`Destroy sprite "${name}" and its disk? Type the name to confirm: `, name))) {
    throw new SpritelyError('failed_precondition', 'Not destroyed.');
  }
  await api.call('sprites.destroy', { name });
  process.stdout.write(`destroyed ${name}\n`);
}

export async function sleep(name: string, opts: Json): Promise<void> {
  nameArg(name);
  const r = await (await client()).call('sprites.sleep', { name });
  print(opts.json, r, () => `${name} is asleep (${fmtMs(r.timings.totalMs)})`);
}

export async function wake(name: string, opts: Json): Promise<void> {
  nameArg(name);
  const r = await (await client()).call('sprites.wake', { name });
  print(opts.json, r, () => `${name} is awake (${fmtMs(r.timings.totalMs)})${r.sprite.lastError ? `\nnote: ${r.sprite.lastError}` : ''}`);
}

export async function fork(name: string, id: string, newName: string, opts: Json): Promise<void> {
  nameArg(name);
  nameArg(newName);
  const r = await (await client()).call('sprites.fork', { name, checkpoint: id, newName });
  print(opts.json, { name: r.sprite.name, state: r.sprite.state, timings: r.timings, sprite: r.sprite }, () => `forked ${name}@${id} into ${newName} in ${fmtMs(r.timings.totalMs)}`);
}

export async function usage(opts: Json): Promise<void> {
  const rows = await (await client()).call('sprites.usage');
  print(opts.json, rows, () =>
    formatTable(
      ['NAME', 'STATE', 'AWAKE', 'CPU', 'DISK', 'CHECKPOINTS', 'LAST ACTIVE'],
      rows.map((u) => [u.name, u.state, formatDuration(u.awakeSeconds), `${u.cpuSeconds.toFixed(1)}s`, formatBytes(u.diskBytes), u.checkpoints ? `${u.checkpoints} (${formatBytes(u.checkpointBytes ?? 0)})` : '-', u.lastActiveAt ? formatAge(u.lastActiveAt) : '-']),
    ),
  );
}
