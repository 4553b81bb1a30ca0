/**
 * The memory limit: how much guest RAM awake sprites may add up to (`spritely config set
 * memory-limit 12G`; `default` = 80% of this computer's RAM), against what the awake sprites use
 * now (live, from the sprites' events). Beside it the warm spare (`spritely config set warm-spare
 * on|off`): a machine per used shape restored ahead of time, which costs its guest RAM while it
 * waits and is given up first when memory is needed.
 */
import { awakeMemory } from '../../settings-state.ts';
import { formatMiB, memoryText, parseMemory } from '../../units.ts';
import { useActions, useApp } from '../store-context.tsx';
import { SettingForm } from './setting-form.tsx';

export function MemorySection() {
  const config = useApp((s) => s.config);
  const saving = useApp((s) => !!s.working.config);
  const sprites = useApp((s) => s.sprites);
  const actions = useActions();
  const awake = awakeMemory(sprites);
  const share = config ? Math.min(1, awake.mib / Math.max(1, config.memoryLimitMiB)) : 0;

  return (
    <section className="settings-section" aria-labelledby="memory-title">
      <h2 id="memory-title">Memory limit</h2>
      <p className="muted">A start, wake or create that would take the awake sprites past this is refused, naming what to put to sleep. Sleeping sprites use no memory.</p>
      {config && (
        <>
          <p>
            Limit <strong>{formatMiB(config.memoryLimitMiB)}</strong>
            {config.memoryLimitDefault ? ' (the default: 80% of this computer’s RAM)' : ` (the default would be ${formatMiB(config.memoryLimitDefaultMiB)})`}
            {' · '}awake now <strong>{formatMiB(awake.mib)}</strong> in {awake.count} {awake.count === 1 ? 'sprite' : 'sprites'}
          </p>
          <div className="meter" role="meter" aria-label="Awake sprites' memory of the limit" aria-valuemin={0} aria-valuemax={config.memoryLimitMiB} aria-valuenow={awake.mib}>
            <div style={{ width: `${Math.round(share * 100)}%` }} className={share > 0.9 ? 'high' : ''} />
          </div>
        </>
      )}
      <SettingForm
        label="Memory limit"
        current={config ? (config.memoryLimitDefault ? 'default' : memoryText(config.memoryLimitMiB)) : null}
        parse={parseMemory}
        save={actions.setMemoryLimit}
        hint="12G, 512M; default (or 0) = 80% of RAM"
        placeholder="e.g. 12G"
      />
      {config && (
        <div className="warm-spare">
          <label className="check">
            <input type="checkbox" checked={config.warmSpare} disabled={saving} onChange={(e) => void actions.setWarmSpare(e.target.checked)} />
            <span>Keep a warm spare</span>
          </label>
          <p className="muted small">
            A machine of each used size restored ahead of time and kept paused, so a create takes about half a second. It holds its memory while it waits and is given up first when a sprite needs the room.
            {' '}
            {config.spares.length === 0
              ? 'None waiting now.'
              : `Waiting now: ${config.spares.map((sp) => `${formatMiB(sp.memoryMiB)}, ${sp.cpus} CPU${sp.cpus === 1 ? '' : 's'} (${sp.state})`).join('; ')}.`}
          </p>
        </div>
      )}
    </section>
  );
}
