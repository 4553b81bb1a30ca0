/**
 * The sidebar folded to a rail in a narrow window: the sprite list (a drawer), new sprite, one
 * button per sprite (its initials, its state as a dot; the full name as its label) and settings.
 * It keeps the terminal wide instead of squeezing it. With remote hosts the buttons follow the
 * list's grouping (this computer first, then each host), a remote sprite's label names its host,
 * and a sprite whose host is not connected shows as unreachable.
 */
import { parseSpriteKey } from '../sprite-key.ts';
import { displayState, spriteGroups, SPRITES_DRAWER, unreachableHost } from '../store.ts';
import { STATE_LABEL } from './sprite-list.tsx';
import { useActions, useApp } from './store-context.tsx';

/** "calm-otter" → "co", "web" → "we". */
export function initials(name: string): string {
  const parts = name.split('-').filter(Boolean);
  return (parts.length > 1 ? parts[0][0] + parts[1][0] : name.slice(0, 2)).toUpperCase();
}

export function SidebarRail({ onNewSprite }: { onNewSprite(): void }) {
  const actions = useActions();
  const sprites = useApp((s) => s.sprites);
  const pending = useApp((s) => s.pending);
  const hosts = useApp((s) => s.hosts);
  const selected = useApp((s) => s.selected);
  const drawer = useApp((s) => s.drawer);
  const view = useApp((s) => s.view);
  const connection = useApp((s) => s.connection);
  const hasSettings = useApp((s) => s.transport.has('config.get'));
  const names = spriteGroups({ sprites, hosts }).flatMap((g) => g.keys);
  return (
    <nav className="rail" aria-label="Sprites">
      <button className={`rail-button${drawer === SPRITES_DRAWER ? ' pressed' : ''}`} aria-label="Show the sprite list" aria-expanded={drawer === SPRITES_DRAWER} title="Sprites" onClick={() => actions.toggleDrawer(SPRITES_DRAWER)}>
        ☰<span className={`conn conn-${connection}`} aria-hidden />
      </button>
      <button className="rail-button" aria-label="New sprite" title="New sprite (Alt+Shift+N)" onClick={onNewSprite}>
        +
      </button>
      <ul className="rail-sprites">
        {names.map((n) => {
          const { host, name: shown } = parseSpriteKey(n);
          const ds = unreachableHost({ hosts }, n) ? { state: 'unreachable' } : displayState(sprites[n], pending[n]);
          const who = host ? `${shown} on ${host}` : shown;
          return (
            <li key={n}>
              <button
                className={`rail-sprite${selected === n && view === 'sprite' ? ' selected' : ''}`}
                aria-label={`${who}: ${STATE_LABEL[ds.state] ?? ds.state}`}
                aria-current={selected === n ? 'true' : undefined}
                title={`${who} — ${STATE_LABEL[ds.state] ?? ds.state}`}
                data-rail-sprite={n}
                onClick={() => actions.select(n)}
              >
                {initials(shown)}
                <span className={`rail-dot state-${ds.state}`} aria-hidden />
              </button>
            </li>
          );
        })}
      </ul>
      {hasSettings && (
        <button className={`rail-button rail-settings${view === 'settings' ? ' pressed' : ''}`} aria-label="Settings" aria-pressed={view === 'settings'} title="Settings" onClick={() => (view === 'settings' ? actions.closeSettings() : actions.openSettings())}>
          ⚙
        </button>
      )}
    </nav>
  );
}
