/** Validates what a client sent with the contract's schema; a failure is a 400 that names the fields. */
import type { z } from 'zod';
import { SpritelyError } from '../errors.ts';

export function parseInput<T extends z.ZodType>(schema: T, value: unknown): z.infer<T> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const msg = r.error.issues
    .slice(0, 5)
    .map((i) => `${i.path.length ? i.path.join('.') : 'body'}: ${i.message}`)
    .join('; ');
  throw new SpritelyError('invalid_argument', `Invalid request: ${msg}.`);
}
