/** A small modal for confirmations that may ask for one line of input. */
import { useEffect, useRef, useState, type ReactNode } from 'react';

export function ConfirmDialog(props: {
  title: string;
  children: ReactNode;
  confirmLabel: string;
  tone?: 'primary' | 'danger';
  input?: { label: string; initial: string; valid?: (v: string) => string | null };
  onConfirm(value: string): void;
  onCancel(): void;
}) {
  const [value, setValue] = useState(props.input?.initial ?? '');
  const ref = useRef<HTMLInputElement>(null);
  const button = useRef<HTMLButtonElement>(null);
  useEffect(() => (props.input ? ref.current?.select() : button.current?.focus()), [props.input]);
  const problem = props.input?.valid?.(value) ?? null;
  return (
    <div className="modal-backdrop" onMouseDown={(e) => e.target === e.currentTarget && props.onCancel()}>
      <form
        className="modal"
        role="dialog"
        aria-modal="true"
        aria-label={props.title}
        onSubmit={(e) => {
          e.preventDefault();
          if (!problem) props.onConfirm(value);
        }}
        onKeyDown={(e) => e.key === 'Escape' && props.onCancel()}
      >
        <h2>{props.title}</h2>
        <p>{props.children}</p>
        {props.input && (
          <>
            <input ref={ref} aria-label={props.input.label} value={value} onChange={(e) => setValue(e.target.value)} spellCheck={false} autoComplete="off" />
            {problem && <div className="field-error">{problem}</div>}
          </>
        )}
        <div className="modal-buttons">
          <button type="button" className="ghost" onClick={props.onCancel}>
            Cancel
          </button>
          <button ref={button} type="submit" className={props.tone ?? 'primary'} disabled={!!problem}>
            {props.confirmLabel}
          </button>
        </div>
      </form>
    </div>
  );
}
