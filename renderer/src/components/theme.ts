/** Resolves the theme choice (system / light / dark) against the OS preference, live. */
import { useEffect, useState } from 'react';
import type { ThemeChoice } from '../store.ts';

const QUERY = '(prefers-color-scheme: dark)';

function systemDark(): boolean {
  return typeof globalThis.matchMedia === 'function' && globalThis.matchMedia(QUERY).matches;
}

export function resolveTheme(choice: ThemeChoice, prefersDark: boolean): 'light' | 'dark' {
  return choice === 'system' ? (prefersDark ? 'dark' : 'light') : choice;
}

export function nextThemeChoice(choice: ThemeChoice): ThemeChoice {
  return choice === 'system' ? 'light' : choice === 'light' ? 'dark' : 'system';
}

export function useResolvedTheme(choice: ThemeChoice): 'light' | 'dark' {
  const [dark, setDark] = useState(systemDark);
  useEffect(() => {
    if (typeof globalThis.matchMedia !== 'function') return;
    const mq = globalThis.matchMedia(QUERY);
    const on = () => setDark(mq.matches);
    mq.addEventListener?.('change', on);
    return () => mq.removeEventListener?.('change', on);
  }, []);
  return resolveTheme(choice, dark);
}
