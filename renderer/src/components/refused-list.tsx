/**
 * What a sprite was last refused, under its network policy: each destination (name, address,
 * port), its protocol, when, how many times, and why in the daemon's words — what `spritely net
 * show NAME` prints, so a person sees at once why something in the sprite could not get out.
 * Read when it appears and on Refresh (the daemon keeps the last 32 while it runs). The text is
 * the guest's, made inert by the daemon and again here (refused-text.ts), and React renders it as
 * text, never markup.
 */
import { useCallback, useEffect, useRef, useState } from 'react';
import type { RefusedDestination } from '../../../vm/api/contract.ts';
import { refusedCount, refusedWhen, refusedWhere, refusedWhy } from '../refused-text.ts';
import { useApp } from './store-context.tsx';

type Loaded = { state: 'loading' } | { state: 'ok'; refused: RefusedDestination[]; at: Date } | { state: 'failed'; message: string };

export function RefusedList({ name }: { name: string }) {
  const transport = useApp((s) => s.transport);
  const [loaded, setLoaded] = useState<Loaded>({ state: 'loading' });
  const [busy, setBusy] = useState(false);
  const latest = useRef(0);

  const load = useCallback(async () => {
    const mine = ++latest.current;
    setBusy(true);
    try {
      const view = await transport.call('sprites.netShow', { name });
      if (mine === latest.current) setLoaded({ state: 'ok', refused: view.refused, at: new Date() });
    } catch (err) {
      if (mine === latest.current) setLoaded({ state: 'failed', message: (err as Error).message });
    } finally {
      if (mine === latest.current) setBusy(false);
    }
  }, [transport, name]);

  useEffect(() => {
    void load();
    return () => void (latest.current = -1); // closed: late answers are dropped
  }, [load]);

  return (
    <section className="refused" aria-label={`Refused destinations of ${name}`} aria-busy={busy}>
      <div className="refused-head">
        <h3>Last refused</h3>
        <button type="button" className="ghost small" onClick={() => void load()} disabled={busy}>
          Refresh
        </button>
      </div>
      {loaded.state === 'loading' && <p className="muted small">Reading…</p>}
      {loaded.state === 'failed' && (
        <p className="field-error" role="alert">
          Could not read what was refused: {loaded.message}
        </p>
      )}
      {loaded.state === 'ok' && loaded.refused.length === 0 && <p className="muted small">Nothing refused yet (the list starts empty when the daemon starts).</p>}
      {loaded.state === 'ok' && loaded.refused.length > 0 && (
        <ul className="refused-list">
          {loaded.refused.map((r, i) => (
            <li key={`${r.at}-${i}`}>
              <div className="refused-where">
                <code>{refusedWhere(r)}</code>
                <span className="muted small">
                  {r.protocol} · <time dateTime={r.at}>{refusedWhen(r.at, loaded.at)}</time>
                  {r.count > 1 && <> · {refusedCount(r)}</>}
                </span>
              </div>
              <div className="refused-why">{refusedWhy(r)}</div>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
