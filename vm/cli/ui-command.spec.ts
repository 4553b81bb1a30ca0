import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { browserOpener, registerUiCommand } from './ui-command.ts';

describe('spritely ui', () => {
  it('registers `ui` with --no-open', () => {
    const program = new Command();
    registerUiCommand(program);
    const ui = program.commands.find((c) => c.name() === 'ui')!;
    expect(ui).toBeTruthy();
    expect(ui.options.map((o) => o.long)).toEqual(['--no-open']);
  });

  it('opens with xdg-open only when there is a display, with open on macOS', () => {
    expect(browserOpener('linux', {})).toBeNull();
    expect(browserOpener('linux', { DISPLAY: ':0' })).toEqual({ cmd: 'xdg-open', args: [] });
    expect(browserOpener('linux', { WAYLAND_DISPLAY: 'wayland-0' })).toEqual({ cmd: 'xdg-open', args: [] });
    expect(browserOpener('darwin', {})).toEqual({ cmd: 'open', args: [] });
    expect(browserOpener('win32', {})).toBeNull();
  });
});
