/** A small modal for confirmations that may ask for one line of input. */
import { useState, type ReactNode } from 'react';
import { Dialog } from './dialog.tsx';

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
  const problem = props.input?.valid?.(value) ?? null;
  return (
    <Dialog title={props.title} onCancel={props.onCancel} onSubmit={() => !problem && props.onConfirm(value)} initialFocus={props.input ? 'input' : '.modal-buttons button[type="submit"]'}>
      <p>{props.children}</p>
      {props.input && (
        <>
          <input aria-label={props.input.label} value={value} onChange={(e) => setValue(e.target.value)} onFocus={(e) => e.target.select()} spellCheck={false} autoComplete="off" />
          {problem && <div className="field-error">{problem}</div>}
        </>
      )}
      <div className="modal-buttons">
        <button type="button" className="ghost" onClick={props.onCancel}>
          Cancel
        </button>
        <button type="submit" className={props.tone ?? 'primary'} disabled={!!problem}>
          {props.confirmLabel}
        </button>
      </div>
    </Dialog>
  );
}
