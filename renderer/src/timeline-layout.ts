/**
 * Lays a sprite's checkpoint tree out as a timeline: one row per checkpoint, oldest first (the
 * newest at the end), each in a lane; a child continues its parent's lane when it is the first
 * child, otherwise it opens a branch in the lowest lane free since its parent's row. The live
 * machine ("now") is a pseudo-node after the current checkpoint, so a restore-and-go-on shows as
 * a branch. Pure: the component only draws what this returns.
 */
import type { Checkpoint } from '../../vm/api/contract.ts';

export type { Checkpoint };

export interface TimelineRow {
  /** null for the "now" pseudo-node. */
  checkpoint: Checkpoint | null;
  row: number;
  lane: number;
}

export interface TimelineEdge {
  from: { row: number; lane: number };
  to: { row: number; lane: number };
}

export interface TimelineLayout {
  rows: TimelineRow[];
  edges: TimelineEdge[];
  lanes: number;
}

function order(a: Checkpoint, b: Checkpoint): number {
  const t = Date.parse(a.createdAt) - Date.parse(b.createdAt);
  if (t) return t;
  const na = Number(/\d+/.exec(a.id)?.[0] ?? 0);
  const nb = Number(/\d+/.exec(b.id)?.[0] ?? 0);
  return na - nb || a.id.localeCompare(b.id);
}

export function layoutTimeline(checkpoints: Checkpoint[], opts: { now?: boolean } = {}): TimelineLayout {
  const sorted = [...checkpoints].sort(order);
  const ids = new Set(sorted.map((c) => c.id));
  const current = sorted.find((c) => c.current) ?? null;
  type Node = { checkpoint: Checkpoint | null; parent: string | null; key: string };
  const nodes: Node[] = sorted.map((c) => ({ checkpoint: c, parent: c.parent && ids.has(c.parent) ? c.parent : null, key: c.id }));
  if (opts.now !== false) nodes.push({ checkpoint: null, parent: current?.id ?? null, key: '\0now' });

  const childCount = new Map<string, number>();
  for (const n of nodes) if (n.parent) childCount.set(n.parent, (childCount.get(n.parent) ?? 0) + 1);

  const placed = new Map<string, { row: number; lane: number }>();
  const continued = new Set<string>();
  const busyUntil: number[] = [];
  const rows: TimelineRow[] = [];
  const edges: TimelineEdge[] = [];

  nodes.forEach((n, row) => {
    const parent = n.parent ? placed.get(n.parent) : undefined;
    let lane: number;
    if (parent && !continued.has(n.parent!)) {
      lane = parent.lane;
      continued.add(n.parent!);
    } else {
      const since = parent ? parent.row : row;
      lane = 0;
      while ((busyUntil[lane] ?? -1) >= since) lane++;
    }
    busyUntil[lane] = (childCount.get(n.key) ?? 0) > 0 ? Infinity : row;
    placed.set(n.key, { row, lane });
    rows.push({ checkpoint: n.checkpoint, row, lane });
    if (parent) edges.push({ from: parent, to: { row, lane } });
  });
  // A lane freed by its last child stays reserved only up to that child.
  return { rows, edges, lanes: Math.max(1, ...rows.map((r) => r.lane + 1)) };
}
