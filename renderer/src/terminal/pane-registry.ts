/**
 * The live terminal panes by tab id, so commands from outside a pane (close tab, find, focus)
 * reach the right xterm and socket without putting them in the store.
 */
export interface PaneHandle {
  /** Ends the shell (closing a tab); unmounting alone only detaches. */
  hangUp(): void;
  openSearch(): void;
  focus(): void;
  text(): string;
  receivedBytes(): number;
}

const panes = new Map<string, PaneHandle>();

export const paneRegistry = {
  register(id: string, h: PaneHandle): () => void {
    panes.set(id, h);
    return () => {
      if (panes.get(id) === h) panes.delete(id);
    };
  },
  get(id: string | null | undefined): PaneHandle | undefined {
    return id ? panes.get(id) : undefined;
  },
};
