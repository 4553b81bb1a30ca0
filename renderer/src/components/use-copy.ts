/** Copy to the clipboard from a button: an info toast when it worked (if asked), the reason when not. */
import { useCallback } from 'react';
import { useActions, useTerminalFactory } from './store-context.tsx';

export function useCopy(): (text: string, done?: string) => Promise<boolean> {
  const { env } = useTerminalFactory();
  const actions = useActions();
  return useCallback(
    async (text, done) => {
      try {
        await env.copyText(text);
        if (done) actions.toast(done, 'info');
        return true;
      } catch (err) {
        actions.toast(`Could not copy to the clipboard (${(err as Error)?.message ?? err}).`);
        return false;
      }
    },
    [env, actions],
  );
}
