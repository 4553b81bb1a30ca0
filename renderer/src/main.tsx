/** Entry point: one transport to the daemon (on this page's origin), one store, one App. */
import '@xterm/xterm/css/xterm.css';
import './styles.css';
import { createRoot } from 'react-dom/client';
import { routes } from 'virtual:spritely-routes';
import { App } from './components/app.tsx';
import { AppContext } from './components/store-context.tsx';
import { desktopBridge, platformEnv } from './platform.ts';
import { activeTabOf, createAppStore } from './store.ts';
import { paneRegistry } from './terminal/pane-registry.ts';
import { createXtermView } from './terminal/xterm-view.ts';
import { WebTransport } from './transport.ts';

const transport = new WebTransport({ routes });
const store = createAppStore({ transport, session: sessionStorage, prefs: localStorage });
const desktop = desktopBridge();

/** Read-only diagnostics (used by the end-to-end tests): the active terminal's text. */
Object.defineProperty(window, '__spritely', {
  value: Object.freeze({
    terminalText: () => {
      const s = store.getState();
      return paneRegistry.get(activeTabOf(s, s.selected)?.id)?.text() ?? '';
    },
    terminalBytes: () => {
      const s = store.getState();
      return paneRegistry.get(activeTabOf(s, s.selected)?.id)?.receivedBytes() ?? 0;
    },
  }),
});

createRoot(document.getElementById('root')!).render(
  <AppContext.Provider value={{ store, createView: createXtermView, env: platformEnv(desktop) }}>
    <App desktop={desktop} />
  </AppContext.Provider>,
);
