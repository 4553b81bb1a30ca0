/**
 * Add a remote host from the app (docs/hosts.md): a name and an ssh:// address (the identity file
 * is optional; ~/.ssh/config and the agent apply). The daemon connects and checks the server
 * before remembering it. An unknown host key comes back with its fingerprint: the user compares
 * it and trusts it with one more click (the only way a key is ever accepted).
 */
import { useState } from 'react';
import { useActions, useApp } from './store-context.tsx';

const HOST_NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

export function addHostProblem(name: string, url: string, taken: string[]): string | null {
  if (!name) return 'Give the host a short name.';
  if (name === 'local') return '"local" is this computer.';
  if (!HOST_NAME.test(name)) return 'Use a–z, 0–9 and “-” (not at the start or end) for the name.';
  if (taken.includes(name)) return `There is already a host named “${name}”.`;
  if (!/^ssh:\/\/\S+$/i.test(url)) return 'The address looks like ssh://user@server or ssh://user@server:2222.';
  return null;
}

/** The daemon refused an unknown host key (its message names --accept-new-host-key). */
export function asksToTrustKey(message: string): boolean {
  return /not in your known_hosts/.test(message) && /--accept-new-host-key/.test(message);
}

export function AddHost() {
  const hosts = useApp((s) => s.hosts);
  const actions = useActions();
  const [open, setOpen] = useState(false);
  const [name, setName] = useState('');
  const [url, setUrl] = useState('');
  const [identity, setIdentity] = useState('');
  const [busy, setBusy] = useState(false);
  const [message, setMessage] = useState<string | null>(null);

  const add = async (acceptNewHostKey: boolean) => {
    const n = name.trim();
    const u = url.trim();
    const problem = addHostProblem(n, u, hosts.map((h) => h.name));
    if (problem) return setMessage(problem);
    setBusy(true);
    setMessage(null);
    const r = await actions.addHost({ name: n, url: u, ...(identity.trim() ? { identity: identity.trim() } : {}), ...(acceptNewHostKey ? { acceptNewHostKey: true } : {}) });
    setBusy(false);
    if (r.ok) {
      setName('');
      setUrl('');
      setIdentity('');
      setOpen(false);
    } else setMessage(r.message);
  };

  return (
    <details className="add-host" open={open} onToggle={(e) => setOpen((e.target as HTMLDetailsElement).open)}>
      <summary>Add a host…</summary>
      <form
        aria-label="Add a remote host"
        onSubmit={(e) => {
          e.preventDefault();
          void add(false);
        }}
      >
        <p className="muted small">Drive sprites on another Linux machine over SSH (Spritely must be installed there).</p>
        <input aria-label="Host name" placeholder="name, e.g. gpu" value={name} onChange={(e) => setName(e.target.value.toLowerCase())} spellCheck={false} autoComplete="off" />
        <input aria-label="SSH address" placeholder="ssh://me@server" value={url} onChange={(e) => setUrl(e.target.value)} spellCheck={false} autoComplete="off" />
        <input aria-label="Identity file (optional)" placeholder="identity file (optional)" value={identity} onChange={(e) => setIdentity(e.target.value)} spellCheck={false} autoComplete="off" />
        <button type="submit" className="primary small" disabled={busy}>
          {busy ? 'Connecting…' : 'Add host'}
        </button>
        {busy && (
          <p className="muted small" role="status">
            Connecting over SSH and checking Spritely, QEMU, the accelerator and the disk there…
          </p>
        )}
        {message && (
          <div className="field-error" role="alert">
            {message}
          </div>
        )}
        {message && asksToTrustKey(message) && !busy && (
          <button type="button" className="ghost small" onClick={() => void add(true)}>
            I checked the fingerprint: trust this key and add
          </button>
        )}
      </form>
    </details>
  );
}
