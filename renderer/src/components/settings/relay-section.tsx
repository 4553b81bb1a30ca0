/** The relay: its state as the daemon announces it, what is published, connect and disconnect. */
import { useState } from 'react';
import { ConfirmDialog } from '../confirm-dialog.tsx';
import { RelayConnectForm } from '../relay-connect-form.tsx';
import { RELAY_STATE_WORDS } from '../relay-words.ts';
import { useActions, useApp } from '../store-context.tsx';

export function RelaySection() {
  const relay = useApp((s) => s.relay);
  const busy = useApp((s) => !!s.working.relay);
  const transport = useApp((s) => s.transport);
  const actions = useActions();
  const [confirm, setConfirm] = useState(false);
  const [another, setAnother] = useState(false);
  const canConnect = transport.has('relay.connect');

  return (
    <section className="settings-section" aria-labelledby="relay-title">
      <h2 id="relay-title">Relay</h2>
      <p className="muted">Public URLs for sprites go through a relay you run (`spritely-relay`). The daemon keeps the tunnel open and reconnects on its own.</p>
      {!relay ? (
        <p className="muted">Loading…</p>
      ) : relay.configured ? (
        <>
          <dl className="facts">
            <div>
              <dt>Relay</dt>
              <dd>
                <code>{relay.url}</code>
              </dd>
            </div>
            <div>
              <dt>State</dt>
              <dd>
                <span className={`relay-state ${relay.status}`}>{RELAY_STATE_WORDS[relay.status]}</span>
                {relay.reason && relay.status !== 'connected' && <span className="muted"> — {relay.reason}</span>}
              </dd>
            </div>
            {relay.account && (
              <div>
                <dt>Account</dt>
                <dd>{relay.account}</dd>
              </div>
            )}
            <div>
              <dt>Published</dt>
              <dd>{relay.published.length ? relay.published.map((p) => `${p.name} (${p.auth === 'public' ? 'public' : 'private'})`).join(', ') : 'nothing yet (publish from a sprite’s URL panel)'}</dd>
            </div>
          </dl>
          <div className="form-buttons">
            {transport.has('relay.disconnect') && (
              <button className="danger" onClick={() => setConfirm(true)} disabled={busy}>
                Disconnect…
              </button>
            )}
            {canConnect && !another && (
              <button className="ghost" onClick={() => setAnother(true)}>
                Use another relay or token…
              </button>
            )}
          </div>
          {canConnect && another && <RelayConnectForm onConnected={() => setAnother(false)} submitLabel="Connect instead" />}
        </>
      ) : canConnect ? (
        <RelayConnectForm />
      ) : (
        <p className="muted">Connect one with `spritely relay connect URL --token-file FILE`.</p>
      )}
      {confirm && relay && (
        <ConfirmDialog
          title="Disconnect the relay?"
          confirmLabel="Disconnect"
          tone="danger"
          onCancel={() => setConfirm(false)}
          onConfirm={() => {
            setConfirm(false);
            void actions.disconnectRelay();
          }}
        >
          {relay.published.length ? `${relay.published.map((p) => p.name).join(', ')} stop being reachable at their public URLs. ` : ''}The daemon forgets {relay.url} and its token; connecting again needs the token.
        </ConfirmDialog>
      )}
    </section>
  );
}
