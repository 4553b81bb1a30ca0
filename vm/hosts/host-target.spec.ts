import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { layout } from '../paths.ts';
import { defaultHostFile, readDefaultHost, resolveHost, writeDefaultHost } from './host-target.ts';

describe('resolveHost', () => {
  it('flag/env first, then the default host, else this computer', () => {
    expect(resolveHost({})).toBeNull();
    expect(resolveHost({ file: 'box' })).toBe('box');
    expect(resolveHost({ env: 'gpu', file: 'box' })).toBe('gpu');
    expect(resolveHost({ env: '  ', file: 'box' })).toBe('box');
    expect(resolveHost({ env: 'Box' })).toBe('box');
  });
  it('"local" is this computer, whichever source says it', () => {
    expect(resolveHost({ env: 'local', file: 'box' })).toBeNull();
    expect(resolveHost({ file: 'local' })).toBeNull();
  });
  it('refuses what cannot be a host name, saying where it came from', () => {
    expect(() => resolveHost({ env: 'a.b' })).toThrow(/--host \/ SPRITELY_HOST/);
    expect(() => resolveHost({ file: '-x' })).toThrow(/spritely host use/);
  });
});

describe('the default-host file', () => {
  let home: string | null = null;
  afterEach(() => {
    if (home) fs.rmSync(home, { recursive: true, force: true });
    home = null;
  });
  it('is written owner-only and removed by `host use local`', async () => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'host-target-'));
    const l = layout(home);
    expect(readDefaultHost(l)).toBeNull();
    await writeDefaultHost(l, 'box');
    expect(readDefaultHost(l)).toBe('box');
    expect(fs.statSync(defaultHostFile(l)).mode & 0o777).toBe(0o600);
    await writeDefaultHost(l, null);
    expect(readDefaultHost(l)).toBeNull();
    expect(fs.existsSync(defaultHostFile(l))).toBe(false);
  });
});
