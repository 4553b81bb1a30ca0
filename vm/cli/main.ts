/**
 * `spritely`: the command line. Every command is a client of the daemon's API (started in the
 * background when needed); nothing here touches a VM directly. Errors print as one sentence and a
 * non-zero exit; `--json` prints one JSON document for machines.
 *
 * This entry loads only commander and the command declarations (program.ts); each command imports
 * its implementation when it runs, so every command pays only for what it uses.
 */
import { SpritelyError } from '../errors.ts';
import { buildProgram, commandWord } from './program.ts';

async function main(argv: string[]): Promise<void> {
  // `exec --checkpoint` takes an optional value (see agent-checkpoint.ts); without the flag there is nothing to rewrite.
  if (argv.includes('--checkpoint')) argv = (await import('./agent-checkpoint.ts')).bareCheckpointFlag(argv);
  const program = await buildProgram(commandWord(argv));
  await program.parseAsync(argv);
}

main(process.argv).catch(async (err: unknown) => {
  const msg = err instanceof SpritelyError ? err.message : ((err as Error)?.message ?? String(err));
  process.exitCode = err instanceof SpritelyError && err.code === 'invalid_argument' ? 2 : 1;
  // Messages can carry text a guest chose (its program's stderr, a file name): shown inert.
  // Loaded here, on the error path, so start-up loads nothing more.
  const { safeText } = await import('../safe-text.ts');
  process.stderr.write(`spritely: ${safeText(msg, { multiline: true, maxChars: 4000 })}\n`);
});
