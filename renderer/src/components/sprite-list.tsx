/** The sidebar list: every sprite with its state, image and uptime, straight from daemon events. */
import { useEffect, useState } from 'react';
import { formatUptime, shortImage } from '../format.ts';
import { displayState, spriteNames } from '../store.ts';
import { formatBytes } from '../timeline-layout.ts';
import type { Sprite } from '../transport.ts';
import { useActions, useApp } from './store-context.tsx';

/** One clock for every uptime in the list (display only; the daemon is never polled). */
function useNow(everyMs = 1000): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), everyMs);
    return () => clearInterval(t);
  }, [everyMs]);
  return now;
}

export const STATE_LABEL: Record<string, string> = {
  running: 'Running',
  sleeping: 'Sleeping',
  stopped: 'Stopped',
  crashed: 'Crashed',
  busy: 'Busy',
};

export function StateBadge({ state, detail }: { state: string; detail?: string | null }) {
  return (
    <span className={`badge state-${state}`} title={detail ? `${STATE_LABEL[state] ?? state}: ${detail}` : undefined}>
      <span className="dot" aria-hidden />
      {STATE_LABEL[state] ?? state}
      {detail ? ` · ${detail}` : ''}
    </span>
  );
}

/** CPU time and disk used, when the daemon reports usage. */
export function usageText(sp: Sprite): string {
  const u = (sp as { usage?: { cpuSeconds?: number; diskBytes?: number } }).usage;
  if (!u || typeof u.cpuSeconds !== 'number' || typeof u.diskBytes !== 'number') return '';
  const cpu = u.cpuSeconds < 60 ? `${Math.round(u.cpuSeconds)}s` : `${Math.round(u.cpuSeconds / 60)}m`;
  return `${cpu} CPU · ${formatBytes(u.diskBytes)}`;
}

export function SpriteList() {
  const sprites = useApp((s) => s.sprites);
  const pending = useApp((s) => s.pending);
  const selected = useApp((s) => s.selected);
  const loaded = useApp((s) => s.loaded);
  const tabs = useApp((s) => s.tabs);
  const actions = useActions();
  const now = useNow();
  const names = spriteNames({ sprites } as never);
  const creating = Object.keys(pending).filter((n) => pending[n] === 'create' && !sprites[n]);

  if (!loaded) return <div className="list-empty">Connecting to the daemon…</div>;
  if (!names.length && !creating.length) return <div className="list-empty">No sprites yet. Create one above.</div>;
  return (
    <ul className="sprite-list" aria-label="Sprites">
      {creating.map((n) => (
        <li key={n}>
          <button className={`sprite-item${selected === n ? ' selected' : ''}`} onClick={() => actions.select(n)}>
            <span className="sprite-name">{n}</span>
            <StateBadge state="busy" detail="create" />
          </button>
        </li>
      ))}
      {names.map((n) => {
        const sp = sprites[n];
        const ds = displayState(sp, pending[n]);
        const count = tabs.filter((t) => t.sprite === n).length;
        return (
          <li key={n}>
            <button className={`sprite-item${selected === n ? ' selected' : ''}`} aria-current={selected === n ? 'true' : undefined} onClick={() => actions.select(n)} data-sprite={n} data-state={ds.state}>
              <span className="sprite-row">
                <span className="sprite-name">{n}</span>
                <StateBadge state={ds.state} detail={ds.detail} />
              </span>
              <span className="sprite-meta">
                <span>{shortImage(sp.image)}</span>
                {sp.state === 'running' && sp.startedAt && <span title="Uptime">up {formatUptime(sp.startedAt, now)}</span>}
                {usageText(sp) && <span title="CPU time used · disk used">{usageText(sp)}</span>}
                {count > 0 && <span title="Open terminals">{count} {count === 1 ? 'terminal' : 'terminals'}</span>}
              </span>
            </button>
          </li>
        );
      })}
    </ul>
  );
}
