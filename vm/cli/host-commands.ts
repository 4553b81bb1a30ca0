/**
 * `spritely host add|list|remove|use`: remote Linux machines whose sprites this computer drives
 * over SSH (docs/hosts.md). These always talk to this computer's daemon (which holds the SSH
 * connections), whatever --host says.
 */
import os from 'node:os';
import path from 'node:path';
import type { HostStatus } from '../api/contract.ts';
import { ensureDaemon } from '../daemon/autostart.ts';
import { SpritelyError } from '../errors.ts';
import { assertHostName, LOCAL_HOST } from '../hosts/host-records.ts';
import { readDefaultHost, resolveHost, writeDefaultHost } from '../hosts/host-target.ts';
import { layout } from '../paths.ts';
import { print } from './command-kit.ts';
import { formatTable } from './ui.ts';

const localClient = () => ensureDaemon(layout());

function filePath(p: string | undefined): string | undefined {
  if (!p) return undefined;
  return path.resolve(p.startsWith('~/') ? path.join(os.homedir(), p.slice(2)) : p);
}

export async function hostAdd(name: string, url: string, opts: { identity?: string; sshConfig?: string; remoteCommand?: string; acceptNewHostKey?: boolean; json?: boolean }): Promise<void> {
  assertHostName(name);
  const api = await localClient();
  if (!opts.json) process.stderr.write(`connecting to ${url} over SSH and checking its Spritely…\n`);
  const r = await api.call(
    'hosts.add',
    { name, url, identity: filePath(opts.identity), sshConfig: filePath(opts.sshConfig), remoteCommand: opts.remoteCommand, acceptNewHostKey: opts.acceptNewHostKey || undefined },
    { timeoutMs: 300_000 },
  );
  print(opts.json, r, () => {
    const h = r.host;
    const lines = [`added host ${h.name} (${h.url}): Spritely ${h.version ?? '?'}, ${h.state}`];
    if (r.hostKey) lines.push(`host key ${r.hostKey}${r.hostKeyAdded ? ' — new: written to your known_hosts (check it against the server: ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub)' : ' (already in your known_hosts)'}`);
    for (const c of r.checks) lines.push(`  ${c.ok ? 'ok  ' : 'FAIL'} ${c.name.padEnd(14)} ${c.detail}`);
    lines.push(`use it: spritely create --host ${h.name} NAME, or make it the default: spritely host use ${h.name}`);
    return lines.join('\n');
  });
}

export function hostStateText(h: HostStatus, now = Date.now()): string {
  if (h.state === 'connected') return 'connected';
  if (h.state === 'connecting') return h.reason ? `connecting (${h.reason})` : 'connecting';
  const retry = h.retryAt ? Math.max(0, Math.round((Date.parse(h.retryAt) - now) / 1000)) : null;
  return `unreachable${retry !== null ? ` (retrying in ${retry} s)` : ''}`;
}

export async function hostList(opts: { json?: boolean }): Promise<void> {
  const hosts = await (await localClient()).call('hosts.list');
  const current = safeDefault();
  print(opts.json, { default: current ?? LOCAL_HOST, hosts }, () => {
    const rows = [[`${current === null ? '*' : ' '} ${LOCAL_HOST}`, '(this computer)', 'connected', '', '']];
    for (const h of hosts) rows.push([`${current === h.name ? '*' : ' '} ${h.name}`, h.url, hostStateText(h), h.accel ?? '-', h.version ?? '-']);
    const notes = hosts.filter((h) => h.state !== 'connected' && h.reason).map((h) => `${h.name}: ${h.reason}`);
    return [formatTable(['  HOST', 'URL', 'STATE', 'ACCEL', 'SPRITELY'], rows), ...(notes.length ? ['', ...notes] : [])].join('\n');
  });
}

function safeDefault(): string | null {
  try {
    return resolveHost({ file: readDefaultHost(layout()) });
  } catch {
    return null;
  }
}

export async function hostRemove(name: string): Promise<void> {
  assertHostName(name);
  await (await localClient()).call('hosts.remove', { host: name });
  if (safeDefault() === name) await writeDefaultHost(layout(), null);
  process.stdout.write(`removed host ${name}; its sprites keep running there (add it again to see them)\n`);
}

export async function hostUse(name: string): Promise<void> {
  const l = layout();
  if (name === LOCAL_HOST) {
    await writeDefaultHost(l, null);
    process.stdout.write('commands act on this computer again\n');
    return;
  }
  assertHostName(name);
  const api = await localClient();
  const h = await api.call('hosts.get', { host: name }).catch((err: unknown) => {
    throw err instanceof SpritelyError ? err : new SpritelyError('internal', String(err));
  });
  await writeDefaultHost(l, name);
  process.stdout.write(`commands act on host ${name} (${h.url}) unless --host says otherwise; \`spritely host use local\` goes back\n`);
}
