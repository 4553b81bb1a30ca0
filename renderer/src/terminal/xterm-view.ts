/**
 * One xterm.js terminal with the addons the app uses: fit (sized by the pane), WebGL rendering
 * with the DOM renderer as fallback (no GPU, or a lost context), clickable links, search, and
 * copy/paste keys. Anything the app wants from a terminal goes through `TerminalView`, so the
 * components can be tested with a fake.
 */
import { FitAddon } from '@xterm/addon-fit';
import { SearchAddon } from '@xterm/addon-search';
import { WebLinksAddon } from '@xterm/addon-web-links';
import { WebglAddon } from '@xterm/addon-webgl';
import { Terminal, type ITheme } from '@xterm/xterm';
import type { TermLike } from './terminal-link.ts';

export interface Disposable {
  dispose(): void;
}

export interface TerminalView extends TermLike {
  open(el: HTMLElement): void;
  onData(cb: (data: string) => void): Disposable;
  onBinary(cb: (data: string) => void): Disposable;
  /** Resizes to fill the element; returns the new size when it changed. */
  fit(): { cols: number; rows: number } | null;
  focus(): void;
  setTheme(theme: 'light' | 'dark'): void;
  /** App-level keys xterm must leave alone (they bubble to the window's handler). */
  setKeyFilter(isAppKey: (e: KeyboardEvent) => boolean): void;
  findNext(query: string): boolean;
  findPrevious(query: string): boolean;
  clearSearch(): void;
  copySelection(): string;
  /** The buffer as plain text (diagnostics and end-to-end tests). */
  text(): string;
  paste(text: string): void;
  dispose(): void;
  /** Which renderer draws the cells (for diagnostics and tests). */
  readonly renderer: 'webgl' | 'dom';
}

export interface ViewEnv {
  openLink(url: string): void;
  /** Resolves once the text is on the clipboard; rejects with the reason it could not be. */
  copyText(text: string): Promise<void>;
  readText(): Promise<string>;
}

export type TerminalViewFactory = (env: ViewEnv, theme: 'light' | 'dark') => TerminalView;

export const LIGHT_THEME: ITheme = {
  background: '#fbfbfa',
  foreground: '#1f2328',
  cursor: '#1f2328',
  cursorAccent: '#fbfbfa',
  selectionBackground: '#b6d4fe',
  black: '#24292f',
  red: '#cf222e',
  green: '#116329',
  yellow: '#7d4e00',
  blue: '#0969da',
  magenta: '#8250df',
  cyan: '#1b7c83',
  white: '#6e7781',
  brightBlack: '#57606a',
  brightRed: '#a40e26',
  brightGreen: '#1a7f37',
  brightYellow: '#633c01',
  brightBlue: '#218bff',
  brightMagenta: '#a475f9',
  brightCyan: '#3192aa',
  brightWhite: '#8c959f',
};

export const DARK_THEME: ITheme = {
  background: '#16181c',
  foreground: '#d8dee4',
  cursor: '#d8dee4',
  cursorAccent: '#16181c',
  selectionBackground: '#33415c',
  black: '#484f58',
  red: '#ff7b72',
  green: '#3fb950',
  yellow: '#d29922',
  blue: '#58a6ff',
  magenta: '#bc8cff',
  cyan: '#39c5cf',
  white: '#b1bac4',
  brightBlack: '#6e7681',
  brightRed: '#ffa198',
  brightGreen: '#56d364',
  brightYellow: '#e3b341',
  brightBlue: '#79c0ff',
  brightMagenta: '#d2a8ff',
  brightCyan: '#56d4dd',
  brightWhite: '#f0f6fc',
};

/** Terminal sizes the daemon accepts; anything else (NaN, 0, a hidden pane) is ignored. */
export function clampDims(d: { cols: number; rows: number } | undefined | null): { cols: number; rows: number } | null {
  if (!d || !Number.isFinite(d.cols) || !Number.isFinite(d.rows)) return null;
  const cols = Math.floor(d.cols);
  const rows = Math.floor(d.rows);
  if (cols < 2 || rows < 1) return null;
  return { cols: Math.min(cols, 1000), rows: Math.min(rows, 500) };
}

/** Software GL (SwiftShader, llvmpipe) draws slower than xterm's DOM renderer: not worth it. */
export function isSoftwareGl(renderer: string | null | undefined): boolean {
  return !!renderer && /swiftshader|llvmpipe|softpipe|software|basic render/i.test(renderer);
}

/** The WebGL renderer string of this browser, or null when WebGL2 is unavailable. */
function webglRenderer(): string | null {
  try {
    const gl = document.createElement('canvas').getContext('webgl2');
    if (!gl) return null;
    const info = gl.getExtension('WEBGL_debug_renderer_info');
    const name = String(gl.getParameter(info ? info.UNMASKED_RENDERER_WEBGL : gl.RENDERER));
    gl.getExtension('WEBGL_lose_context')?.loseContext();
    return name;
  } catch {
    return null;
  }
}

let glVerdict: boolean | null = null;
/** Whether to use the WebGL renderer: real GPU WebGL2 only (checked once per page). */
function useWebgl(): boolean {
  if (glVerdict === null) {
    const r = webglRenderer();
    glVerdict = r !== null && !isSoftwareGl(r);
  }
  return glVerdict;
}

const isMac = typeof navigator !== 'undefined' && /Mac/.test(navigator.platform);

export const createXtermView: TerminalViewFactory = (env, theme) => {
  const term = new Terminal({
    allowProposedApi: true,
    cursorBlink: true,
    fontFamily: '"JetBrains Mono", "Cascadia Mono", "DejaVu Sans Mono", "Liberation Mono", Menlo, monospace',
    fontSize: 13.5,
    lineHeight: 1.15,
    scrollback: 10_000,
    theme: theme === 'dark' ? DARK_THEME : LIGHT_THEME,
    macOptionIsMeta: true,
  });
  const fit = new FitAddon();
  const search = new SearchAddon();
  term.loadAddon(fit);
  term.loadAddon(search);
  term.loadAddon(new WebLinksAddon((event, uri) => {
    event.preventDefault();
    env.openLink(uri);
  }));
  let renderer: 'webgl' | 'dom' = 'dom';
  let isAppKey: (e: KeyboardEvent) => boolean = () => false;

  term.attachCustomKeyEventHandler((e) => {
    if (e.type !== 'keydown') return !isAppKey(e);
    const mod = isMac ? e.metaKey : e.ctrlKey && e.shiftKey;
    if (mod && e.code === 'KeyC' && term.hasSelection()) {
      void env.copyText(term.getSelection()).catch(() => {});
      e.preventDefault();
      return false;
    }
    if (mod && e.code === 'KeyV') {
      e.preventDefault();
      env.readText().then((t) => t && term.paste(t), () => {});
      return false;
    }
    return !isAppKey(e);
  });

  const view: TerminalView = {
    get cols() {
      return term.cols;
    },
    get rows() {
      return term.rows;
    },
    get renderer() {
      return renderer;
    },
    write: (data, cb) => term.write(data, cb),
    reset: () => term.reset(),
    open(el) {
      term.open(el);
      if (!useWebgl()) return;
      try {
        const gl = new WebglAddon();
        gl.onContextLoss(() => {
          gl.dispose();
          renderer = 'dom';
        });
        term.loadAddon(gl);
        renderer = 'webgl';
      } catch {
        renderer = 'dom';
      }
    },
    onData: (cb) => term.onData(cb),
    onBinary: (cb) => term.onBinary(cb),
    fit() {
      const d = clampDims(fit.proposeDimensions());
      if (!d || (d.cols === term.cols && d.rows === term.rows)) return null;
      term.resize(d.cols, d.rows);
      return d;
    },
    focus: () => term.focus(),
    setTheme(t) {
      term.options.theme = t === 'dark' ? DARK_THEME : LIGHT_THEME;
    },
    setKeyFilter(f) {
      isAppKey = f;
    },
    findNext: (q) => search.findNext(q, { caseSensitive: false }),
    findPrevious: (q) => search.findPrevious(q, { caseSensitive: false }),
    clearSearch: () => {
      search.clearDecorations();
      term.clearSelection();
    },
    copySelection: () => term.getSelection(),
    text() {
      const b = term.buffer.active;
      const lines: string[] = [];
      for (let i = 0; i < b.length; i++) lines.push(b.getLine(i)?.translateToString(true) ?? '');
      return lines.join('\n').trimEnd();
    },
    paste: (t) => term.paste(t),
    dispose: () => term.dispose(),
  };
  return view;
};
