/** `net` (a sprite's network policy) and `config` (idle timeout, memory limit, warm spares). */
import { SpritelyError } from '../errors.ts';
import { safeText } from '../safe-text.ts';
import { client, formatDuration, nameArg, print } from './command-kit.ts';
import { refusedLines } from './refused-lines.ts';
import { parseDuration } from './ui.ts';

interface Json {
  json?: boolean;
}

export async function netSet(name: string, policy: string, opts: Json): Promise<void> {
  nameArg(name);
  const s = await (await client()).call('sprites.network', { name, policy });
  print(opts.json, s, () => `${name}: network ${s.network}`);
}

export async function netShow(name: string, opts: Json): Promise<void> {
  nameArg(name);
  const s = await (await client()).call('sprites.netShow', { name });
  print(opts.json, s, () => [`${name}: network ${safeText(s.network)}`, ...refusedLines(s.refused, new Date())].join('\n'));
}

export async function configSet(key: string, value: string, opts: { sprite?: string }): Promise<void> {
  if (opts.sprite) nameArg(opts.sprite);
  if (key === 'idle-timeout') {
    const seconds = parseDuration(value);
    await (await client()).call('config.set', { idleTimeoutSec: seconds, sprite: opts.sprite });
    process.stdout.write(`idle-timeout = ${seconds ? formatDuration(seconds) : 'never'}${opts.sprite ? ` for ${opts.sprite}` : ''}\n`);
  } else if (key === 'memory-limit') {
    const c = await (await client()).call('config.set', { memoryLimitMiB: parseMiB(value), sprite: opts.sprite });
    process.stdout.write(`memory-limit = ${formatMiB(c.memoryLimitMiB)}${c.memoryLimitDefault ? ' (default)' : ''}\n`);
  } else if (key === 'warm-spare') {
    const on = /^(on|true|yes|1)$/i.test(value) ? true : /^(off|false|no|0)$/i.test(value) ? false : null;
    if (on === null) throw new SpritelyError('invalid_argument', `warm-spare is on or off (got "${value}")`);
    if (opts.sprite) throw new SpritelyError('invalid_argument', 'warm-spare is daemon-wide; it takes no --sprite.');
    const c = await (await client()).call('config.set', { warmSpare: on });
    process.stdout.write(`warm-spare = ${c.warmSpare ? 'on' : 'off'}\n`);
  } else if (key === 'checkpoint-mounts') {
    const n = /^\d+$/.test(value.trim()) ? Number(value.trim()) : NaN;
    if (!(n >= 1 && n <= 16)) throw new SpritelyError('invalid_argument', `checkpoint-mounts is a number from 1 to 16 (got "${value}")`);
    if (opts.sprite) throw new SpritelyError('invalid_argument', 'checkpoint-mounts is daemon-wide; it takes no --sprite.');
    const c = await (await client()).call('config.set', { checkpointMounts: n });
    process.stdout.write(`checkpoint-mounts = ${c.checkpointMounts}\n`);
  } else throw new SpritelyError('invalid_argument', `Unknown setting "${key}" (known: idle-timeout, memory-limit, warm-spare, checkpoint-mounts).`);
}

export async function configGet(opts: Json): Promise<void> {
  const c = await (await client()).call('config.get');
  const spares = c.spares.map((s) => `${s.image} ${formatMiB(s.memoryMiB)} ${s.cpus} CPU: ${s.state}`).join('; ');
  print(opts.json, c, () => `idle-timeout = ${c.idleTimeoutSec ? formatDuration(c.idleTimeoutSec) : 'never'}\nmemory-limit = ${formatMiB(c.memoryLimitMiB)}${c.memoryLimitDefault ? ' (default: 80% of host RAM)' : ''}\nwarm-spare = ${c.warmSpare ? 'on' : 'off'}${spares ? ` (${spares})` : ''}\ncheckpoint-mounts = ${c.checkpointMounts}`);
}

/** "8G", "512M", "12000" (MiB), "default" or "0" (the default). */
export function parseMiB(text: string): number {
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
