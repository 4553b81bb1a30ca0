/**
 * Sprite names are DNS labels: they become hostnames in the guest and parts of URLs
 * (`NAME.localhost`, `NAME-suffix.relay`), so anything else is refused up front.
 */
import { SpritelyError } from './errors.ts';
import { safeText } from './safe-text.ts';

export const SPRITE_NAME_PATTERN = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** Returns null when the name is fine, else a sentence saying what is wrong with it. */
export function spriteNameProblem(name: unknown): string | null {
  if (typeof name !== 'string') return 'a sprite name must be a string';
  if (name.length === 0) return 'a sprite name cannot be empty';
  if (name.length > 63) return `"${name.slice(0, 20)}…" is ${name.length} characters; a sprite name has at most 63`;
  if (/[A-Z]/.test(name)) return `"${name}" has capital letters; use lowercase a-z, digits and "-"`;
  if (name.startsWith('-') || name.endsWith('-')) return `"${name}" starts or ends with "-"`;
  if (!SPRITE_NAME_PATTERN.test(name)) {
    const bad = [...name].find((c) => !/[a-z0-9-]/.test(c)) ?? '?';
    return `"${safeText(name, { maxChars: 80 })}" contains ${JSON.stringify(bad)}; a sprite name uses only a-z, 0-9 and "-"`;
  }
  return null;
}

export function assertSpriteName(name: unknown): asserts name is string {
  const problem = spriteNameProblem(name);
  if (problem) throw new SpritelyError('invalid_argument', `Invalid sprite name: ${problem}.`);
}

