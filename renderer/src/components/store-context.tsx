/** Hands the app store (and the terminal factory) to components; tests pass fakes here. */
import { createContext, useContext } from 'react';
import { useStore } from 'zustand';
import type { AppStore, UiState, Actions } from '../store.ts';
import type { Transport } from '../transport.ts';
import type { TerminalViewFactory, ViewEnv } from '../terminal/xterm-view.ts';

export interface AppContextValue {
  store: AppStore;
  createView: TerminalViewFactory;
  env: ViewEnv;
}

export const AppContext = createContext<AppContextValue | null>(null);

function useAppContext(): AppContextValue {
  const v = useContext(AppContext);
  if (!v) throw new Error('AppContext missing');
  return v;
}

export function useApp<T>(selector: (s: UiState & { actions: Actions; transport: Transport }) => T): T {
  return useStore(useAppContext().store, selector);
}

export function useActions(): Actions {
  return useApp((s) => s.actions);
}

export function useTerminalFactory(): { createView: TerminalViewFactory; env: ViewEnv } {
  const { createView, env } = useAppContext();
  return { createView, env };
}

export function useStoreApi(): AppStore {
  return useAppContext().store;
}
