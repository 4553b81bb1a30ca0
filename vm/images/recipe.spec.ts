import { chmodSync, cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { MmdebstrapProgress, mmdebstrapArgs, parseDpkgStatus, type BuildProgress } from './mmdebstrap.ts';
import { DEFAULT_RECIPE, IMAGE_ID_PATTERN, imageId, listGuestFiles, recipeHash, type Recipe } from './recipe.js';

const temps: string[] = [];
afterEach(() => {
  for (const t of temps.splice(0)) rmSync(t, { recursive: true, force: true });
});

/** The default recipe over a private copy of resources/guest that a test may change. */
function copyRecipe(): Recipe {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'recipe-spec-'));
  temps.push(dir);
  cpSync(DEFAULT_RECIPE.guestDir, dir, { recursive: true });
  return { ...DEFAULT_RECIPE, guestDir: dir };
}

describe('recipe hash and image id', () => {
  it('is a sha256 that does not depend on where the guest files live', () => {
    expect(recipeHash()).toMatch(/^[0-9a-f]{64}$/);
    expect(recipeHash(copyRecipe())).toBe(recipeHash());
  });

  it('changes when a guest file changes, appears or becomes executable', () => {
    const base = recipeHash();
    const edited = copyRecipe();
    writeFileSync(path.join(edited.guestDir, 'etc/hostname'), 'other\n');
    expect(recipeHash(edited)).not.toBe(base);

    const added = copyRecipe();
    writeFileSync(path.join(added.guestDir, 'etc/motd'), 'hi\n');
    expect(recipeHash(added)).not.toBe(base);

    const moded = copyRecipe();
    chmodSync(path.join(moded.guestDir, 'etc/fstab'), 0o755);
    expect(recipeHash(moded)).not.toBe(base);
  });

  it('changes when a guest agent source changes, but not for its tests', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'recipe-agent-'));
    temps.push(dir);
    cpSync(DEFAULT_RECIPE.agentDir, dir, { recursive: true });
    const copy = { ...DEFAULT_RECIPE, agentDir: dir };
    expect(recipeHash(copy)).toBe(recipeHash());
    writeFileSync(path.join(dir, 'zz_test.go'), 'package main\n');
    expect(recipeHash(copy)).toBe(recipeHash());
    writeFileSync(path.join(dir, 'frame.go'), 'package main\n// changed\n');
    expect(recipeHash(copy)).not.toBe(recipeHash());
  });

  it('changes when the recipe data changes', () => {
    expect(recipeHash({ ...DEFAULT_RECIPE, packages: [...DEFAULT_RECIPE.packages, 'vim'] })).not.toBe(recipeHash());
    expect(recipeHash({ ...DEFAULT_RECIPE, kernelCmdline: DEFAULT_RECIPE.kernelCmdline + ' x' })).not.toBe(recipeHash());
  });

  it('gives ids of the form debian-12-<12 hex>', () => {
    const id = imageId();
    expect(id).toMatch(/^debian-12-[0-9a-f]{12}$/);
    expect(id).toMatch(IMAGE_ID_PATTERN);
    expect(id.slice('debian-12-'.length)).toBe(recipeHash().slice(0, 12));
  });

  it('ships the contract files and the agent unit (identity is the agent job now: no apply-identity script)', () => {
    const files = listGuestFiles(DEFAULT_RECIPE);
    const paths = files.map((f) => f.guestPath);
    for (const p of ['/etc/fstab', '/etc/resolv.conf', '/etc/systemd/network/10-spritely.network', '/etc/ssh/sshd_config.d/10-spritely.conf', '/etc/systemd/system/spritely-agent.service']) {
      expect(paths).toContain(p);
    }
    expect(paths).not.toContain('/usr/lib/spritely/apply-identity');
    expect(paths.some((p) => p.includes('authorized_keys'))).toBe(false);
    expect(DEFAULT_RECIPE.kernelCmdline).toMatch(/(^| )root=\/dev\/vda( |$)/);
    expect(DEFAULT_RECIPE.kernelCmdline).toMatch(/(^| )console=ttyS0( |$)/);
  });
});

describe('mmdebstrap invocation', () => {
  it('uses root mode as root and unshare otherwise, with no mirror by default', () => {
    const root = mmdebstrapArgs(DEFAULT_RECIPE, '/x/rootfs.tar', true, 'a'.repeat(32));
    expect(root).toContain('--mode=root');
    expect(mmdebstrapArgs(DEFAULT_RECIPE, '/x/rootfs.tar', false, 'a'.repeat(32))).toContain('--mode=unshare');
    expect(root.slice(-2)).toEqual(['bookworm', '/x/rootfs.tar']);
    expect(root).toContain(`--include=${DEFAULT_RECIPE.packages.join(',')}`);
    expect(root.some((a) => a.startsWith('--customize-hook=sync-in '))).toBe(true);
  });

  it('uploads the compiled guest agent and makes it root-owned and executable', () => {
    const args = mmdebstrapArgs(DEFAULT_RECIPE, '/x/rootfs.tar', true, 'a'.repeat(32), [], '/w/spritely-agent');
    const hooks = args.filter((a) => a.startsWith('--customize-hook=')).map((a) => a.slice('--customize-hook='.length));
    const upload = hooks.indexOf('upload /w/spritely-agent /usr/lib/spritely/spritely-agent');
    expect(upload).toBeGreaterThan(hooks.findIndex((h) => h.startsWith('sync-in ')));
    expect(hooks[upload - 1]).toBe('mkdir -p "$1"/usr/lib/spritely'); // nothing else may have made the directory
    expect(hooks[upload + 1]).toContain('chmod 0755 /usr/lib/spritely/spritely-agent');
    expect(hooks[upload + 1]).toMatch(/systemctl enable --quiet .*spritely-agent\.service/);
    expect(mmdebstrapArgs(DEFAULT_RECIPE, '/x/rootfs.tar', true, 'a'.repeat(32)).some((a) => a.includes('upload '))).toBe(false);
  });

  it('passes the configured mirrors after the target, in order', () => {
    const mirrors = ['deb http://mirror.example/debian bookworm main', 'deb http://mirror.example/debian-security bookworm-security main'];
    expect(mmdebstrapArgs(DEFAULT_RECIPE, '/x/rootfs.tar', true, 'a'.repeat(32), mirrors).slice(-4)).toEqual(['bookworm', '/x/rootfs.tar', ...mirrors]);
  });
});

describe('progress parsing', () => {
  it('maps mmdebstrap output to phases and fractions', () => {
    const seen: BuildProgress[] = [];
    const p = new MmdebstrapProgress((x) => seen.push(x));
    for (const l of [
      'I: running apt-get update...',
      'Get:1 http://mirror.example/debian bookworm InRelease [151 kB]',
      'I: downloading packages with apt...',
      '0 upgraded, 2 newly installed, 0 to remove and 0 not upgraded.',
      'Get:1 http://mirror.example/debian bookworm/main amd64 libc6 amd64 2.36-9 [2757 kB]',
      'Get:2 http://mirror.example/debian bookworm/main amd64 bash amd64 5.2.15-2 [1491 kB]',
      'I: installing remaining packages inside the chroot...',
      'Unpacking libc6:amd64 (2.36-9) ...',
      'Setting up libc6:amd64 (2.36-9) ...',
      'I: running --customize-hook in shell: sh -c ...',
    ]) p.line(l);
    expect(seen.map((s) => s.phase)).toEqual(['resolving', 'downloading', 'downloading', 'downloading', 'installing', 'installing', 'installing', 'customizing']);
    expect(seen[2]).toMatchObject({ message: 'downloading libc6', fraction: 0.5 });
    expect(seen[3].fraction).toBe(1);
    expect(seen[6].fraction).toBe(0.5);
  });

  it('reads installed packages from dpkg status', () => {
    const status = 'Package: a\nStatus: install ok installed\nVersion: 1\n\nPackage: b\nStatus: deinstall ok config-files\nVersion: 2\n\nPackage: c\nStatus: install ok installed\nVersion: 3:1.0\n';
    expect(parseDpkgStatus(status)).toEqual({ a: '1', c: '3:1.0' });
  });
});
