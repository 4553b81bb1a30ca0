/** A TerminalView that records what it is given (jsdom has no canvas for xterm). */
import type { TerminalView, TerminalViewFactory } from '../terminal/xterm-view.ts';

export class FakeView implements TerminalView {
  cols = 80;
  rows = 24;
  written = '';
  theme: string;
  opened = false;
  disposed = false;
  focused = 0;
  searches: string[] = [];
  private dataCbs: ((d: string) => void)[] = [];
  readonly renderer = 'dom' as const;
  constructor(theme: string) {
    this.theme = theme;
  }
  write(data: Uint8Array | string, cb?: () => void) {
    this.written += typeof data === 'string' ? data : new TextDecoder().decode(data);
    cb?.();
  }
  reset() {
    this.written = '';
  }
  open() {
    this.opened = true;
  }
  onData(cb: (d: string) => void) {
    this.dataCbs.push(cb);
    return { dispose: () => (this.dataCbs = this.dataCbs.filter((c) => c !== cb)) };
  }
  onBinary() {
    return { dispose: () => {} };
  }
  fit() {
    return null;
  }
  focus() {
    this.focused++;
  }
  setTheme(t: 'light' | 'dark') {
    this.theme = t;
  }
  setKeyFilter() {}
  findNext(q: string) {
    this.searches.push(q);
    return true;
  }
  findPrevious(q: string) {
    this.searches.push(`prev:${q}`);
    return true;
  }
  clearSearch() {}
  copySelection() {
    return '';
  }
  paste() {}
  text() {
    return this.written;
  }
  dispose() {
    this.disposed = true;
  }
  type(s: string) {
    for (const cb of this.dataCbs) cb(s);
  }
}

export function fakeViews(): { factory: TerminalViewFactory; views: FakeView[] } {
  const views: FakeView[] = [];
  return {
    views,
    factory: (_env, theme) => {
      const v = new FakeView(theme);
      views.push(v);
      return v;
    },
  };
}
