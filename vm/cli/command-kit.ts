/**
 * What the command implementations share: the daemon client (started in the background when it is
 * not running), printing one result for people or as JSON, and small formats. Imported only by
 * the implementations (loaded when a command runs), never by program.ts, so `--version` and
 * `--help` load none of it.
 */
import type { ApiClient } from '../api/client.ts';
import { ensureDaemon } from '../daemon/autostart.ts';
import { selectedHost } from '../hosts/host-target.ts';
import { assertSpriteName } from '../names.ts';
import { layout } from '../paths.ts';

/** The daemon's client for the host this command acts on (--host, $SPRITELY_HOST, `host use`; else this computer). */
export const client = async (): Promise<ApiClient> => (await ensureDaemon(layout())).forHost(selectedHost());

export function print(json: boolean | undefined, value: unknown, human: () => string): void {
  process.stdout.write(json ? JSON.stringify(value, null, 2) + '\n' : human() + '\n');
}

export function nameArg(name: string): string {
  assertSpriteName(name);
  return name;
}

export function fmtMs(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(2)} s`;
}

export function formatDuration(s: number): string {
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}
