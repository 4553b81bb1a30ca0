/** The window's arrangement for its current width (window-layout.ts), following resizes. */
import { useMemo, useSyncExternalStore } from 'react';
import { windowLayout, type WindowLayout } from '../window-layout.ts';

const subscribe = (fn: () => void) => {
  window.addEventListener('resize', fn);
  return () => window.removeEventListener('resize', fn);
};
const width = () => window.innerWidth;

export function useWindowLayout(): WindowLayout {
  const w = useSyncExternalStore(subscribe, width, width);
  return useMemo(() => windowLayout(w), [w]);
}
