/**
 * How many checkpoints a sprite may have mounted inside it at once, read-only under
 * /.spritely/checkpoints/ID (`spritely config set checkpoint-mounts N`): each mount is a small disk
 * hot-plugged into the machine; past the number, the least recently used one is unmounted.
 */
import type { Parsed } from '../../units.ts';
import { useActions, useApp } from '../store-context.tsx';
import { SettingForm } from './setting-form.tsx';

export function parseMounts(text: string): Parsed {
  const t = text.trim();
  const n = /^\d+$/.test(t) ? Number(t) : NaN;
  return n >= 1 && n <= 16 ? { ok: true, value: n } : { ok: false, problem: `"${t}" is not a number from 1 to 16.` };
}

export function MountsSection() {
  const config = useApp((s) => s.config);
  const actions = useActions();

  return (
    <section className="settings-section" aria-labelledby="mounts-title">
      <h2 id="mounts-title">Checkpoints inside sprites</h2>
      <p className="muted">
        A sprite can read its checkpoints without restoring them, under <code>/.spritely/checkpoints/ID</code> (read-only, once mounted with <code>spritely checkpoint mount</code> or, inside, <code>spritely-env checkpoint mount</code>). Past this many at once, the least recently used one is unmounted.
      </p>
      <SettingForm label="Mounted at once" current={config ? String(config.checkpointMounts) : null} parse={parseMounts} save={actions.setCheckpointMounts} hint="1 to 16" inputMode="numeric" />
    </section>
  );
}
