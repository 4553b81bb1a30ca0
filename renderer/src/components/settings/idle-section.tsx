/** When unused sprites sleep, daemon-wide (`spritely config set idle-timeout 10m`), and which sprites have their own. */
import { spriteNames } from '../../store.ts';
import { durationText, idleWords, parseIdleTimeout } from '../../units.ts';
import { useActions, useApp } from '../store-context.tsx';
import { SettingForm } from './setting-form.tsx';

export function IdleSection() {
  const config = useApp((s) => s.config);
  const sprites = useApp((s) => s.sprites);
  const actions = useActions();
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
      <SettingForm
        label="Idle timeout"
        current={config ? durationText(config.idleTimeoutSec) : null}
        parse={parseIdleTimeout}
        save={(seconds) => actions.setIdleTimeout(seconds)}
        hint="90s, 10m, 1h; 0 = never"
        placeholder="e.g. 90s, 10m, 1h"
      />
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
