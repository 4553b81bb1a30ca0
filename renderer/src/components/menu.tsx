/**
 * A button that opens a list of actions (the sprite's "⋯" menu): arrow keys move, Enter or a
 * click runs an item, Escape or a click elsewhere closes, and focus goes back to the button before
 * the item runs (so a dialog the item opens hands focus back there too).
 */
import { useEffect, useId, useRef, useState } from 'react';

export interface MenuItem {
  id: string;
  label: string;
  tone?: 'danger';
  disabled?: boolean;
  /** Drawn with a line above it (the irreversible ones, apart from the rest). */
  separated?: boolean;
  run(): void;
}

export function Menu({ label, items, buttonText = '⋯', className = '' }: { label: string; items: MenuItem[]; buttonText?: string; className?: string }) {
  const [open, setOpen] = useState(false);
  const button = useRef<HTMLButtonElement>(null);
  const list = useRef<HTMLDivElement>(null);
  const id = useId();

  useEffect(() => {
    if (!open) return;
    list.current?.querySelector<HTMLElement>('[role="menuitem"]:not([disabled])')?.focus();
    const away = (e: MouseEvent) => {
      if (!list.current?.contains(e.target as Node) && !button.current?.contains(e.target as Node)) setOpen(false);
    };
    document.addEventListener('mousedown', away);
    return () => document.removeEventListener('mousedown', away);
  }, [open]);

  const close = () => {
    setOpen(false);
    button.current?.focus();
  };
  const move = (delta: number) => {
    const items = [...(list.current?.querySelectorAll<HTMLElement>('[role="menuitem"]:not([disabled])') ?? [])];
    const at = items.indexOf(document.activeElement as HTMLElement);
    items[(at + delta + items.length) % items.length]?.focus();
  };

  if (!items.length) return null;
  return (
    <div className={`menu ${className}`}>
      <button ref={button} type="button" className="ghost menu-button" aria-haspopup="menu" aria-expanded={open} aria-controls={open ? id : undefined} aria-label={label} title={label} onClick={() => setOpen((o) => !o)}>
        {buttonText}
      </button>
      {open && (
        <div
          ref={list}
          id={id}
          className="menu-list"
          role="menu"
          aria-label={label}
          onKeyDown={(e) => {
            if (e.key === 'Escape') {
              e.preventDefault();
              e.stopPropagation();
              close();
            } else if (e.key === 'ArrowDown') {
              e.preventDefault();
              move(1);
            } else if (e.key === 'ArrowUp') {
              e.preventDefault();
              move(-1);
            } else if (e.key === 'Tab') setOpen(false);
          }}
        >
          {items.map((item) => (
            <button
              key={item.id}
              type="button"
              role="menuitem"
              className={`menu-item${item.tone ? ` ${item.tone}` : ''}${item.separated ? ' separated' : ''}`}
              disabled={item.disabled}
              data-action={item.id}
              onClick={() => {
                close();
                item.run();
              }}
            >
              {item.label}
            </button>
          ))}
        </div>
      )}
    </div>
  );
}
