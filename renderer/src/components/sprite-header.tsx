/**
 * The selected sprite's header: name and state, its facts (the network policy and idle timeout
 * are buttons that open their editors), the panel toggles, the lifecycle actions and a "⋯" menu
 * with the sprite's settings and tools (network, idle timeout, usage, copy SSH config). In a
 * narrow window the actions that do not fit join that menu (window-layout.ts): nothing runs off
 * the edge, everything stays one or two clicks (or keys) away.
 *
 * A remote sprite (its key NAME@HOST, sprite-key.ts) shows its host as a chip and passes its key to
 * every call, so the transport routes it to that host; its menu leaves out Usage (a daemon-wide
 * table, not addressable by a sprite) and Copy SSH config (the block names a port on the host's own
 * loopback; the CLI refuses it too). While its host is not connected it shows what it last looked
 * like, says why, and offers no action.
 */
import { useEffect, useState } from 'react';
import { formatMemory, shortImage } from '../format.ts';
import { availablePanels } from '../sprite-panels.ts';
import { availableActions, type SpriteAction } from '../sprite-actions.ts';
import { parseSpriteKey } from '../sprite-key.ts';
import { availableTools, type SpriteTool, type SpriteToolId } from '../sprite-tools.ts';
import { displayState, unreachableHost } from '../store.ts';
import { idleWords } from '../units.ts';
import { splitActions } from '../window-layout.ts';
import { DestroyDialog } from './destroy-dialog.tsx';
import { IdleTimeoutDialog } from './idle-timeout-dialog.tsx';
import { Menu, type MenuItem } from './menu.tsx';
import { NetworkDialog } from './network-dialog.tsx';
import { asSentence, StateBadge } from './sprite-list.tsx';
import { useActions, useApp } from './store-context.tsx';
import { UsageDialog } from './usage-dialog.tsx';
import { useCopy } from './use-copy.ts';
import { useWindowLayout } from './use-window-layout.ts';

type Open = 'destroy' | 'network' | 'idle' | 'usage' | null;

/** The tools that work on a remote host's sprite: those its key can route (not the daemon-wide usage table, not a local ssh-config block). */
export function toolsFor(tools: SpriteTool[], host: string | null): SpriteTool[] {
  return host ? tools.filter((t) => t.id === 'network' || t.id === 'idle') : tools;
}

/** The idle timeout in force for a sprite, in words, and whether it is the sprite's own. */
export function idleFact(own: number | null, daemonWide: number | null): string {
  if (own !== null) return own === 0 ? 'never sleeps' : `sleeps ${idleWords(own)}`;
  if (daemonWide === null) return 'sleeps: default';
  return daemonWide === 0 ? 'never sleeps (default)' : `sleeps ${idleWords(daemonWide)} (default)`;
}

export function SpriteHeader({ name }: { name: string }) {
  const sprite = useApp((s) => s.sprites[name]);
  const pending = useApp((s) => s.pending[name]);
  const away = useApp((s) => unreachableHost(s, name)?.reason ?? (unreachableHost(s, name) ? 'not connected' : null));
  const { host, name: shown } = parseSpriteKey(name);
  const transport = useApp((s) => s.transport);
  const config = useApp((s) => s.config);
  const panelsOpen = useApp((s) => s.panelsOpen);
  const drawer = useApp((s) => s.drawer);
  const actions = useActions();
  const layout = useWindowLayout();
  const copy = useCopy();
  const [open, setOpen] = useState<Open>(null);
  const has = (m: string) => transport.has(m);
  const canConfig = has('config.get');

  useEffect(() => {
    if (canConfig && !config) void actions.loadConfig();
  }, [canConfig, config, actions]);

  if (!sprite) return null;
  const ds = away !== null ? { state: 'unreachable', detail: null } : displayState(sprite, pending);
  const panels = availablePanels(has);
  // Nothing reaches a sprite whose host is away: no actions, no tools (what it last looked like stays).
  const tools = away !== null ? [] : toolsFor(availableTools(has), host);
  const offered = pending || away !== null ? [] : availableActions(has, sprite);
  // Dialogs address the sprite by its key (NAME@HOST for a remote one): the transport routes by it.
  const keyed = sprite.name === name ? sprite : { ...sprite, name };
  const { inline, overflow } = splitActions(offered, layout.inlineActions);
  const run = (a: SpriteAction) => {
    if (a.confirm === 'type-name') return setOpen('destroy');
    void actions.runSpriteMethod(name, a.method, a.op);
  };
  const useTool = (id: SpriteToolId) => {
    if (id !== 'ssh-config') return setOpen(id);
    void (async () => {
      const text = await actions.sshConfig(name);
      if (text) await copy(text, `SSH config for ${name} copied. Add it to ~/.ssh/config, then: ssh ${name}`);
    })();
  };
  // Lifecycle first, then settings and tools, the irreversible last and set apart.
  const asItem = (a: SpriteAction): MenuItem => ({ id: a.id, label: a.label, tone: a.tone === 'danger' ? 'danger' : undefined, run: () => run(a) });
  const menu: MenuItem[] = [
    ...overflow.filter((a) => a.tone !== 'danger').map(asItem),
    ...tools.map((t) => ({ id: t.id, label: t.label, run: () => useTool(t.id) })),
    ...overflow.filter((a) => a.tone === 'danger').map((a, i) => ({ ...asItem(a), separated: i === 0 })),
  ];
  const canNetwork = tools.some((t) => t.id === 'network');
  const canIdle = tools.some((t) => t.id === 'idle');

  return (
    <header className="sprite-header">
      <div className="sprite-title">
        <h1 title={name}>{shown}</h1>
        {host && (
          <span className="host-chip" title={`On host ${host} (remote, over SSH)`}>
            on {host}
          </span>
        )}
        <StateBadge state={ds.state} detail={ds.detail} />
      </div>
      <div className="sprite-facts">
        <span title={sprite.image}>{shortImage(sprite.image)}</span>
        <span>{formatMemory(sprite.memoryMiB)}</span>
        <span>
          {sprite.cpus} {sprite.cpus === 1 ? 'CPU' : 'CPUs'}
        </span>
        <span>{sprite.diskGiB} GiB disk</span>
        {sprite.accel && <span title="Accelerator">{sprite.accel.toUpperCase()}</span>}
        {sprite.network &&
          (canNetwork ? (
            <button type="button" className="fact sprite-network" title={`What the sprite may reach (enforced on ${host ? `host ${host}` : 'this computer'}): change it`} onClick={() => setOpen('network')}>
              network: {sprite.network}
            </button>
          ) : (
            <span className="sprite-network" title={`What the sprite may reach (enforced on ${host ? `host ${host}` : 'this computer'}; change with: spritely net set${host ? ` --host ${host}` : ''} NAME POLICY)`}>
              network: {sprite.network}
            </span>
          ))}
        {canIdle && (
          <button type="button" className="fact sprite-idle" title="When an unused sprite goes to sleep: change it" onClick={() => setOpen('idle')}>
            {idleFact(sprite.idleTimeoutSec, host ? null : (config?.idleTimeoutSec ?? null))}
          </button>
        )}
      </div>
      <div className="sprite-actions">
        {layout.panels === 'docked'
          ? panels.length > 0 && (
              <button className={`ghost${panelsOpen ? ' pressed' : ''}`} aria-pressed={panelsOpen} onClick={actions.togglePanels} title="Show or hide the timeline and URLs">
                Timeline
              </button>
            )
          : panels.map((p) => (
              <button key={p.id} className={`ghost${drawer === p.id ? ' pressed' : ''}`} aria-pressed={drawer === p.id} onClick={() => actions.toggleDrawer(p.id)} data-panel={p.id}>
                {p.title}
              </button>
            ))}
        {inline.map((a) => (
          <button key={a.id} className={a.tone ?? 'ghost'} onClick={() => run(a)} data-action={a.id}>
            {a.label}
          </button>
        ))}
        <Menu label={`More for ${name}`} items={menu} />
      </div>
      {sprite.state === 'crashed' && sprite.lastError && (
        <div className="sprite-error" role="alert">
          {sprite.lastError}
        </div>
      )}
      {away !== null && (
        <div className="sprite-error host-away" role="alert">
          Host {host} is not connected: {asSentence(away)} It reconnects on its own; this is what {shown} last looked like.
        </div>
      )}
      {open === 'destroy' && (
        <DestroyDialog
          name={shown}
          onCancel={() => setOpen(null)}
          onConfirm={() => {
            setOpen(null);
            void actions.destroySprite(name);
          }}
        />
      )}
      {open === 'network' && <NetworkDialog sprite={keyed} onClose={() => setOpen(null)} />}
      {open === 'idle' && <IdleTimeoutDialog sprite={keyed} onClose={() => setOpen(null)} />}
      {open === 'usage' && <UsageDialog sprite={keyed} onClose={() => setOpen(null)} />}
    </header>
  );
}
