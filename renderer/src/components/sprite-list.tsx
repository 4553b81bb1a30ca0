/**
 * The sidebar list: every sprite with its state, image and uptime, straight from daemon events —
 * with remote hosts, grouped by machine, each host with its state (a host that is not connected
 * shows its last known sprites as unreachable, and why, and when it tries again).
 */
import { useEffect, useState } from 'react';
import { formatUptime, shortImage } from '../format.ts';
import { hostOfKey, parseSpriteKey } from '../sprite-key.ts';
import { displayState, spriteGroups, unreachableHost } from '../store.ts';
import { formatBytes } from '../format-bytes.ts';
import type { HostStatus, Sprite } from '../transport.ts';
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
  unreachable: 'Unreachable',
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

function SpriteItem({ k, now }: { k: string; now: number }) {
  const sp = useApp((s) => s.sprites[k]);
  const pending = useApp((s) => s.pending[k]);
  const selected = useApp((s) => s.selected === k);
  const count = useApp((s) => s.tabs.filter((t) => t.sprite === k).length);
  const away = useApp((s) => !!unreachableHost(s, k));
  const actions = useActions();
  const ds = away ? { state: 'unreachable', detail: null } : displayState(sp, pending);
  return (
    <li>
      <button className={`sprite-item${selected ? ' selected' : ''}${away ? ' away' : ''}`} aria-current={selected ? 'true' : undefined} onClick={() => actions.select(k)} data-sprite={k} data-state={ds.state}>
        <span className="sprite-row">
          <span className="sprite-name">{parseSpriteKey(k).name}</span>
          <StateBadge state={ds.state} detail={ds.detail} />
        </span>
        <span className="sprite-meta">
          <span>{shortImage(sp.image)}</span>
          {!away && sp.state === 'running' && sp.startedAt && <span title="Uptime">up {formatUptime(sp.startedAt, now)}</span>}
          {usageText(sp) && <span title="CPU time used · disk used">{usageText(sp)}</span>}
          {count > 0 && <span title="Open terminals">{count} {count === 1 ? 'terminal' : 'terminals'}</span>}
        </span>
      </button>
    </li>
  );
}

function Creating({ k }: { k: string }) {
  const selected = useApp((s) => s.selected === k);
  const actions = useActions();
  return (
    <li>
      <button className={`sprite-item${selected ? ' selected' : ''}`} onClick={() => actions.select(k)}>
        <span className="sprite-name">{parseSpriteKey(k).name}</span>
        <StateBadge state="busy" detail="create" />
      </button>
    </li>
  );
}

export function SpriteList() {
  const sprites = useApp((s) => s.sprites);
  const pending = useApp((s) => s.pending);
  const hosts = useApp((s) => s.hosts);
  const loaded = useApp((s) => s.loaded);
  const now = useNow();
  const creating = Object.keys(pending).filter((n) => pending[n] === 'create' && !sprites[n]);

  if (!loaded) return <div className="list-empty">Connecting to the daemon…</div>;
  const groups = spriteGroups({ sprites, hosts });
  if (!hosts.length) {
    const keys = groups[0].keys;
    if (!keys.length && !creating.length) return <div className="list-empty">No sprites yet. Create one above.</div>;
    return (
      <ul className="sprite-list" aria-label="Sprites">
        {creating.map((n) => (
          <Creating key={n} k={n} />
        ))}
        {keys.map((k) => (
          <SpriteItem key={k} k={k} now={now} />
        ))}
      </ul>
    );
  }
  // With remote hosts: one list grouped by machine, each host with its state.
  return (
    <div className="host-groups">
      {groups.map(({ host, keys }) => {
        const mine = creating.filter((k) => hostOfKey(k) === (host?.name ?? null));
        const label = host ? host.name : 'This computer';
        return (
          <section key={host?.name ?? ''} className={`host-group${host && host.state !== 'connected' ? ' away' : ''}`} aria-label={`Sprites on ${label}`} data-host={host?.name ?? 'local'} data-host-state={host?.state ?? 'connected'}>
            {host ? <HostHeader host={host} now={now} /> : <div className="host-header"><span className="host-name">This computer</span></div>}
            {keys.length || mine.length ? (
              <ul className="sprite-list" aria-label={`Sprites on ${label}`}>
                {mine.map((k) => (
                  <Creating key={k} k={k} />
                ))}
                {keys.map((k) => (
                  <SpriteItem key={k} k={k} now={now} />
                ))}
              </ul>
            ) : (
              <div className="list-empty small">{host && host.state !== 'connected' ? 'Not connected.' : 'No sprites yet.'}</div>
            )}
          </section>
        );
      })}
    </div>
  );
}

/** A host's reason as a sentence (ssh's own words may end without a full stop). */
export function asSentence(text: string): string {
  const t = text.trim();
  return /[.!?…]$/.test(t) ? t : `${t}.`;
}

const HOST_STATE_LABEL: Record<HostStatus['state'], string> = { connected: 'Connected', connecting: 'Connecting', unreachable: 'Unreachable' };

/** A host's name, state (and why it is not connected, and when it retries), accelerator, and Remove. */
export function HostHeader({ host, now }: { host: HostStatus; now: number }) {
  const actions = useActions();
  const [confirming, setConfirming] = useState(false);
  const retry = host.retryAt ? Math.max(0, Math.round((Date.parse(host.retryAt) - now) / 1000)) : null;
  return (
    <div className="host-header" data-host-header={host.name}>
      <span className="host-name" title={host.url}>
        {host.name}
      </span>
      <span className={`badge host-${host.state}`} title={host.reason ?? undefined}>
        <span className="dot" aria-hidden />
        {HOST_STATE_LABEL[host.state]}
      </span>
      {host.accel && (
        <span className="host-accel" title={host.accelReason ?? 'Accelerator'}>
          {host.accel.toUpperCase()}
        </span>
      )}
      {confirming ? (
        <span className="host-remove-confirm">
          <button className="ghost small danger" onClick={() => void actions.removeHost(host.name).then(() => setConfirming(false))}>
            Remove {host.name}
          </button>
          <button className="ghost small" onClick={() => setConfirming(false)}>
            Keep
          </button>
        </span>
      ) : (
        <button className="ghost small host-remove" onClick={() => setConfirming(true)} aria-label={`Remove host ${host.name}`} title="Forget this host (its sprites keep running there)">
          ×
        </button>
      )}
      {host.state !== 'connected' && host.reason && (
        <div className="host-reason" role="status">
          {asSentence(host.reason)}
          {retry !== null && host.state === 'unreachable' ? ` Retrying in ${retry} s.` : ''}
        </div>
      )}
    </div>
  );
}
