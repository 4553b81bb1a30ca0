/**
 * How the network dialog writes a refused destination: the same text `spritely net show` prints
 * (vm/cli/refused-lines.ts; refused-text.spec.ts holds the two equal). The renderer takes only
 * types from vm/, so these few lines are its own. The daemon already made the guest's text inert;
 * it is made visible once more here (every control as an escape), and React renders it as text.
 */
import type { RefusedDestination } from '../../vm/api/contract.ts';
import { visible } from './diff-view.ts';

/** `github.com:443 (140.82.121.3)`, `[::1]:8080`, `example.org` (DNS: no port). */
export function refusedWhere(r: Pick<RefusedDestination, 'name' | 'address' | 'port'>): string {
  const address = r.address === null ? null : visible(r.address);
  const name = r.name === null ? null : visible(r.name);
  const host = name ?? (address === null ? '?' : address.includes(':') ? `[${address}]` : address);
  const via = name !== null && address !== null ? ` (${address})` : '';
  return `${host}${r.port === null ? '' : `:${r.port}`}${via}`;
}

/** Local time of `at`: `14:02:11` on the day of `now`, `2030-01-02 14:02:11` before it. */
export function refusedWhen(at: string, now: Date): string {
  const t = new Date(at);
  if (Number.isNaN(t.getTime())) return visible(at);
  const two = (n: number) => String(n).padStart(2, '0');
  const time = `${two(t.getHours())}:${two(t.getMinutes())}:${two(t.getSeconds())}`;
  const day = `${t.getFullYear()}-${two(t.getMonth() + 1)}-${two(t.getDate())}`;
  const today = `${now.getFullYear()}-${two(now.getMonth() + 1)}-${two(now.getDate())}`;
  return day === today ? time : `${day} ${time}`;
}

/** The reason, visible. */
export function refusedWhy(r: Pick<RefusedDestination, 'reason'>): string {
  return visible(r.reason);
}

/** `×3` for a burst of three, nothing for one. */
export function refusedCount(r: Pick<RefusedDestination, 'count'>): string {
  return r.count > 1 ? `×${r.count}` : '';
}
