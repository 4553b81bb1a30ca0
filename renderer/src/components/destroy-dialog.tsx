/** Destroy asks the user to type the sprite's name: it removes the disk and every checkpoint. */
import { useState } from 'react';
import { Dialog } from './dialog.tsx';

export function DestroyDialog({ name, onConfirm, onCancel }: { name: string; onConfirm(): void; onCancel(): void }) {
  const [typed, setTyped] = useState('');
  return (
    <Dialog title={`Destroy ${name}?`} onCancel={onCancel} onSubmit={() => typed === name && onConfirm()}>
      <p>
        This stops the machine and deletes its disk and everything on it. It cannot be undone. Type <code>{name}</code> to confirm.
      </p>
      <input aria-label="Type the sprite's name to confirm" value={typed} onChange={(e) => setTyped(e.target.value)} spellCheck={false} autoComplete="off" />
      <div className="modal-buttons">
        <button type="button" className="ghost" onClick={onCancel}>
          Cancel
        </button>
        <button type="submit" className="danger" disabled={typed !== name}>
          Destroy
        </button>
      </div>
    </Dialog>
  );
}
