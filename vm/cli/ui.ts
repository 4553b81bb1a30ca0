/** Small pieces of terminal output for the CLI: tables, ages, confirmations, build progress. */
import readline from 'node:readline';
import { SpritelyError } from '../errors.ts';
import type { ApiClient } from '../api/client.ts';
import { DaemonEvent } from '../api/contract.ts';

export { formatAge, formatTable } from '../text-format.ts';

export async function confirm(question: string, expected: string): Promise<boolean> {
  if (!process.stdin.isTTY) return false;
  const rl = readline.createInterface({ input: process.stdin, output: process.stderr });
  const answer = await new Promise<string>((r) => rl.question(question, r));
  rl.close();
  return answer.trim() === expected;
}

/** Runs `fn` while printing the daemon's image-build progress to stderr. */
export async function withProgress<T>(api: ApiClient, show: boolean, fn: () => Promise<T>): Promise<T> {
  if (!show) return fn();
  const ws = api.socket('/v1/events');
  let last = '';
  ws.on('message', (raw) => {
    try {
      const e = DaemonEvent.parse(JSON.parse(raw.toString()));
      if (e.type !== 'image.progress') return;
      const text = `${e.phase}: ${e.message}${e.fraction !== undefined ? ` (${Math.round(e.fraction * 100)}%)` : ''}`;
      if (text === last) return;
      last = text;
      process.stderr.write(`  ${text}\n`);
    } catch {
      /* ignore */
    }
  });
  ws.on('error', () => {});
  await new Promise<void>((r) => {
    ws.once('open', () => r());
    ws.once('error', () => r());
  });
  try {
    return await fn();
  } finally {
    ws.close();
  }
}

/** "90", "90s", "10m", "1h30m", "0" → seconds. */
export function parseDuration(text: string): number {
  const t = text.trim().toLowerCase();
  if (/^\d+$/.test(t)) return Number(t);
  const m = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(t);
  if (!m || !t) throw new SpritelyError('invalid_argument', `"${text}" is not a duration (try 90s, 10m or 1h).`);
  return Number(m[1] ?? 0) * 3600 + Number(m[2] ?? 0) * 60 + Number(m[3] ?? 0);
}

