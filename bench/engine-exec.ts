/** For benches that run the engine in-process: a shell script in a sprite, its output dropped; throws unless it exits 0. */
import type { Engine } from '../vm/engine/engine.ts';

export async function execScript(engine: Engine, name: string, script: string): Promise<void> {
  const ch = await (await engine.agent(name)).exec({ argv: ['sh', '-c', script] });
  ch.resume();
  ch.stderr.resume();
  ch.end(Buffer.alloc(0));
  const code = (await ch.done).code;
  if (code !== 0) throw new Error(`${script} exited ${code}`);
}
