/** What every sprite has used, as `spritely usage` prints it: state, time awake, CPU time, disk, last activity. */
import { formatAge } from '../../format.ts';
import { formatBytes } from '../../format-bytes.ts';
import { formatSeconds } from '../../units.ts';
import { useActions, useApp } from '../store-context.tsx';

export function UsageSection() {
  const usage = useApp((s) => s.usage);
  const loading = useApp((s) => !!s.working.usage);
  const actions = useActions();
  const now = Date.now();
  return (
    <section className="settings-section" aria-labelledby="usage-title">
      <div className="section-head">
        <h2 id="usage-title">Usage</h2>
        <button className="ghost small" onClick={() => void actions.loadUsage()} disabled={loading}>
          Refresh
        </button>
      </div>
      {!usage ? (
        <p className="muted">Loading…</p>
      ) : usage.length === 0 ? (
        <p className="muted">No sprites yet.</p>
      ) : (
        <table className="table" aria-label="Usage" aria-busy={loading}>
          <thead>
            <tr>
              <th>Sprite</th>
              <th>State</th>
              <th className="num">Awake</th>
              <th className="num">CPU</th>
              <th className="num">Disk</th>
              <th>Last active</th>
            </tr>
          </thead>
          <tbody>
            {usage.map((u) => (
              <tr key={u.name} data-usage={u.name}>
                <td>
                  <strong>{u.name}</strong>
                </td>
                <td>{u.state}</td>
                <td className="num">{formatSeconds(u.awakeSeconds)}</td>
                <td className="num">{formatSeconds(u.cpuSeconds)}</td>
                <td className="num">{formatBytes(u.diskBytes)}</td>
                <td>{u.lastActiveAt ? formatAge(u.lastActiveAt, now) : '—'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <p className="muted small">Disk: each sprite’s disk overlay, checkpoints and sleep state on this computer.</p>
    </section>
  );
}
