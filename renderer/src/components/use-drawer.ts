/**
 * A drawer's keyboard manners: focus moves into it when it opens (to `first`, else its first
 * control), Escape closes it (unless a dialog inside took the key; a drawer beside a terminal only
 * when focus is in the drawer, so Escape typed into the terminal stays the terminal's), and focus
 * returns to what opened it when it closes.
 */
import { useEffect, useRef, type RefObject } from 'react';

export function useDrawer(ref: RefObject<HTMLElement | null>, onClose: () => void, opts: { first?: string; modal?: boolean } = {}): void {
  const { first, modal = false } = opts;
  const close = useRef(onClose);
  close.current = onClose;
  useEffect(() => {
    const before = document.activeElement as HTMLElement | null;
    const box = ref.current;
    ((first && box?.querySelector<HTMLElement>(first)) || box?.querySelector<HTMLElement>('button, input, [tabindex]:not([tabindex="-1"])'))?.focus();
    const onKey = (e: KeyboardEvent) => {
      if (e.key !== 'Escape' || e.defaultPrevented) return;
      const at = document.activeElement;
      if (modal || !at || at === document.body || box?.contains(at)) close.current();
    };
    window.addEventListener('keydown', onKey);
    return () => {
      window.removeEventListener('keydown', onKey);
      // Only when focus was in the drawer (and so went with it), not when the user moved on.
      const at = document.activeElement;
      if (before?.isConnected && (!at || at === document.body || box?.contains(at))) before.focus();
    };
  }, [ref, first, modal]);
}
