/**
 * What changed between two picked nodes of a sprite's timeline: a large panel over the app with
 * the counts, the changed paths as a tree (directories fold open and shut, each with its counts),
 * and the picked file's lines side by side — or "binary, N bytes → M bytes". Everything it shows
 * comes from the sprite's disk: names and lines go through `visible` (control characters as
 * escapes), and React renders them as text.
 */
import { useMemo, useState } from 'react';
import { buildDiffTree, describeEntry, hasLines, sideBySide, treeRows, visible, type DiffEntry, type FileDiff } from '../diff-view.ts';
import { formatBytes } from '../format-bytes.ts';
import { useActions, useApp } from './store-context.tsx';

const MARK = { added: 'A', removed: 'R', modified: 'M' } as const;

function Counts({ c }: { c: { added: number; removed: number; modified: number } }) {
  return (
    <span className="diff-counts">
      {c.added > 0 && <span className="diff-added">+{c.added}</span>}
      {c.removed > 0 && <span className="diff-removed">−{c.removed}</span>}
      {c.modified > 0 && <span className="diff-modified">~{c.modified}</span>}
    </span>
  );
}

function Lines({ patch }: { patch: FileDiff }) {
  if (patch.kind === 'binary') return <p className="muted">Binary, {patch.beforeBytes === null ? 'absent' : `${formatBytes(patch.beforeBytes)}`} → {patch.afterBytes === null ? 'absent' : formatBytes(patch.afterBytes)}</p>;
  if (patch.kind === 'too-large') return <p className="muted">Too large to compare line by line ({patch.beforeBytes === null ? 'absent' : formatBytes(patch.beforeBytes)} → {patch.afterBytes === null ? 'absent' : formatBytes(patch.afterBytes)}).</p>;
  if (!patch.hunks.length) return <p className="muted">The lines are the same.</p>;
  return (
    <table className="diff-lines" aria-label="Lines before and after">
      <colgroup>
        <col className="no" />
        <col />
        <col className="no" />
        <col />
      </colgroup>
      <tbody>
        {sideBySide(patch).map((r, i) =>
          r.kind === 'hunk' ? (
            <tr key={i} className="diff-hunk">
              <td colSpan={4}>{r.header}</td>
            </tr>
          ) : (
            <tr key={i}>
              <td className="diff-no">{r.left?.no ?? ''}</td>
              <td className={`diff-cell ${r.left ? (r.left.op === '-' ? 'del' : '') : 'none'}`}>{r.left ? visible(r.left.text) : ''}</td>
              <td className="diff-no">{r.right?.no ?? ''}</td>
              <td className={`diff-cell ${r.right ? (r.right.op === '+' ? 'ins' : '') : 'none'}`}>{r.right ? visible(r.right.text) : ''}</td>
            </tr>
          ),
        )}
      </tbody>
    </table>
  );
}

function FilePane({ sprite, entry }: { sprite: string; entry: DiffEntry | null }) {
  const file = useApp((s) => s.compare[sprite]?.file ?? null);
  if (!entry) return <p className="muted diff-hint">Pick a file to see what changed in it.</p>;
  const shown = file && file.path === entry.path ? file : null;
  return (
    <div className="diff-file">
      <h3 title={visible(entry.path)}>{visible(entry.path)}</h3>
      <p className="diff-what">{describeEntry(entry)}</p>
      {!hasLines(entry) ? null : !shown || shown.status === 'loading' ? (
        <p className="muted">Loading…</p>
      ) : shown.status === 'error' ? (
        <p className="diff-error">{shown.error}</p>
      ) : shown.entry?.patch ? (
        <Lines patch={shown.entry.patch} />
      ) : (
        <p className="muted">No lines to show.</p>
      )}
    </div>
  );
}

export function CheckpointDiff({ sprite }: { sprite: string }) {
  const c = useApp((s) => s.compare[sprite]);
  const actions = useActions();
  const [collapsed, setCollapsed] = useState<Set<string>>(new Set());
  const [selected, setSelected] = useState<string | null>(null);
  const tree = useMemo(() => (c?.report ? buildDiffTree(c.report.entries) : null), [c?.report]);
  if (!c || c.picked.length < 2) return null;
  const rows = tree ? treeRows(tree, collapsed) : [];
  const entry = c.report?.entries.find((e) => e.path === selected) ?? null;
  const close = () => actions.closeCompare(sprite);
  return (
    <div className="modal-backdrop" onMouseDown={(e) => e.target === e.currentTarget && close()}>
      <section className="diff-panel" role="dialog" aria-modal="true" aria-label={`Changes in ${sprite}`} onKeyDown={(e) => e.key === 'Escape' && close()}>
        <header className="diff-head">
          <h2>
            Changes in {sprite}: <span className="diff-node">{c.from}</span> → <span className="diff-node">{c.to}</span>
          </h2>
          {c.report && (
            <span className="diff-summary">
              {c.report.counts.added} added, {c.report.counts.removed} removed, {c.report.counts.modified} modified{c.report.truncated ? ' (list cut short)' : ''}
            </span>
          )}
          <button className="ghost" onClick={close} aria-label="Close the comparison" autoFocus>
            Close
          </button>
        </header>
        {c.status === 'loading' && <p className="muted diff-hint">Comparing…</p>}
        {c.status === 'error' && <p className="diff-error diff-hint">{c.error}</p>}
        {c.status === 'ready' && c.report && !c.report.entries.length && <p className="muted diff-hint">No differences.</p>}
        {c.status === 'ready' && rows.length > 0 && (
          <div className="diff-body">
            <ul className="diff-tree" role="tree" aria-label="Changed paths">
              {rows.map(({ node, depth }) => {
                const isDir = node.children.length > 0;
                const open = !collapsed.has(node.path);
                return (
                  <li key={node.path} role="treeitem" aria-expanded={isDir ? open : undefined} aria-selected={selected === node.path} style={{ paddingLeft: 8 + depth * 14 }} className={`diff-row${selected === node.path ? ' selected' : ''}`} data-path={node.path}>
                    {isDir ? (
                      <button
                        className="diff-twisty"
                        aria-label={`${open ? 'Fold' : 'Unfold'} ${visible(node.path)}`}
                        onClick={() =>
                          setCollapsed((prev) => {
                            const next = new Set(prev);
                            if (next.has(node.path)) next.delete(node.path);
                            else next.add(node.path);
                            return next;
                          })
                        }
                      >
                        {open ? '▾' : '▸'}
                      </button>
                    ) : (
                      <span className="diff-twisty" />
                    )}
                    <button
                      className="diff-name"
                      disabled={!node.entry}
                      onClick={() => {
                        if (!node.entry) return;
                        setSelected(node.path);
                        if (hasLines(node.entry)) void actions.openCompareFile(sprite, node.path);
                      }}
                      title={node.entry ? describeEntry(node.entry) : undefined}
                    >
                      {node.entry && <span className={`diff-mark ${node.entry.change}`}>{MARK[node.entry.change]}</span>}
                      <span className="diff-label">{visible(node.name)}</span>
                    </button>
                    {isDir && <Counts c={node.counts} />}
                  </li>
                );
              })}
            </ul>
            <FilePane sprite={sprite} entry={entry} />
          </div>
        )}
      </section>
    </div>
  );
}
