/**
 * One daemon-wide setting as a text field with Save: what was typed is parsed before anything is
 * sent, its problem shows under the field, and the field follows the daemon's value again once
 * saved (or while untouched). The idle timeout, memory limit and checkpoint mounts all use it.
 */
import { useEffect, useState } from 'react';
import type { Parsed } from '../../units.ts';
import { useApp } from '../store-context.tsx';

export function SettingForm(props: {
  label: string;
  /** The daemon's value as text; null until the config is read. */
  current: string | null;
  parse: (text: string) => Parsed;
  /** Sends the value; true when the daemon took it. */
  save: (value: number) => Promise<boolean>;
  hint: string;
  placeholder?: string;
  inputMode?: 'numeric';
}) {
  const saving = useApp((s) => !!s.working.config);
  const [text, setText] = useState('');
  const [touched, setTouched] = useState(false);
  useEffect(() => {
    if (props.current !== null && !touched) setText(props.current);
  }, [props.current, touched]);
  const parsed = props.parse(text);
  const problem = touched && !parsed.ok ? parsed.problem : null;

  return (
    <>
      <form
        className="inline-form"
        onSubmit={async (e) => {
          e.preventDefault();
          setTouched(true);
          if (parsed.ok && (await props.save(parsed.value))) setTouched(false);
        }}
      >
        <label className="field inline">
          <span>{props.label}</span>
          <input value={text} onChange={(e) => (setText(e.target.value), setTouched(true))} aria-invalid={!!problem} spellCheck={false} autoComplete="off" placeholder={props.placeholder} inputMode={props.inputMode} />
        </label>
        <button type="submit" className="primary" disabled={saving || props.current === null}>
          Save
        </button>
        <span className="muted small">{props.hint}</span>
      </form>
      {problem && <div className="field-error">{problem}</div>}
    </>
  );
}
