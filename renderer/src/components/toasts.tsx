/** Errors from the daemon, in its own words, until the user dismisses them. */
import { useActions, useApp } from './store-context.tsx';

export function Toasts() {
  const toasts = useApp((s) => s.toasts);
  const actions = useActions();
  if (!toasts.length) return null;
  return (
    <div className="toasts" aria-live="assertive">
      {toasts.map((t) => (
        <div key={t.id} className={`toast ${t.kind}`} role={t.kind === 'error' ? 'alert' : 'status'}>
          <span>{t.message}</span>
          <button className="ghost small" aria-label="Dismiss" onClick={() => actions.dismissToast(t.id)}>
            ✕
          </button>
        </div>
      ))}
    </div>
  );
}
