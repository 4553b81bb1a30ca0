/**
 * The checkpoint timeline of one sprite as pure data: a tree of checkpoints (ids v1, v2, … never
 * reused) plus `head`, the checkpoint the current machine state descends from. Creating after a
 * restore makes a branch; deleting re-parents the children. Every decision here is a pure
 * function, exhaustively tested; checkpoint-store.ts persists it and the engine does the I/O.
 */
export interface Checkpoint {
  id: string;
  parent: string | null;
  comment: string;
  createdAt: string;
  auto: boolean;
  /** True while a RAM + device state file exists for it (restore resumes that exact moment). */
  memory: boolean;
  /** Size of the RAM state file. */
  ramBytes: number;
  /** Disk growth since the previous checkpoint, as an estimate of what this one keeps alive. */
  diskBytes: number;
  /** How long the guest was paused to take it (0 for a stopped sprite). */
  pauseMs: number;
  /** Set when the guest asked for it through spritely-env: the request to answer again after a restore. */
  envRequest?: string;
  /** Made from inside (a spritely-env create, or the undo checkpoint of a restore the guest asked for): counted against the guest's limit. */
  byGuest?: boolean;
  /** The device signature its RAM state needs (absent in checkpoints from before it was recorded). */
  signature?: string;
  /** Snapshot views the machine had attached when its RAM state was saved (the restore re-creates their devices). */
  attached?: string[];
}

export interface Timeline {
  version: 1;
  nextNumber: number;
  head: string | null;
  checkpoints: Checkpoint[];
}

export const EMPTY_TIMELINE: Timeline = { version: 1, nextNumber: 1, head: null, checkpoints: [] };

export const MAX_COMMENT = 1000;

/** Comments are one line of printable text: control characters become spaces, length is capped. */
export function cleanComment(raw: string | undefined): string {
  const s = (raw ?? '').replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]+/g, ' ').trim();
  return s.length > MAX_COMMENT ? s.slice(0, MAX_COMMENT - 1) + '…' : s;
}

export function nextId(t: Timeline): string {
  return `v${t.nextNumber}`;
}

export function find(t: Timeline, id: string): Checkpoint | undefined {
  return t.checkpoints.find((c) => c.id === id);
}

/** Adds a checkpoint as a child of the current head and makes it the head. */
export function addCheckpoint(t: Timeline, c: Omit<Checkpoint, 'id' | 'parent'>): { timeline: Timeline; checkpoint: Checkpoint } {
  const checkpoint: Checkpoint = { ...c, id: nextId(t), parent: t.head };
  return { checkpoint, timeline: { ...t, nextNumber: t.nextNumber + 1, head: checkpoint.id, checkpoints: [...t.checkpoints, checkpoint] } };
}

/** After restoring `id`, the machine descends from it. */
export function moveHead(t: Timeline, id: string): Timeline {
  if (!find(t, id)) throw new Error(`no checkpoint ${id}`);
  return { ...t, head: id };
}

/** Removes `id`; its children take its parent; a head on it moves to its parent. */
export function removeCheckpoint(t: Timeline, id: string): Timeline {
  const gone = find(t, id);
  if (!gone) throw new Error(`no checkpoint ${id}`);
  return {
    ...t,
    head: t.head === id ? gone.parent : t.head,
    checkpoints: t.checkpoints.filter((c) => c.id !== id).map((c) => (c.parent === id ? { ...c, parent: gone.parent } : c)),
  };
}

/**
 * Which checkpoints should lose their RAM state under "keep RAM for the newest `keep`": the older
 * ones that still have it. Their disk state stays restorable (with a boot).
 */
export function ramToPrune(t: Timeline, keep: number): string[] {
  const withRam = t.checkpoints.filter((c) => c.memory).sort((a, b) => numberOf(b.id) - numberOf(a.id));
  return withRam.slice(Math.max(0, keep)).map((c) => c.id);
}

/**
 * Which RAM states to store compressed: all but the newest `keepRaw` (restoring a compressed state
 * costs its decompression, ~0.2 s per 200 MiB here; the newest are the likely ones to restore).
 */
export function ramToCompress(t: Timeline, keepRaw: number): string[] {
  const withRam = t.checkpoints.filter((c) => c.memory).sort((a, b) => numberOf(b.id) - numberOf(a.id));
  return withRam.slice(Math.max(0, keepRaw)).map((c) => c.id);
}

export function markRamGone(t: Timeline, ids: string[]): Timeline {
  const set = new Set(ids);
  return { ...t, checkpoints: t.checkpoints.map((c) => (set.has(c.id) ? { ...c, memory: false, ramBytes: 0 } : c)) };
}

/** Drops entries whose disk snapshot is missing from the qcow2 (the qcow2 is the truth). */
export function reconcileWithDisk(t: Timeline, diskSnapshots: Set<string>): { timeline: Timeline; dropped: string[]; orphans: string[] } {
  const dropped = t.checkpoints.filter((c) => !diskSnapshots.has(c.id)).map((c) => c.id);
  let next = t;
  for (const id of dropped) next = removeCheckpoint(next, id);
  const known = new Set(t.checkpoints.map((c) => c.id));
  const orphans = [...diskSnapshots].filter((s) => /^v\d+$/.test(s) && !known.has(s));
  return { timeline: next, dropped, orphans };
}

export function numberOf(id: string): number {
  return Number(id.slice(1));
}

export const CHECKPOINT_ID = /^v[1-9][0-9]{0,8}$/;
