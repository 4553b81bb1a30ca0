/** The platform for component tests: records what was copied and opened. */
import type { ViewEnv } from '../terminal/xterm-view.ts';

export function fakeEnv(opts: { copyFails?: string } = {}): { env: ViewEnv; copied: string[]; opened: string[] } {
  const copied: string[] = [];
  const opened: string[] = [];
  const env: ViewEnv = {
    openLink: (u) => void opened.push(u),
    copyText: async (t) => {
      if (opts.copyFails) throw new Error(opts.copyFails);
      copied.push(t);
    },
    readText: async () => '',
  };
  return { env, copied, opened };
}
