/**
 * The one modal shell: a backdrop, a labelled dialog (a form when it has `onSubmit`), Escape and
 * a click outside to cancel, Tab kept inside, the first field (or `initialFocus`) focused on open —
 * and focus handed back to whatever had it before (the button that opened it) when it goes away.
 */
import { useEffect, useId, useRef, type FormEvent, type KeyboardEvent, type ReactNode } from 'react';

const FOCUSABLE = 'button:not([disabled]), input:not([disabled]), select:not([disabled]), textarea:not([disabled]), a[href], [tabindex]:not([tabindex="-1"])';

export function Dialog(props: {
  title: string;
  children: ReactNode;
  onCancel(): void;
  /** When the dialog is a form: what Enter (or the submit button) does. */
  onSubmit?(): void;
  /** A selector inside the dialog to focus first (default: the first field, else the last button). */
  initialFocus?: string;
  className?: string;
}) {
  const ref = useRef<HTMLFormElement & HTMLDivElement>(null);
  // A dialog holding a form of its own (the relay's) is a plain box: forms do not nest.
  const Box = props.onSubmit ? 'form' : 'div';
  const titleId = useId();
  const { onCancel, initialFocus } = props;

  useEffect(() => {
    const before = document.activeElement as HTMLElement | null;
    const box = ref.current!;
    const first = (initialFocus && box.querySelector<HTMLElement>(initialFocus)) || box.querySelector<HTMLElement>('input:not([type="radio"]):not([disabled]), select, textarea') || box.querySelector<HTMLElement>('input:not([disabled])');
    const buttons = box.querySelectorAll<HTMLElement>('.modal-buttons button:not([disabled])');
    (first ?? buttons[buttons.length - 1] ?? box).focus();
    return () => {
      if (before && before.isConnected && typeof before.focus === 'function') before.focus();
    };
  }, [initialFocus]);

  // Escape cancels even when focus fell out of the dialog (a button that became disabled under it).
  const cancel = useRef(onCancel);
  cancel.current = onCancel;
  useEffect(() => {
    const onEscape = (e: globalThis.KeyboardEvent) => {
      if (e.key !== 'Escape' || e.defaultPrevented) return;
      e.preventDefault();
      cancel.current();
    };
    // Capture: before the settings page or a drawer (which close on Escape too) hear it.
    window.addEventListener('keydown', onEscape, true);
    return () => window.removeEventListener('keydown', onEscape, true);
  }, []);

  const onKeyDown = (e: KeyboardEvent) => {
    if (e.key !== 'Tab') return;
    const items = [...ref.current!.querySelectorAll<HTMLElement>(FOCUSABLE)].filter((el) => !el.closest('[hidden]'));
    if (!items.length) return;
    const [first, last] = [items[0], items[items.length - 1]];
    if (e.shiftKey && document.activeElement === first) {
      e.preventDefault();
      last.focus();
    } else if (!e.shiftKey && document.activeElement === last) {
      e.preventDefault();
      first.focus();
    }
  };

  return (
    <div className="modal-backdrop" onMouseDown={(e) => e.target === e.currentTarget && onCancel()}>
      <Box
        ref={ref}
        className={`modal${props.className ? ` ${props.className}` : ''}`}
        role="dialog"
        aria-modal="true"
        aria-labelledby={titleId}
        tabIndex={-1}
        onSubmit={(e: FormEvent) => {
          e.preventDefault();
          props.onSubmit?.();
        }}
        onKeyDown={onKeyDown}
      >
        <h2 id={titleId}>{props.title}</h2>
        {props.children}
      </Box>
    </div>
  );
}
