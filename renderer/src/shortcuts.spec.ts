import { describe, expect, it } from 'vitest';
import { formatAge, formatMemory, formatUptime, shortImage } from './format.ts';
import { commandFor } from './shortcuts.ts';
import { availableActions } from './sprite-actions.ts';
import { sprite } from './testing/fake-transport.ts';
import { clampDims, isSoftwareGl } from './terminal/xterm-view.ts';

const key = (code: string, mods: Partial<Record<'altKey' | 'shiftKey' | 'ctrlKey' | 'metaKey', boolean>> = {}) => ({ code, altKey: false, shiftKey: false, ctrlKey: false, metaKey: false, ...mods });

describe('shortcuts', () => {
  it('map Alt-based keys to commands and leave everything else to the terminal', () => {
    expect(commandFor(key('KeyN', { altKey: true, shiftKey: true }))).toEqual({ type: 'new-sprite' });
    expect(commandFor(key('KeyT', { altKey: true, shiftKey: true }))).toEqual({ type: 'new-terminal' });
    expect(commandFor(key('KeyW', { altKey: true, shiftKey: true }))).toEqual({ type: 'close-terminal' });
    expect(commandFor(key('ArrowRight', { altKey: true, shiftKey: true }))).toEqual({ type: 'cycle-tab', delta: 1 });
    expect(commandFor(key('BracketLeft', { altKey: true, shiftKey: true }))).toEqual({ type: 'cycle-tab', delta: -1 });
    expect(commandFor(key('Digit3', { altKey: true }))).toEqual({ type: 'tab-index', index: 2 });
    expect(commandFor(key('KeyF', { ctrlKey: true, shiftKey: true }))).toEqual({ type: 'find' });
    expect(commandFor(key('KeyB', { altKey: true }))).toBeNull();
    expect(commandFor(key('KeyT', { ctrlKey: true }))).toBeNull();
    expect(commandFor(key('Digit0', { altKey: true }))).toBeNull();
    expect(commandFor(key('KeyN', { altKey: true, shiftKey: true, ctrlKey: true }))).toBeNull();
  });
});

describe('format', () => {
  const now = Date.parse('2025-01-01T12:00:00Z');
  it('uptime, age, memory and image names', () => {
    expect(formatUptime(null, now)).toBe('');
    expect(formatUptime('2025-01-01T11:59:15Z', now)).toBe('45s');
    expect(formatUptime('2025-01-01T11:57:55Z', now)).toBe('2m 05s');
    expect(formatUptime('2025-01-01T09:50:00Z', now)).toBe('2h 10m');
    expect(formatUptime('2024-12-30T10:00:00Z', now)).toBe('2d 2h');
    expect(formatAge('2025-01-01T11:59:59Z', now)).toBe('just now');
    expect(formatAge('2025-01-01T11:00:00Z', now)).toBe('1 h ago');
    expect(formatMemory(512)).toBe('512 MiB');
    expect(formatMemory(1536)).toBe('1.5 GiB');
    expect(shortImage('debian-12-5976cd2da0fe')).toBe('debian-12');
    expect(shortImage('custom')).toBe('custom');
  });
});

describe('terminal sizes', () => {
  it('ignore NaN and hidden panes, clamp to what the daemon accepts', () => {
    expect(clampDims(undefined)).toBeNull();
    expect(clampDims({ cols: NaN, rows: 10 })).toBeNull();
    expect(clampDims({ cols: 1, rows: 10 })).toBeNull();
    expect(clampDims({ cols: 80.7, rows: 24.2 })).toEqual({ cols: 80, rows: 24 });
    expect(clampDims({ cols: 5000, rows: 900 })).toEqual({ cols: 1000, rows: 500 });
  });
});

describe('renderer choice', () => {
  it('treats software GL as no GPU (the DOM renderer is faster then)', () => {
    expect(isSoftwareGl('ANGLE (Google, Vulkan 1.3.0 (SwiftShader Device (Subzero) (0x0000C0DE)), SwiftShader driver)')).toBe(true);
    expect(isSoftwareGl('llvmpipe (LLVM 15.0.6, 256 bits)')).toBe(true);
    expect(isSoftwareGl('ANGLE (Intel, Mesa Intel(R) UHD Graphics 620 (KBL GT2), OpenGL 4.6)')).toBe(false);
    expect(isSoftwareGl(null)).toBe(false);
  });
});

describe('sprite actions', () => {
  const all = () => true;
  it('offer what the state allows and the contract has', () => {
    expect(availableActions(all, sprite('a')).map((a) => a.id)).toEqual(['sleep', 'stop', 'destroy']);
    expect(availableActions(all, sprite('a', { state: 'sleeping' })).map((a) => a.id)).toEqual(['wake', 'stop', 'destroy']);
    const noSleep = (m: string) => m !== 'sprites.sleep' && m !== 'sprites.wake';
    expect(availableActions(noSleep, sprite('a')).map((a) => a.id)).toEqual(['stop', 'destroy']);
    expect(availableActions(noSleep, sprite('a', { state: 'sleeping' })).map((a) => a.id)).toEqual(['stop', 'destroy']);
    expect(availableActions(all, sprite('a', { state: 'stopped' })).map((a) => a.id)).toEqual(['start', 'destroy']);
    expect(availableActions(all, sprite('a', { state: 'crashed' })).map((a) => a.id)).toEqual(['start', 'destroy']);
    expect(availableActions(all, sprite('a', { operation: 'create' })).map((a) => a.id)).toEqual(['destroy']);
    expect(availableActions((m) => m !== 'sprites.stop' && m !== 'sprites.sleep', sprite('a')).map((a) => a.id)).toEqual(['destroy']);
  });
});
