/**
 * What a sprite may reach: the internet (public addresses only), nothing, or only a list of
 * names, `*.domains`, addresses and ranges. The daemon judges every entry; its refusal is shown
 * beside the list, in its words. A change applies to the sprite's next connection — no restart.
 * Under the policy: what the sprite was last refused, and why (refused-list.tsx).
 */
import { useState } from 'react';
import { addEntries, policyText, readPolicy, type NetworkMode } from '../network-policy-text.ts';
import { spriteLabel } from '../sprite-key.ts';
import type { Sprite } from '../transport.ts';
import { Dialog } from './dialog.tsx';
import { RefusedList } from './refused-list.tsx';
import { useActions, useApp } from './store-context.tsx';

const MODES: { mode: NetworkMode; label: string; hint: string }[] = [
  { mode: 'internet', label: 'Internet', hint: 'Public addresses only: never this computer, your network (LAN) or cloud metadata.' },
  { mode: 'none', label: 'Nothing', hint: 'No connections out at all.' },
  { mode: 'allow', label: 'Only these', hint: 'Host names, *.domain, IP addresses or ADDRESS/BITS ranges. An address or range is how a sprite reaches a machine on your network.' },
];

export function NetworkDialog({ sprite, onClose }: { sprite: Sprite; onClose(): void }) {
  const name = sprite.name;
  const label = spriteLabel(name);
  const actions = useActions();
  const canShow = useApp((s) => s.transport.has('sprites.netShow'));
  const initial = readPolicy(sprite.network);
  const [mode, setMode] = useState<NetworkMode>(initial.mode);
  const [allow, setAllow] = useState<string[]>(initial.allow);
  const [typed, setTyped] = useState('');
  const [refusal, setRefusal] = useState<string | null>(null);
  const [saving, setSaving] = useState(false);

  const add = () => {
    setAllow((list) => addEntries(list, typed));
    setTyped('');
    setRefusal(null);
  };
  const apply = async () => {
    const list = addEntries(allow, typed);
    const text = policyText({ mode, allow: list });
    setAllow(list);
    setTyped('');
    setSaving(true);
    const refused = await actions.setNetwork(name, text);
    setSaving(false);
    if (refused) return setRefusal(refused);
    actions.toast(`${label}: network ${text}. In force for its next connection; nothing restarted.`, 'info');
    onClose();
  };

  return (
    <Dialog title={`Network of ${label}`} onCancel={onClose} onSubmit={() => void apply()} className="wide" initialFocus={`input[value="${mode}"]`}>
      <fieldset className="choices">
        <legend className="sr-only">What {label} may reach</legend>
        {MODES.map((m) => (
          <label key={m.mode} className="choice">
            <input type="radio" name="network-mode" value={m.mode} checked={mode === m.mode} onChange={() => (setMode(m.mode), setRefusal(null))} />
            <span>
              <strong>{m.label}</strong>
              <span className="muted small">{m.hint}</span>
            </span>
          </label>
        ))}
      </fieldset>
      {mode === 'allow' && (
        <div className="allow-editor">
          {allow.length > 0 && (
            <ul className="chips" aria-label="Allowed hosts">
              {allow.map((e) => (
                <li key={e} className={`chip${refusal?.includes(`"${e}"`) ? ' refused' : ''}`}>
                  <code>{e}</code>
                  <button type="button" className="ghost small" aria-label={`Remove ${e}`} onClick={() => (setAllow(allow.filter((x) => x !== e)), setRefusal(null))}>
                    ✕
                  </button>
                </li>
              ))}
            </ul>
          )}
          <div className="inline-form">
            <input
              aria-label="Add hosts"
              placeholder="mirror.example.org, *.github.com, 192.168.1.20"
              value={typed}
              spellCheck={false}
              autoComplete="off"
              onChange={(e) => setTyped(e.target.value)}
              onKeyDown={(e) => {
                if (e.key === 'Enter' && typed.trim()) {
                  e.preventDefault();
                  add();
                }
              }}
            />
            <button type="button" className="ghost" onClick={add} disabled={!typed.trim()}>
              Add
            </button>
          </div>
        </div>
      )}
      {refusal && (
        <div className="field-error" role="alert">
          {refusal}
        </div>
      )}
      <p className="muted small">Applies at once: the sprite's next connection follows it; nothing restarts.</p>
      {canShow && <RefusedList name={name} />}
      <div className="modal-buttons">
        <button type="button" className="ghost" onClick={onClose}>
          Cancel
        </button>
        <button type="submit" className="primary" disabled={saving}>
          {saving ? 'Applying…' : 'Apply'}
        </button>
      </div>
    </Dialog>
  );
}
