/** Destroy asks the user to type the sprite's name: it removes the disk and every checkpoint. */
import { useEffect, useRef, useState } from 'react';

export function DestroyDialog({ name, onConfirm, onCancel }: { name: string; onConfirm(): void; onCancel(): void }) {
  const [typed, setTyped] = useState('');
  const input = useRef<HTMLInputElement>(null);
  useEffect(() => input.current?.focus(), []);
  return (
    <div className="modal-backdrop" onMouseDown={(e) => e.target === e.currentTarget && onCancel()}>
      <form
        className="modal"
        role="dialog"
        aria-modal="true"
        aria-labelledby="destroy-title"
        onSubmit={(e) => {
          e.preventDefault();
          if (typed === name) onConfirm();
        }}
        onKeyDown={(e) => e.key === 'Escape' && onCancel()}
      >
        <h2 id="destroy-title">Destroy {name}?</h2>
        <p>
          This stops the machine and deletes its disk and everything on it. It cannot be undone. Type <code>{name}</code> to confirm.
        </p>
        <input ref={input} aria-label="Type the sprite's name to confirm" value={typed} onChange={(e) => setTyped(e.target.value)} spellCheck={false} autoComplete="off" />
        <div className="modal-buttons">
          <button type="button" className="ghost" onClick={onCancel}>
            Cancel
          </button>
          <button type="submit" className="danger" disabled={typed !== name}>
            Destroy
          </button>
        </div>
      </form>
    </div>
  );
}
