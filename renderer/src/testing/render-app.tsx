/** Renders the whole app on a fake daemon at a given window width, for component specs. */
import { render } from '@testing-library/react';
import { App } from '../components/app.tsx';
import { AppContext } from '../components/store-context.tsx';
import { createAppStore } from '../store.ts';
import { fakeEnv } from './fake-env.ts';
import { FakeTransport } from './fake-transport.ts';
import { fakeViews } from './fake-view.ts';
import { setWindowWidth } from './window-width.ts';

export function renderApp(opts: { methods?: string[]; width?: number; copyFails?: string } = {}) {
  const t = new FakeTransport();
  for (const m of opts.methods ?? []) t.methods.add(m);
  let n = 0;
  const store = createAppStore({ transport: t, newId: () => `tab-${++n}` });
  const { factory, views } = fakeViews();
  const { env, copied, opened } = fakeEnv({ copyFails: opts.copyFails });
  setWindowWidth(opts.width ?? 1280);
  render(
    <AppContext.Provider value={{ store, createView: factory, env }}>
      <App />
    </AppContext.Provider>,
  );
  return { t, store, views, copied, opened };
}
