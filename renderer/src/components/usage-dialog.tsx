/**
 * What a sprite has used, as `spritely usage` says it: time awake, CPU time, disk on this
 * computer (its disk overlay, checkpoints and sleep state), and each checkpoint's RAM and disk.
 */
import { useEffect } from 'react';
import { formatAge } from '../format.ts';
import { formatBytes } from '../format-bytes.ts';
import type { Sprite } from '../transport.ts';
import { formatSeconds } from '../units.ts';
import { Dialog } from './dialog.tsx';
import { useActions, useApp } from './store-context.tsx';

export function UsageDialog({ sprite, onClose }: { sprite: Sprite; onClose(): void }) {
  const name = sprite.name;
  const actions = useActions();
  const transport = useApp((s) => s.transport);
  const row = useApp((s) => s.usage?.find((u) => u.name === name));
  const loading = useApp((s) => !!s.working.usage);
  const checkpoints = useApp((s) => s.checkpoints[name]);
  const canCheckpoints = transport.has('checkpoints.list');
  const usage = row ?? sprite.usage;

  useEffect(() => {
    void actions.loadUsage();
    if (canCheckpoints) void actions.loadCheckpoints(name);
  }, [actions, name, canCheckpoints]);

  const totals = (checkpoints ?? []).reduce((t, c) => ({ ram: t.ram + c.ramBytes, disk: t.disk + c.diskBytes }), { ram: 0, disk: 0 });
  return (
    <Dialog title={`Usage of ${name}`} onCancel={onClose} className="wide usage-dialog">
      <dl className="usage-facts" aria-busy={loading}>
        <div>
          <dt>Awake</dt>
          <dd>{formatSeconds(usage.awakeSeconds)}</dd>
        </div>
        <div>
          <dt>CPU time</dt>
          <dd>{formatSeconds(usage.cpuSeconds)}</dd>
        </div>
        <div>
          <dt>Disk</dt>
          <dd title="Its disk overlay, checkpoints and sleep state, as allocated on this computer">{formatBytes(usage.diskBytes)}</dd>
        </div>
        <div>
          <dt>Last active</dt>
          <dd>{usage.lastActiveAt ? formatAge(usage.lastActiveAt, Date.now()) : '—'}</dd>
        </div>
      </dl>
      <p className="muted small">Disk counts its disk overlay, its checkpoints and its sleep state on this computer.</p>
      {canCheckpoints && checkpoints && checkpoints.length > 0 && (
        <table className="table" aria-label={`Checkpoints of ${name}`}>
          <thead>
            <tr>
              <th>Checkpoint</th>
              <th className="num">RAM</th>
              <th className="num">Disk</th>
            </tr>
          </thead>
          <tbody>
            {checkpoints.map((c) => (
              <tr key={c.id}>
                <td>
                  <strong>{c.id}</strong> <span className="muted">{c.comment || (c.auto ? 'automatic' : '')}</span>
                </td>
                <td className="num">{c.memory ? formatBytes(c.ramBytes) : '—'}</td>
                <td className="num">{formatBytes(c.diskBytes)}</td>
              </tr>
            ))}
          </tbody>
          <tfoot>
            <tr>
              <td>{checkpoints.length === 1 ? '1 checkpoint' : `${checkpoints.length} checkpoints`}</td>
              <td className="num">{formatBytes(totals.ram)}</td>
              <td className="num">{formatBytes(totals.disk)}</td>
            </tr>
          </tfoot>
        </table>
      )}
      <div className="modal-buttons">
        <button type="button" className="ghost" onClick={() => void actions.loadUsage()} disabled={loading}>
          Refresh
        </button>
        <button type="button" className="primary" onClick={onClose}>
          Close
        </button>
      </div>
    </Dialog>
  );
}
