/** `exec` and `console`: the streaming commands (their wire work is in streams.ts). */
import { SpritelyError } from '../errors.ts';
import { client, nameArg } from './command-kit.ts';
import { runConsole, runExec } from './streams.ts';

export async function exec(name: string, command: string[], opts: { tty?: boolean; workdir?: string; env?: string[]; checkpoint?: string | boolean }): Promise<void> {
  nameArg(name);
  const env: Record<string, string> = {};
  for (const kv of opts.env ?? []) {
    const at = kv.indexOf('=');
    if (at < 1) throw new SpritelyError('invalid_argument', `--env takes KEY=VALUE (got ${JSON.stringify(kv)})`);
    env[kv.slice(0, at)] = kv.slice(at + 1);
  }
  if (opts.checkpoint !== undefined) {
    const { checkpointBefore } = await import('./agent-checkpoint.ts');
    await checkpointBefore(await client(), name, command, opts.checkpoint);
  }
  process.exitCode = await runExec(await client(), name, command, { tty: !!opts.tty, cwd: opts.workdir, env });
}

export async function openConsole(name: string): Promise<void> {
  nameArg(name);
  process.exitCode = await runConsole(await client(), name);
}
