/**
 * Connecting a relay (public URLs): its URL, the tunnel token `spritely-relay token add` printed
 * (a password field: it goes only into the request body, never a URL, the page's storage or a
 * log, and the field is emptied once the relay took it) and, for a self-hosted relay with its own CA, that CA's
 * certificate picked as a file (the browser's file picker, native in the desktop app) and read
 * here as text. The daemon checks the URL and says why it refuses one.
 */
import { useId, useRef, useState } from 'react';
import { useActions, useApp } from './store-context.tsx';

/** The contract's bound for `ca` (characters of PEM). */
const MAX_CA_CHARS = 100_000;

export function RelayConnectForm({ onConnected, submitLabel = 'Connect' }: { onConnected?(): void; submitLabel?: string }) {
  const actions = useActions();
  const busy = useApp((s) => !!s.working.relay);
  const [url, setUrl] = useState('');
  const [token, setToken] = useState('');
  const [ca, setCa] = useState<{ name: string; text: string } | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  const file = useRef<HTMLInputElement>(null);
  const id = useId();

  const pick = async (f: File | undefined) => {
    setProblem(null);
    if (!f) return setCa(null);
    if (f.size > MAX_CA_CHARS) {
      if (file.current) file.current.value = '';
      return setProblem(`${f.name} is larger than 100 kB; pick the CA's PEM certificate.`);
    }
    const text = await f.text();
    if (!text.includes('-----BEGIN CERTIFICATE-----')) {
      if (file.current) file.current.value = '';
      return setProblem(`${f.name} is not a PEM certificate (it has no "BEGIN CERTIFICATE" line).`);
    }
    setCa({ name: f.name, text });
  };

  const submit = async () => {
    if (!url.trim()) return setProblem('Give the relay’s URL, e.g. https://relay.example.com.');
    if (token.length < 8) return setProblem('The tunnel token is the long line `spritely-relay token add` printed (8 characters or more).');
    setProblem(null);
    if (await actions.connectRelay({ url: url.trim(), token, ca: ca?.text })) {
      setToken('');
      onConnected?.();
    }
  };

  return (
    <form
      className="relay-form"
      aria-label="Connect a relay"
      onSubmit={(e) => {
        e.preventDefault();
        void submit();
      }}
    >
      <label className="field">
        <span>Relay URL</span>
        <input type="url" placeholder="https://relay.example.com" value={url} onChange={(e) => setUrl(e.target.value)} spellCheck={false} autoComplete="off" required />
      </label>
      <label className="field">
        <span>Tunnel token</span>
        <input type="password" value={token} onChange={(e) => setToken(e.target.value)} autoComplete="off" spellCheck={false} required />
      </label>
      <div className="field">
        <span id={`${id}-ca`}>CA certificate (optional, for a relay with its own CA)</span>
        <div className="file-row">
          <input ref={file} type="file" aria-labelledby={`${id}-ca`} accept=".pem,.crt,.cer,application/x-pem-file" onChange={(e) => void pick(e.target.files?.[0])} />
          {ca && (
            <button
              type="button"
              className="ghost small"
              onClick={() => {
                setCa(null);
                if (file.current) file.current.value = '';
              }}
            >
              Remove {ca.name}
            </button>
          )}
        </div>
      </div>
      {problem && (
        <div className="field-error" role="alert">
          {problem}
        </div>
      )}
      <div className="form-buttons">
        <button type="submit" className="primary" disabled={busy}>
          {busy ? 'Connecting…' : submitLabel}
        </button>
      </div>
    </form>
  );
}
