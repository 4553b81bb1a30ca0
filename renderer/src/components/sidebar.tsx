/**
 * The sidebar: the daemon connection, create, the sprite list (grouped by host) with "Add a host…", and at its foot the theme, the
 * shortcuts and the settings page. Docked in a wide window; in a narrow one the rail
 * (sidebar-rail.tsx) stands in and this opens as a drawer over the window.
 */
import { forwardRef, useState } from 'react';
import { SHORTCUT_HELP } from '../shortcuts.ts';
import { AddHost } from './add-host.tsx';
import { CreateSprite, type CreateSpriteHandle } from './create-sprite.tsx';
import { SpriteList } from './sprite-list.tsx';
import { useActions, useApp } from './store-context.tsx';
import { nextThemeChoice } from './theme.ts';

const THEME_LABEL = { system: 'Theme: system', light: 'Theme: light', dark: 'Theme: dark' } as const;

export const Sidebar = forwardRef<CreateSpriteHandle, { drawer?: boolean }>(function Sidebar({ drawer = false }, createRef) {
  const actions = useActions();
  const connection = useApp((s) => s.connection);
  const connectionDetail = useApp((s) => s.connectionDetail);
  const themeChoice = useApp((s) => s.theme);
  const view = useApp((s) => s.view);
  const hasSettings = useApp((s) => s.transport.has('config.get'));
  const hasHosts = useApp((s) => s.transport.has('hosts.add'));
  const [help, setHelp] = useState(false);
  return (
    <aside className={`sidebar${drawer ? ' drawer' : ''}`} aria-label="Sprites and settings">
      <div className="brand">
        <span className="logo" aria-hidden>
          ◆
        </span>
        <span>Spritely</span>
        <span className={`conn conn-${connection}`} title={connectionDetail ?? (connection === 'online' ? 'Connected to the daemon' : 'Connecting…')} aria-label={`Daemon ${connection}`} />
        {drawer && (
          <button className="ghost small drawer-close" aria-label="Close the sprite list" onClick={actions.closeDrawer}>
            ✕
          </button>
        )}
      </div>
      <CreateSprite ref={createRef} />
      <div className="list-scroll">
        <SpriteList />
        {hasHosts && <AddHost />}
      </div>
      <div className="sidebar-foot">
        {hasSettings && (
          <button className={`ghost small${view === 'settings' ? ' pressed' : ''}`} aria-pressed={view === 'settings'} onClick={() => (view === 'settings' ? actions.closeSettings() : actions.openSettings())}>
            <span aria-hidden>⚙</span> Settings
          </button>
        )}
        <button className="ghost small" onClick={() => actions.setTheme(nextThemeChoice(themeChoice))} title="Switch theme">
          {THEME_LABEL[themeChoice]}
        </button>
        <button className="ghost small" onClick={() => setHelp((h) => !h)} aria-expanded={help}>
          Shortcuts
        </button>
        {help && (
          <dl className="shortcuts">
            {SHORTCUT_HELP.map(([k, what]) => (
              <div key={k}>
                <dt>
                  <kbd>{k}</kbd>
                </dt>
                <dd>{what}</dd>
              </div>
            ))}
          </dl>
        )}
      </div>
    </aside>
  );
});
