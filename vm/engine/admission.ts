/**
 * Memory admission: a start, wake or create is refused when its guest RAM would take the awake
 * sprites (and the launches already under way) past the memory limit. The decision is a pure
 * function; `Admission` keeps the reservations of launches in flight, so two launches at once
 * cannot both squeeze into the same room.
 */
import { SpritelyError } from '../errors.ts';

export interface AdmissionRequest {
  name: string;
  memoryMiB: number;
  limitMiB: number;
  /** Awake sprites and their guest RAM (the one asking is left out if it is among them). */
  awake: { name: string; memoryMiB: number }[];
  /** Launches admitted and not finished yet. */
  pending: { name: string; memoryMiB: number }[];
}

export type AdmissionDecision =
  | { ok: true }
  | { ok: false; usedMiB: number; sleepFirst: string[]; hint: string };

const RAISE = 'raise the limit (spritely config set memory-limit SIZE)';

export function decideAdmission(req: AdmissionRequest): AdmissionDecision {
  const awake = req.awake.filter((a) => a.name !== req.name);
  const pending = req.pending.filter((p) => p.name !== req.name).reduce((sum, p) => sum + p.memoryMiB, 0);
  const usedMiB = awake.reduce((sum, a) => sum + a.memoryMiB, 0) + pending;
  if (usedMiB + req.memoryMiB <= req.limitMiB) return { ok: true };
  const need = usedMiB + req.memoryMiB - req.limitMiB;
  const sleepFirst: string[] = [];
  let freed = 0;
  for (const a of [...awake].sort((x, y) => y.memoryMiB - x.memoryMiB || (x.name < y.name ? -1 : 1))) {
    if (freed >= need) break;
    sleepFirst.push(a.name);
    freed += a.memoryMiB;
  }
  const hint =
    req.memoryMiB > req.limitMiB ? `it alone needs more than the limit: give it less memory, or ${RAISE}`
    : freed >= need ? `sleep ${sleepFirst.join(', ')} first (spritely sleep NAME), or ${RAISE}`
    : `other launches are under way; try again in a moment, or ${RAISE}`;
  return { ok: false, usedMiB, sleepFirst, hint };
}

/** Reservations of launches under way, and the refusal as a SpritelyError. */
export class Admission {
  private admitting = new Map<string, number>();

  /**
   * Admits `name` or throws `resource_exhausted`, naming what to sleep. The RAM stays reserved
   * until the returned function is called (when the launch has ended, either way).
   */
  reserve(name: string, memoryMiB: number, limitMiB: number, awake: { name: string; memoryMiB: number }[]): () => void {
    const pending = [...this.admitting].map(([n, mib]) => ({ name: n, memoryMiB: mib }));
    const d = decideAdmission({ name, memoryMiB, limitMiB, awake, pending });
    if (!d.ok) {
      throw new SpritelyError(
        'resource_exhausted',
        `Not enough memory for "${name}": it needs ${memoryMiB} MiB and awake sprites already use ${d.usedMiB} MiB of the ${limitMiB} MiB limit; ${d.hint}.`,
        { neededMiB: memoryMiB, usedMiB: d.usedMiB, limitMiB, sleepFirst: d.sleepFirst },
      );
    }
    this.admitting.set(name, memoryMiB);
    return () => this.admitting.delete(name);
  }
}
