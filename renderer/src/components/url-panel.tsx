/**
 * A sprite's URLs: the local one (http://NAME.localhost:PORT/ → port 8080 inside, waking the
 * sprite on request) with copy and open, and — when a relay is connected — its public URL, who may
 * open it (private: access token or share link; public: anyone), publish/unpublish, and a one-hour
 * share link. The tunnel's state follows the daemon's `relay.changed` events (a reconnecting relay
 * shows as it happens); without a relay, "Connect a relay…" opens the connect form here, and
 * "Relay settings" leads to the rest (disconnect, another relay). Errors come back in the daemon's
 * own words.
 */
import { useCallback, useEffect, useState } from 'react';
import type { RelayStatus } from '../store.ts';
import type { Sprite } from '../transport.ts';
import { hostOfKey } from '../sprite-key.ts';
import { Dialog } from './dialog.tsx';
import { RelayConnectForm } from './relay-connect-form.tsx';
import { RELAY_STATE_WORDS } from './relay-words.ts';
import { useActions, useApp, useTerminalFactory } from './store-context.tsx';
import { useCopy } from './use-copy.ts';

export function UrlPanel({ sprite }: { sprite: Sprite }) {
  const name = sprite.name;
  const transport = useApp((s) => s.transport);
  const actions = useActions();
  const { env } = useTerminalFactory();
  const [local, setLocal] = useState<string | null>(null);
  const announced = useApp((s) => s.relay);
  const [asked, setAsked] = useState<RelayStatus | null>(null);
  // The daemon announces every tunnel change (relay.changed); the answer we asked for covers the
  // time before the first announcement.
  const relay = announced ?? asked;
  const [token, setToken] = useState<string | null>(null);
  const [share, setShare] = useState<string | null>(null);
  // A remote sprite is published through its host's relay (the relay belongs to the daemon that holds it).
  const host = hostOfKey(name);
  const canPublish = !host && transport.has('relay.status') && transport.has('sprites.publish');
  const canConnect = transport.has('relay.connect');
  const [connecting, setConnecting] = useState(false);
  const copy = useCopy();

  const refresh = useCallback(async () => {
    try {
      setLocal((await transport.call('sprites.url', { name })).local);
      if (canPublish) setAsked(await transport.call('relay.status'));
    } catch (err) {
      actions.toast((err as Error).message, 'error');
    }
  }, [transport, name, canPublish, actions]);

  useEffect(() => {
    setToken(null);
    setShare(null);
    void refresh();
  }, [refresh]);

  const run = async (fn: () => Promise<void>) => {
    try {
      await fn();
      await refresh();
    } catch (err) {
      actions.toast((err as Error).message, 'error');
    }
  };
  const published = relay?.published.find((p) => p.name === name) ?? null;

  return (
    <div className="url-panel">
      <div className="url-row">
        <span className="url-label">Local</span>
        {local ? (
          <a className="url" href={local} onClick={(e) => (e.preventDefault(), env.openLink(local))} title={`Port ${sprite.urlPort} in ${name}`}>
            {local}
          </a>
        ) : (
          <span className="muted">…</span>
        )}
        {local && (
          <button className="ghost small" onClick={() => void copy(local)}>
            Copy
          </button>
        )}
      </div>
      <p className="muted small">→ port {sprite.urlPort} in the sprite; a request wakes it if it sleeps.</p>
      {host && (
        <p className="muted small">
          Served here through host {host}'s SSH connection. Public URLs go through {host}'s relay: <code>spritely url --host {host} {name.split('@')[0]} --public</code>.
        </p>
      )}
      {canPublish && relay && !relay.configured && (
        <div className="relay-off">
          <p className="muted small">Public URLs (reachable from anywhere, e.g. your phone) go through a relay you run.</p>
          {canConnect ? (
            <button className="ghost" onClick={() => setConnecting(true)}>
              Connect a relay…
            </button>
          ) : (
            <p className="muted small">Connect one with `spritely relay connect URL --token-file FILE`.</p>
          )}
        </div>
      )}
      {connecting && (
        <Dialog title="Connect a relay" onCancel={() => setConnecting(false)} className="wide">
          <p>The relay's owner gives you its URL and a tunnel token (`spritely-relay token add`). The daemon remembers them and reconnects on its own.</p>
          <RelayConnectForm onConnected={() => setConnecting(false)} />
          <div className="modal-buttons">
            <button type="button" className="ghost" onClick={() => setConnecting(false)}>
              Cancel
            </button>
          </div>
        </Dialog>
      )}
      {canPublish && relay?.configured && (
        <>
          <div className="url-row">
            <span className="url-label">Public</span>
            {published ? (
              <a className="url" href={published.url} title={published.url} onClick={(e) => (e.preventDefault(), env.openLink(published.url))}>
                {published.url}
              </a>
            ) : (
              <span className="muted">not published</span>
            )}
            {published && (
              <button className="ghost small" onClick={() => void copy(published.url)}>
                Copy
              </button>
            )}
          </div>
          <p className="small relay-line">
            <span className={`relay-state ${relay.status}`} title={relay.reason ?? ''}>
              {RELAY_STATE_WORDS[relay.status]}
            </span>
            {relay.status !== 'connected' && relay.reason && <span className="muted relay-reason"> — {relay.reason}</span>}
            {transport.has('relay.disconnect') && (
              <button className="link small" onClick={actions.openSettings} title="Disconnect, or connect another relay">
                Relay settings
              </button>
            )}
          </p>
          <div className="url-actions">
            {!published && (
              <button onClick={() => run(async () => setToken((await transport.call('sprites.publish', { name, auth: 'sprite' })).accessToken))}>Publish (private)</button>
            )}
            {published?.auth === 'sprite' && (
              <button className="ghost" onClick={() => run(async () => void (await transport.call('sprites.publish', { name, auth: 'public' })))}>
                Make public
              </button>
            )}
            {published?.auth === 'public' && (
              <button className="ghost" onClick={() => run(async () => void (await transport.call('sprites.publish', { name, auth: 'sprite' })))}>
                Make private
              </button>
            )}
            {published?.auth === 'sprite' && transport.has('sprites.share') && (
              <button className="ghost" onClick={() => run(async () => setShare((await transport.call('sprites.share', { name, ttlSec: 3600 })).link))}>
                Share for 1 h
              </button>
            )}
            {published && (
              <button className="ghost danger" onClick={() => run(async () => void (await transport.call('sprites.publish', { name, off: true })))}>
                Unpublish
              </button>
            )}
          </div>
          {published && <p className="muted small">{published.auth === 'public' ? 'Anyone with the URL can open it.' : 'Needs the access token (Bearer) or a share link.'}</p>}
          {token && published?.auth === 'sprite' && (
            <p className="small">
              Access token: <code>{token}</code>{' '}
              <button className="ghost small" onClick={() => void copy(token)}>
                Copy
              </button>
            </p>
          )}
          {share && (
            <p className="small">
              Share link: <code className="wrap">{share}</code>{' '}
              <button className="ghost small" onClick={() => void copy(share)}>
                Copy
              </button>
            </p>
          )}
        </>
      )}
    </div>
  );
}
