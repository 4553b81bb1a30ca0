/**
 * The daemon connection's state in words, above the work area: reconnecting, logged out (with
 * "Log in again" in the desktop app, whose main process can ask the daemon for a new login over
 * the unix socket), or "this is not your Spritely daemon" when something else answers on its port.
 */
import type { DesktopBridge } from '../platform.ts';
import type { ConnectionState } from '../transport.ts';

/** `commands` in a message as code. */
function words(text: string) {
  return text.split(/(`[^`]+`)/).map((part, i) => (part.startsWith('`') && part.endsWith('`') && part.length > 2 ? <code key={i}>{part.slice(1, -1)}</code> : part));
}

export function ConnectionBanner({ connection, detail, desktop }: { connection: ConnectionState; detail: string | null; desktop: DesktopBridge | null }) {
  if (connection === 'offline') return <div className="banner">{detail ?? 'The daemon is not reachable; reconnecting…'}</div>;
  if (connection === 'not-your-daemon') {
    return (
      <div className="banner banner-alarm" role="alert" data-connection="not-your-daemon">
        <span>
          <strong>This is not your Spritely daemon.</strong> {words(detail?.replace(/^This is not your Spritely daemon: s/, 'S') ?? '')}
        </span>
      </div>
    );
  }
  if (connection === 'logged-out') {
    return (
      <div className="banner banner-alarm" role="alert" data-connection="logged-out">
        <span>{words(detail ?? 'Logged out. Run `spritely ui` to log in again.')}</span>
        {desktop?.relogin && (
          <button className="small" onClick={() => void desktop.relogin().catch(() => {})}>
            Log in again
          </button>
        )}
      </div>
    );
  }
  return null;
}
