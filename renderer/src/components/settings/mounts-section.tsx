/**
 * How many checkpoints a sprite may have mounted inside it at once, read-only under
 * /.spritely/checkpoints/ID (`spritely config set checkpoint-mounts N`): each mount is a small disk
 * hot-plugged into the machine; past the number, the least recently used one is unmounted.
 */
import { useEffect, useState } from 'react';
import { useActions, useApp } from '../store-context.tsx';

export function parseMounts(text: string): { ok: true; value: number } | { ok: false; problem: string } {
  const t = text.trim();
  const n = /^\d+$/.test(t) ? Number(t) : NaN;
  return n >= 1 && n <= 16 ? { ok: true, value: n } : { ok: false, problem: `"${t}" is not a number from 1 to 16.` };
}

export function MountsSection() {
  const config = useApp((s) => s.config);
  const saving = useApp((s) => !!s.working.config);
  const actions = useActions();
  const [text, setText] = useState('');
  const [touched, setTouched] = useState(false);
  useEffect(() => {
    if (config && !touched) setText(String(config.checkpointMounts));
  }, [config, touched]);
  const parsed = parseMounts(text);
  const problem = touched && !parsed.ok ? parsed.problem : null;

  return (
    <section className="settings-section" aria-labelledby="mounts-title">
      <h2 id="mounts-title">Checkpoints inside sprites</h2>
      <p className="muted">
        A sprite can read its checkpoints without restoring them, under <code>/.spritely/checkpoints/ID</code> (mounted on first use, read-only). Past this many at once, the least recently used one is unmounted.
      </p>
      <form
        className="inline-form"
        onSubmit={async (e) => {
          e.preventDefault();
          setTouched(true);
          if (parsed.ok && (await actions.setCheckpointMounts(parsed.value))) setTouched(false);
        }}
      >
        <label className="field inline">
          <span>Mounted at once</span>
          <input value={text} onChange={(e) => (setText(e.target.value), setTouched(true))} aria-invalid={!!problem} spellCheck={false} autoComplete="off" inputMode="numeric" />
        </label>
        <button type="submit" className="primary" disabled={saving || !config}>
          Save
        </button>
        <span className="muted small">1 to 16</span>
      </form>
      {problem && <div className="field-error">{problem}</div>}
    </section>
  );
}
