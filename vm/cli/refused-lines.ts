/**
 * How a sprite's refused destinations read to a person: `spritely net show NAME` prints them one
 * a line (the app's network dialog writes each the same way: renderer/src/refused-text.ts, held
 * equal by its spec). The daemon already made the guest's text inert; everything printed goes
 * through safeText once more, so this stays true whatever answered.
 */
import type { RefusedDestination } from '../api/contract.ts';
import { safeText } from '../safe-text.ts';

/** `github.com:443 (140.82.121.3)`, `[::1]:8080`, `example.org` (DNS: no port). */
export function refusedWhere(r: Pick<RefusedDestination, 'name' | 'address' | 'port'>): string {
  const address = r.address === null ? null : safeText(r.address, { maxChars: 64 });
  const name = r.name === null ? null : safeText(r.name, { maxChars: 260 });
  const host = name ?? (address === null ? '?' : address.includes(':') ? `[${address}]` : address);
  const via = name !== null && address !== null ? ` (${address})` : '';
  return `${host}${r.port === null ? '' : `:${r.port}`}${via}`;
}

/** Local time of `at`: `14:02:11` on the day of `now`, `2030-01-02 14:02:11` before it. */
export function refusedWhen(at: string, now: Date): string {
  const t = new Date(at);
  if (Number.isNaN(t.getTime())) return safeText(at, { maxChars: 40 });
  const two = (n: number) => String(n).padStart(2, '0');
  const time = `${two(t.getHours())}:${two(t.getMinutes())}:${two(t.getSeconds())}`;
  const day = `${t.getFullYear()}-${two(t.getMonth() + 1)}-${two(t.getDate())}`;
  const today = `${now.getFullYear()}-${two(now.getMonth() + 1)}-${two(now.getDate())}`;
  return day === today ? time : `${day} ${time}`;
}

/** The reason as shown: inert, and a sentence. */
export function refusedWhy(r: Pick<RefusedDestination, 'reason'>): string {
  return safeText(r.reason, { maxChars: 500 });
}

/** `×3` for a burst of three, nothing for one. */
export function refusedCount(r: Pick<RefusedDestination, 'count'>): string {
  return r.count > 1 ? `×${r.count}` : '';
}

/**
 * What `spritely net show` prints under the policy: one line per refusal, newest first as given
 * (time, destination, protocol, why, ×count), columns aligned; or a line saying nothing was.
 */
export function refusedLines(refused: readonly RefusedDestination[], now: Date): string[] {
  if (refused.length === 0) return ['nothing refused yet (the list starts empty when the daemon starts)'];
  const rows = refused.map((r) => [refusedWhen(r.at, now), refusedWhere(r), r.protocol === 'tcp' || r.protocol === 'udp' || r.protocol === 'dns' ? r.protocol : '?', refusedWhy(r), refusedCount(r)]);
  const width = (i: number) => Math.min(48, Math.max(...rows.map((row) => row[i].length)));
  const widths = [width(0), width(1), width(2)];
  return [
    'last refused, newest first:',
    ...rows.map(([when, where, proto, why, count]) => `  ${when.padEnd(widths[0])}  ${where.padEnd(widths[1])}  ${proto.padEnd(widths[2])}  ${why}${count ? `  ${count}` : ''}`),
  ];
}
