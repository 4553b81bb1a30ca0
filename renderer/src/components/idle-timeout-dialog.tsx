/**
 * When this sprite goes to sleep unused: as the daemon-wide default says, never, or after a time
 * of its own (`90s`, `10m`, `1h`, read like `spritely config set idle-timeout … --sprite NAME`).
 */
import { useState } from 'react';
import { parseSpriteKey, spriteLabel } from '../sprite-key.ts';
import type { Sprite } from '../transport.ts';
import { durationText, idleWords, parseIdleTimeout } from '../units.ts';
import { Dialog } from './dialog.tsx';
import { useActions, useApp } from './store-context.tsx';

type Choice = 'default' | 'never' | 'own';

export function IdleTimeoutDialog({ sprite, onClose }: { sprite: Sprite; onClose(): void }) {
  const name = sprite.name;
  // A remote sprite (its key NAME@HOST) follows its host's default, not this computer's.
  const host = parseSpriteKey(name).host;
  const shown = spriteLabel(name);
  const actions = useActions();
  const localConfig = useApp((s) => s.config);
  const config = host ? null : localConfig;
  const saving = useApp((s) => !!s.working.config);
  const own = sprite.idleTimeoutSec;
  const [choice, setChoice] = useState<Choice>(own === null ? 'default' : own === 0 ? 'never' : 'own');
  const [text, setText] = useState(own ? durationText(own) : '10m');
  const parsed = parseIdleTimeout(text);
  const problem = choice === 'own' && !parsed.ok ? parsed.problem : null;

  const save = async () => {
    if (problem) return;
    const seconds = choice === 'default' ? null : choice === 'never' ? 0 : parsed.ok ? parsed.value : null;
    if (await actions.setIdleTimeout(seconds, name)) onClose();
  };

  return (
    <Dialog title={`When ${shown} sleeps`} onCancel={onClose} onSubmit={() => void save()} initialFocus={`input[value="${choice}"]`}>
      <p>An unused sprite goes to sleep: its RAM is saved to disk, it uses no CPU and no memory, and it wakes where it was when you come back (a terminal, exec, ssh or its URL).</p>
      <fieldset className="choices">
        <legend className="sr-only">Idle timeout of {shown}</legend>
        <label className="choice">
          <input type="radio" name="idle" value="default" checked={choice === 'default'} onChange={() => setChoice('default')} />
          <span>
            <strong>Use the default</strong>
            <span className="muted small">{config ? `Sleeps ${idleWords(config.idleTimeoutSec)} (Settings)` : host ? `The daemon-wide setting of host ${host}` : 'The daemon-wide setting'}</span>
          </span>
        </label>
        <label className="choice">
          <input type="radio" name="idle" value="never" checked={choice === 'never'} onChange={() => setChoice('never')} />
          <span>
            <strong>Never</strong>
            <span className="muted small">Stays awake until you stop it or put it to sleep.</span>
          </span>
        </label>
        <label className="choice">
          <input type="radio" name="idle" value="own" checked={choice === 'own'} onChange={() => setChoice('own')} />
          <span>
            <strong>After</strong>
            <input
              className="duration-input"
              aria-label={`Idle time before ${shown} sleeps`}
              value={text}
              spellCheck={false}
              autoComplete="off"
              aria-invalid={!!problem}
              onFocus={() => setChoice('own')}
              onChange={(e) => setText(e.target.value)}
            />
            <span className="muted small">e.g. 90s, 10m, 1h</span>
          </span>
        </label>
      </fieldset>
      {problem && <div className="field-error">{problem}</div>}
      <div className="modal-buttons">
        <button type="button" className="ghost" onClick={onClose}>
          Cancel
        </button>
        <button type="submit" className="primary" disabled={!!problem || saving}>
          Save
        </button>
      </div>
    </Dialog>
  );
}
