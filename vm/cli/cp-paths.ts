/**
 * What a path of a copy is — a directory, something else, or nothing — here (lstat/stat) and in a
 * sprite (one `sh` in the guest, whose answer is checked like any other guest output).
 */
import fs from 'node:fs';
import type { ApiClient } from '../api/client.ts';
import { SpritelyError } from '../errors.ts';
import { safeText } from '../safe-text.ts';
import type { PathKind } from './cp-plan.ts';

const KIND_SCRIPT = `while [ $# -gt 1 ]; do
  if [ "$1" = l ] && [ -L "$2" ]; then echo file
  elif [ -d "$2" ]; then echo dir
  elif [ -e "$2" ] || [ -L "$2" ]; then echo file
  else echo none; fi
  shift 2
done`;

/** Kinds of paths in a sprite (one exec; wakes it). `follow: false` reports a symlink as a file. */
export async function guestKinds(api: ApiClient, sprite: string, paths: { path: string; follow: boolean }[]): Promise<PathKind[]> {
  const args = paths.flatMap((p) => [p.follow ? 'f' : 'l', p.path]);
  const r = await api.call('sprites.exec', { name: sprite, argv: ['sh', '-c', KIND_SCRIPT, 'sh', ...args], timeoutMs: 120_000 }, { timeoutMs: 180_000 });
  const kinds = r.stdout.trim().split('\n');
  // The answer comes from the guest: anything but the three words is an error, not a kind.
  if (r.exitCode !== 0 || kinds.length !== paths.length || !kinds.every((k) => k === 'dir' || k === 'file' || k === 'none')) {
    throw new SpritelyError('internal', `Could not look at the paths in ${sprite}: ${safeText(r.stderr.trim(), { multiline: true, maxChars: 2000 }) || `exit ${r.exitCode}`}`);
  }
  return kinds as PathKind[];
}

export function hostKind(p: string, follow: boolean): PathKind {
  try {
    const st = follow ? fs.statSync(p) : fs.lstatSync(p);
    return st.isDirectory() ? 'dir' : 'file';
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') {
      if (follow) {
        try {
          fs.lstatSync(p);
          return 'file'; // a dangling symlink still names something
        } catch {
          return 'none';
        }
      }
      return 'none';
    }
    throw err;
  }
}
