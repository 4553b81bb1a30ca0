/**
 * Durations and sizes as people type them (`90s`, `10m`, `1h`; `12G`, `512M`, `default`), read
 * exactly as the CLI reads them (`spritely config set idle-timeout 10m`, `memory-limit 12G`: a
 * spec checks the two agree), and written back in the same spelling so a field can be edited.
 * Problems come back as the CLI's sentences instead of being thrown.
 */

export type Parsed = { ok: true; value: number } | { ok: false; problem: string };

/** The longest idle timeout the daemon takes (30 days). */
export const MAX_IDLE_SEC = 30 * 24 * 3600;

/** "90", "90s", "10m", "1h30m", "0" → seconds (as `parseDuration` in vm/cli/ui.ts). */
export function parseDuration(text: string): Parsed {
  const t = text.trim().toLowerCase();
  if (/^\d+$/.test(t)) return { ok: true, value: Number(t) };
  const m = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(t);
  if (!m || !t) return { ok: false, problem: `"${text}" is not a duration (try 90s, 10m or 1h).` };
  return { ok: true, value: Number(m[1] ?? 0) * 3600 + Number(m[2] ?? 0) * 60 + Number(m[3] ?? 0) };
}

/** An idle timeout the daemon accepts: a duration of at most 30 days. */
export function parseIdleTimeout(text: string): Parsed {
  const d = parseDuration(text);
  if (d.ok && d.value > MAX_IDLE_SEC) return { ok: false, problem: `"${text}" is longer than 30 days, the longest idle timeout.` };
  return d;
}

/** Seconds in the spelling `parseDuration` reads: 90 → "1m30s", 3600 → "1h", 0 → "0". */
export function durationText(seconds: number): string {
  if (seconds <= 0) return '0';
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  return `${h ? `${h}h` : ''}${m ? `${m}m` : ''}${s ? `${s}s` : ''}`;
}

/** "8G", "512M", "12000" (MiB), "default" or "0" (the default) → MiB (as `parseMiB` in vm/cli/settings-commands.ts). */
export function parseMemory(text: string): Parsed {
  const t = text.trim().toLowerCase();
  if (t === 'default') return { ok: true, value: 0 };
  const m = /^(\d+(?:\.\d+)?)\s*(m|mi|mib|g|gi|gib)?$/.exec(t);
  if (!m) return { ok: false, problem: `"${text}" is not a size: use e.g. 8G, 512M or default` };
  const n = Number(m[1]) * (m[2]?.startsWith('g') ? 1024 : 1);
  if (!Number.isFinite(n) || n > 16 * 1024 * 1024) return { ok: false, problem: `"${text}" is too large` };
  if (n !== 0 && n < 256) return { ok: false, problem: `"${text}" is below 256 MiB, too small for any sprite` };
  return { ok: true, value: Math.round(n) };
}

/** MiB in the spelling `parseMemory` reads: 4096 → "4G", 1536 → "1536M". */
export function memoryText(mib: number): string {
  return mib % 1024 === 0 ? `${mib / 1024}G` : `${mib}M`;
}

/** MiB for reading: 19660 → "19.2 GiB", 512 → "512 MiB". */
export function formatMiB(mib: number): string {
  return mib >= 1024 ? `${(mib / 1024).toFixed(1).replace(/\.0$/, '')} GiB` : `${Math.round(mib)} MiB`;
}

/** Seconds for reading: "45s", "12m", "3h 05m", "2d 4h" (awake time, CPU time). */
export function formatSeconds(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}

/** An idle timeout in words: "after 5m", "never". */
export function idleWords(seconds: number): string {
  return seconds === 0 ? 'never' : `after ${durationText(seconds)}`;
}
