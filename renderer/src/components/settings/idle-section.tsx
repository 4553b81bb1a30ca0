/** When unused sprites sleep, daemon-wide (`spritely config set idle-timeout 10m`), and which sprites have their own. */
import { useEffect, useState } from 'react';
import { spriteNames } from '../../store.ts';
import { durationText, idleWords, parseIdleTimeout } from '../../units.ts';
import { useActions, useApp } from '../store-context.tsx';

export function IdleSection() {
  const config = useApp((s) => s.config);
  const saving = useApp((s) => !!s.working.config);
  const sprites = useApp((s) => s.sprites);
  const actions = useActions();
  const [text, setText] = useState('');
  const [touched, setTouched] = useState(false);
  useEffect(() => {
    if (config && !touched) setText(durationText(config.idleTimeoutSec));
  }, [config, touched]);
  const parsed = parseIdleTimeout(text);
  const problem = touched && !parsed.ok ? parsed.problem : null;
  const own = spriteNames({ sprites } as never).filter((n) => sprites[n].idleTimeoutSec !== null);

  return (
    <section className="settings-section" aria-labelledby="idle-title">
      <h2 id="idle-title">Sleep when idle</h2>
      <p className="muted">An unused sprite sleeps: its RAM goes to disk, it takes no CPU and no memory, and it wakes where it was. Terminals, exec, ssh and its URL count as use.</p>
      {config && (
        <p>
          Sprites sleep <strong>{idleWords(config.idleTimeoutSec)}</strong> without use
          {own.length > 0 ? ', except those with their own setting.' : '.'}
        </p>
      )}
      <form
        className="inline-form"
        onSubmit={async (e) => {
          e.preventDefault();
          setTouched(true);
          if (parsed.ok && (await actions.setIdleTimeout(parsed.value))) setTouched(false);
        }}
      >
        <label className="field inline">
          <span>Idle timeout</span>
          <input value={text} onChange={(e) => (setText(e.target.value), setTouched(true))} aria-invalid={!!problem} spellCheck={false} autoComplete="off" placeholder="e.g. 90s, 10m, 1h" />
        </label>
        <button type="submit" className="primary" disabled={saving || !config}>
          Save
        </button>
        <span className="muted small">90s, 10m, 1h; 0 = never</span>
      </form>
      {problem && <div className="field-error">{problem}</div>}
      {own.length > 0 && (
        <ul className="plain-list">
          {own.map((n) => (
            <li key={n}>
              <strong>{n}</strong> sleeps {idleWords(sprites[n].idleTimeoutSec!)} <span className="muted">(its own setting: change it from its ⋯ menu)</span>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
