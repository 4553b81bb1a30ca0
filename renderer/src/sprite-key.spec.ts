import { describe, expect, it } from 'vitest';
import { hostedPath, hostOfKey, parseSpriteKey, routeInput, spriteKey, spriteLabel } from './sprite-key.ts';

describe('sprite keys', () => {
  it('a local sprite is its name; a remote one NAME@HOST', () => {
    expect(spriteKey(null, 'dev')).toBe('dev');
    expect(spriteKey('box', 'dev')).toBe('dev@box');
    expect(parseSpriteKey('dev')).toEqual({ host: null, name: 'dev' });
    expect(parseSpriteKey('dev@box')).toEqual({ host: 'box', name: 'dev' });
    expect(hostOfKey('dev@gpu-1')).toBe('gpu-1');
    expect(hostOfKey('dev')).toBeNull();
    expect([spriteLabel('dev'), spriteLabel('dev@box')]).toEqual(['dev', 'dev on box']);
  });

  it('routes a call by the key in `name`, keeping a fork on its host', () => {
    expect(routeInput({ name: 'dev' })).toEqual({ host: null, input: { name: 'dev' } });
    expect(routeInput({ name: 'dev@box', port: 3000 })).toEqual({ host: 'box', input: { name: 'dev', port: 3000 } });
    expect(routeInput({ name: 'dev@box', checkpoint: 'v1', newName: 'copy@box' })).toEqual({ host: 'box', input: { name: 'dev', checkpoint: 'v1', newName: 'copy' } });
    expect(routeInput({})).toEqual({ host: null, input: {} });
    expect(routeInput({ host: 'box' })).toEqual({ host: null, input: { host: 'box' } });
    // a sprite's own idle timeout (config.set) goes to its host, with the plain name
    expect(routeInput({ idleTimeoutSec: 600, sprite: 'dev@box' })).toEqual({ host: 'box', input: { idleTimeoutSec: 600, sprite: 'dev' } });
    expect(routeInput({ idleTimeoutSec: 600, sprite: 'dev' })).toEqual({ host: null, input: { idleTimeoutSec: 600, sprite: 'dev' } });
    expect(routeInput({ idleTimeoutSec: 600 })).toEqual({ host: null, input: { idleTimeoutSec: 600 } });
  });

  it('puts a host\'s calls under /v1/hosts/HOST/', () => {
    expect(hostedPath('/v1/sprites/dev/exec', 'box')).toBe('/v1/hosts/box/sprites/dev/exec');
    expect(hostedPath('/v1/sprites', null)).toBe('/v1/sprites');
  });
});
