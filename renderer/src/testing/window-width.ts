/** Sets jsdom's window width (it starts at 1024) and tells listeners, as a resize would. */
export function setWindowWidth(px: number): void {
  Object.defineProperty(window, 'innerWidth', { configurable: true, writable: true, value: px });
  window.dispatchEvent(new Event('resize'));
}
