// @vitest-environment jsdom
import { act, cleanup, fireEvent, screen, within } from '@testing-library/react';
import { afterEach, describe, expect, it } from 'vitest';
import { sprite } from '../testing/fake-transport.ts';
import { renderApp } from '../testing/render-app.tsx';
import { setWindowWidth } from '../testing/window-width.ts';
import { initials } from './sidebar-rail.tsx';

afterEach(cleanup);

describe('the window, narrow and wide', () => {
  it('narrow: the sidebar is a rail; the full list opens as a drawer and closes when a sprite is picked', () => {
    const { t } = renderApp({ width: 820 });
    act(() => t.emit({ type: 'hello', sprites: [sprite('calm-otter'), sprite('web', { state: 'stopped', startedAt: null })] }));
    expect(screen.queryByRole('list', { name: 'Sprites' })).toBeNull();
    const rail = screen.getByRole('navigation', { name: 'Sprites' });
    expect(within(rail).getByRole('button', { name: 'web: Stopped' }).textContent).toBe('WE');
    fireEvent.click(within(rail).getByRole('button', { name: 'web: Stopped' }));
    expect(screen.getByRole('heading', { level: 1 }).textContent).toBe('web');
    const toggle = within(rail).getByRole('button', { name: 'Show the sprite list' });
    toggle.focus();
    fireEvent.click(toggle);
    const list = screen.getByRole('list', { name: 'Sprites' });
    expect(document.activeElement).toBe(within(list).getByText('web').closest('button'));
    fireEvent.click(within(list).getByText('calm-otter').closest('button')!);
    expect(screen.queryByRole('list', { name: 'Sprites' })).toBeNull();
    expect(screen.getByRole('heading', { level: 1 }).textContent).toBe('calm-otter');
    // Escape closes it too, and focus goes back to the rail
    toggle.focus();
    fireEvent.click(toggle);
    fireEvent.keyDown(document.activeElement!, { key: 'Escape' });
    expect(screen.queryByRole('list', { name: 'Sprites' })).toBeNull();
    expect(document.activeElement).toBe(toggle);
  });

  it('narrow: "+" and Alt+Shift+N open the list with the new sprite’s name ready', () => {
    const { t } = renderApp({ width: 820 });
    act(() => t.emit({ type: 'hello', sprites: [sprite('a')] }));
    fireEvent.click(screen.getByRole('button', { name: 'New sprite' }));
    expect(document.activeElement).toBe(screen.getByLabelText('Name of the new sprite'));
    fireEvent.keyDown(document.activeElement!, { key: 'Escape' });
    act(() => void fireEvent.keyDown(window, { code: 'KeyN', altKey: true, shiftKey: true }));
    expect(document.activeElement).toBe(screen.getByLabelText('Name of the new sprite'));
  });

  it('growing wide docks everything again', () => {
    const { t } = renderApp({ width: 820 });
    act(() => t.emit({ type: 'hello', sprites: [sprite('a')] }));
    fireEvent.click(screen.getByRole('button', { name: 'Show the sprite list' }));
    act(() => setWindowWidth(1280));
    expect(screen.queryByRole('navigation', { name: 'Sprites' })).toBeNull();
    expect(screen.getAllByRole('list', { name: 'Sprites' })).toHaveLength(1);
    expect(document.querySelector('.drawer')).toBeNull();
    expect(screen.getByRole('button', { name: 'Destroy…' })).toBeTruthy();
  });

  it('initials for the rail', () => {
    expect([initials('calm-otter'), initials('web'), initials('a'), initials('x-1-y')]).toEqual(['CO', 'WE', 'A', 'X1']);
  });
});
