/**
 * Keyboard shortcuts as data: which key does what. Alt-based, because a browser keeps Ctrl+T,
 * Ctrl+N, Ctrl+Tab and Ctrl+Shift+N for itself; terminals still get every other key.
 */
export type Command =
  | { type: 'new-sprite' }
  | { type: 'new-terminal' }
  | { type: 'close-terminal' }
  | { type: 'cycle-tab'; delta: 1 | -1 }
  | { type: 'tab-index'; index: number }
  | { type: 'find' };

export interface KeyLike {
  code: string;
  altKey: boolean;
  shiftKey: boolean;
  ctrlKey: boolean;
  metaKey: boolean;
}

export function commandFor(e: KeyLike): Command | null {
  if (e.ctrlKey && e.shiftKey && !e.altKey && !e.metaKey && e.code === 'KeyF') return { type: 'find' };
  if (!e.altKey || e.ctrlKey || e.metaKey) return null;
  if (e.shiftKey) {
    switch (e.code) {
      case 'KeyN':
        return { type: 'new-sprite' };
      case 'KeyT':
        return { type: 'new-terminal' };
      case 'KeyW':
        return { type: 'close-terminal' };
      case 'ArrowRight':
      case 'BracketRight':
        return { type: 'cycle-tab', delta: 1 };
      case 'ArrowLeft':
      case 'BracketLeft':
        return { type: 'cycle-tab', delta: -1 };
    }
    return null;
  }
  const digit = /^Digit([1-9])$/.exec(e.code);
  if (digit) return { type: 'tab-index', index: Number(digit[1]) - 1 };
  return null;
}

/** The list shown in the help popover. */
export const SHORTCUT_HELP: [string, string][] = [
  ['Alt+Shift+N', 'New sprite'],
  ['Alt+Shift+T', 'New terminal'],
  ['Alt+Shift+W', 'Close terminal'],
  ['Alt+1 … 9', 'Go to terminal'],
  ['Alt+Shift+← / →', 'Previous / next terminal'],
  ['Ctrl+Shift+F', 'Find in terminal'],
  ['Ctrl+Shift+C / V', 'Copy / paste'],
];
