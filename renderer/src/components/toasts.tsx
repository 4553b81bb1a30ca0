/** Errors from the daemon, in its own words, until the user dismisses them; notes go by themselves. */
import { useEffect } from 'react';
import { useActions, useApp } from './store-context.tsx';

/** How long an info toast ("copied", "applied") stays. */
export const INFO_TOAST_MS = 8000;

export function Toasts() {
  const toasts = useApp((s) => s.toasts);
  const actions = useActions();
  useEffect(() => {
    const timers = toasts.filter((t) => t.kind === 'info').map((t) => setTimeout(() => actions.dismissToast(t.id), INFO_TOAST_MS));
    return () => timers.forEach(clearTimeout);
  }, [toasts, actions]);
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
