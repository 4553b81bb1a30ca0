/**
 * A sprite's checkpoint timeline: the tree drawn as lanes (branches visible, newest at the end,
 * the live machine marked "now"), auto checkpoints set apart, comments, ages, and what each takes
 * on this computer (its RAM state and its disk snapshot).
 * Clicking a checkpoint restores it after a confirm that says an undo checkpoint is taken first;
 * fork and delete sit on each row; a comment box creates one. "Compare" on two rows (or one and
 * "now") opens what changed between them (checkpoint-diff.tsx).
 */
import { useEffect, useMemo, useState } from 'react';
import { formatAge } from '../format.ts';
import { nameProblem, suggestName } from '../store.ts';
import { formatBytes } from '../format-bytes.ts';
import { layoutTimeline, type Checkpoint } from '../timeline-layout.ts';
import type { Sprite } from '../transport.ts';
import { CheckpointDiff } from './checkpoint-diff.tsx';
import { ConfirmDialog } from './confirm-dialog.tsx';
import { useActions, useApp } from './store-context.tsx';

const ROW_H = 58;
const NONE: string[] = [];
const LANE_W = 16;
const DOT_Y = 21;

type Pending = { kind: 'restore' | 'delete' | 'fork'; cp: Checkpoint } | null;

function useMinuteClock(): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), 30_000);
    return () => clearInterval(t);
  }, []);
  return now;
}

export function Timeline({ sprite }: { sprite: Sprite }) {
  const name = sprite.name;
  const checkpoints = useApp((s) => s.checkpoints[name]);
  const busy = useApp((s) => !!s.pending[name]) || !!sprite.operation;
  const sprites = useApp((s) => s.sprites);
  const transport = useApp((s) => s.transport);
  const actions = useActions();
  const [comment, setComment] = useState('');
  const [ask, setAsk] = useState<Pending>(null);
  const now = useMinuteClock();

  useEffect(() => {
    if (!checkpoints) void actions.loadCheckpoints(name);
  }, [name, checkpoints, actions]);

  const layout = useMemo(() => layoutTimeline(checkpoints ?? []), [checkpoints]);
  const gutter = layout.lanes * LANE_W + 8;
  const x = (lane: number) => 8 + lane * LANE_W;
  const y = (row: number) => row * ROW_H + DOT_Y;
  const canDelete = transport.has('checkpoints.delete');
  const canFork = transport.has('sprites.fork');
  const canCompare = transport.has('checkpoints.diff');
  const picked = useApp((s) => s.compare[name]?.picked ?? NONE);
  const compareButton = (key: string) =>
    canCompare && (
      <button className={`ghost small${picked.includes(key) ? ' pressed' : ''}`} aria-pressed={picked.includes(key)} onClick={() => void actions.pickCompare(name, key)} aria-label={`Compare ${key}`} title="Pick two (or one and now) to see what changed between them">
        Compare
      </button>
    );

  return (
    <div className="timeline">
      <form
        className="checkpoint-form"
        onSubmit={async (e) => {
          e.preventDefault();
          if (await actions.createCheckpoint(name, comment)) setComment('');
        }}
      >
        <input aria-label="Checkpoint comment" placeholder="Comment (optional)" value={comment} onChange={(e) => setComment(e.target.value)} maxLength={10_000} />
        <button type="submit" className="primary" disabled={busy}>
          Checkpoint
        </button>
      </form>
      {picked.length === 1 && (
        <p className="compare-hint">
          <span>
            Comparing from <b>{picked[0]}</b>: pick another checkpoint or now.
          </span>
          <button className="ghost small" onClick={() => actions.closeCompare(name)}>
            Cancel
          </button>
        </p>
      )}
      {!checkpoints ? (
        <p className="muted">Loading…</p>
      ) : (
        <div className="tl" style={{ height: layout.rows.length * ROW_H }} aria-label={`Checkpoints of ${name}`} role="list">
          <svg className="tl-graph" width={gutter} height={layout.rows.length * ROW_H} aria-hidden>
            {layout.edges.map((e, i) => (
              <path
                key={i}
                d={e.from.lane === e.to.lane ? `M${x(e.from.lane)},${y(e.from.row)} V${y(e.to.row)}` : `M${x(e.from.lane)},${y(e.from.row)} Q${x(e.to.lane)},${y(e.from.row)} ${x(e.to.lane)},${y(e.from.row) + ROW_H / 2} V${y(e.to.row)}`}
                className={e.to.row === layout.rows.length - 1 && !layout.rows[e.to.row].checkpoint ? 'tl-edge now' : 'tl-edge'}
              />
            ))}
            {layout.rows.map((r) => (
              <circle key={r.row} cx={x(r.lane)} cy={y(r.row)} r={r.checkpoint ? 5 : 4.5} className={!r.checkpoint ? 'tl-dot now' : r.checkpoint.auto ? 'tl-dot auto' : r.checkpoint.current ? 'tl-dot current' : 'tl-dot'} />
            ))}
          </svg>
          {layout.rows.map((r) =>
            r.checkpoint ? (
              <div key={r.checkpoint.id} role="listitem" className={`tl-row${r.checkpoint.auto ? ' auto' : ''}${r.checkpoint.current ? ' current' : ''}${picked.includes(r.checkpoint.id) ? ' picked' : ''}`} style={{ top: r.row * ROW_H, left: gutter, height: ROW_H }} data-checkpoint={r.checkpoint.id}>
                <button className="tl-main" disabled={busy} onClick={() => setAsk({ kind: 'restore', cp: r.checkpoint! })} title={`Restore ${r.checkpoint.id}`}>
                  <span className="tl-title">
                    <span className="tl-id">{r.checkpoint.id}</span>
                    <span className="tl-comment">{r.checkpoint.comment || (r.checkpoint.auto ? 'automatic' : 'no comment')}</span>
                  </span>
                  <span className="tl-meta">
                    {r.checkpoint.auto && <span className="pill">auto</span>}
                    <span className="tl-size" title={`${formatBytes(r.checkpoint.bytes)} in all${r.checkpoint.compressed ? ' (RAM compressed)' : ''}${typeof r.checkpoint.freeBytes === 'number' ? `; deleting it frees ${formatBytes(r.checkpoint.freeBytes)}` : ''}; guest paused ${r.checkpoint.pauseMs} ms`}>
                      {r.checkpoint.memory ? `RAM ${formatBytes(r.checkpoint.ramBytes)} + disk ${formatBytes(r.checkpoint.diskBytes)}` : `disk only, ${formatBytes(r.checkpoint.diskBytes)}`}
                    </span>
                    {r.checkpoint.mounted && <span className="pill" title={`Mounted inside the sprite at /.spritely/checkpoints/${r.checkpoint.id}`}>mounted</span>}
                    <span>{formatAge(r.checkpoint.createdAt, now)}</span>
                  </span>
                </button>
                <span className="tl-actions">
                  {compareButton(r.checkpoint.id)}
                  {canFork && (
                    <button className="ghost small" disabled={busy} onClick={() => setAsk({ kind: 'fork', cp: r.checkpoint! })} aria-label={`Fork ${r.checkpoint.id}`} title="New sprite from this checkpoint">
                      Fork
                    </button>
                  )}
                  {canDelete && (
                    <button className="ghost small" disabled={busy} onClick={() => setAsk({ kind: 'delete', cp: r.checkpoint! })} aria-label={`Delete ${r.checkpoint.id}`} title="Delete this checkpoint">
                      Delete
                    </button>
                  )}
                </span>
              </div>
            ) : (
              <div key="now" role="listitem" className={`tl-row now${picked.includes('now') ? ' picked' : ''}`} style={{ top: r.row * ROW_H, left: gutter, height: ROW_H }}>
                <span className="tl-title">
                  <span className="tl-id">now</span>
                  <span className="tl-comment">{sprite.state === 'running' ? 'the running machine' : `the machine (${sprite.state})`}</span>
                </span>
                {checkpoints.length > 0 && <span className="tl-actions">{compareButton('now')}</span>}
              </div>
            ),
          )}
        </div>
      )}
      <CheckpointDiff sprite={name} />
      {ask?.kind === 'restore' && (
        <ConfirmDialog
          title={`Restore ${name} to ${ask.cp.id}?`}
          confirmLabel="Restore"
          onCancel={() => setAsk(null)}
          onConfirm={() => {
            setAsk(null);
            void actions.restoreCheckpoint(name, ask.cp.id);
          }}
        >
          The machine goes back to {ask.cp.comment ? `“${ask.cp.comment}”` : ask.cp.id} ({formatAge(ask.cp.createdAt, now)}
          {ask.cp.memory ? ', running programs included' : '; it boots from that disk'}). Its current state is saved first as an automatic checkpoint, so you can undo this. Open terminals reconnect to the restored machine.
        </ConfirmDialog>
      )}
      {ask?.kind === 'delete' && (
        <ConfirmDialog
          title={`Delete checkpoint ${ask.cp.id}?`}
          confirmLabel="Delete"
          tone="danger"
          onCancel={() => setAsk(null)}
          onConfirm={() => {
            setAsk(null);
            void actions.deleteCheckpoint(name, ask.cp.id);
          }}
        >
          {ask.cp.comment ? `“${ask.cp.comment}” ` : ''}is removed for good; checkpoints made after it stay (they attach to its parent).
          {typeof ask.cp.freeBytes === 'number' ? ` It frees ${formatBytes(ask.cp.freeBytes)} on this computer.` : ''}
        </ConfirmDialog>
      )}
      {ask?.kind === 'fork' && (
        <ConfirmDialog
          title={`New sprite from ${name} ${ask.cp.id}`}
          confirmLabel="Fork"
          input={{ label: 'Name of the new sprite', initial: suggestName(Object.keys(sprites)), valid: (v) => nameProblem(v) ?? (sprites[v] ? `“${v}” already exists.` : null) }}
          onCancel={() => setAsk(null)}
          onConfirm={(newName) => {
            setAsk(null);
            void actions.forkSprite(name, ask.cp.id, newName);
          }}
        >
          A new, independent machine starts from this checkpoint, with its own name and identity.
        </ConfirmDialog>
      )}
    </div>
  );
}
