import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { bootFiles, ImageStore } from './image-store.ts';

let dir = '';
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

function storeWith(images: Record<string, object>): ImageStore {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'images-'));
  for (const [id, info] of Object.entries(images)) {
    fs.mkdirSync(path.join(dir, id));
    fs.writeFileSync(path.join(dir, id, 'image.json'), JSON.stringify({ kernelCmdline: 'root=/dev/vda', diskVirtualBytes: 1, createdAt: 'x', ...info }));
  }
  return new ImageStore(dir, () => {});
}

describe('an image’s boot files', () => {
  it('ask for the host network stack only for images built for it; older images keep one NIC (and their states’ signature)', () => {
    const store = storeWith({ 'debian-12-000000000001': {}, 'debian-12-000000000002': { network: 'netstack' }, 'debian-12-000000000003': { network: 'something-else' } });
    const old = store.get('debian-12-000000000001')!;
    expect(old.netstack).toBe(false);
    expect(bootFiles(old)).toEqual({ kernel: path.join(dir, 'debian-12-000000000001', 'vmlinuz'), initrd: path.join(dir, 'debian-12-000000000001', 'initrd.img'), cmdline: 'root=/dev/vda' });
    expect(bootFiles(store.get('debian-12-000000000002')!)).toMatchObject({ netstack: true });
    expect(bootFiles(store.get('debian-12-000000000003')!)).not.toHaveProperty('netstack');
  });

  it('the default recipe builds images for the host network stack', async () => {
    const { DEFAULT_RECIPE } = await import('./recipe.ts');
    expect(DEFAULT_RECIPE.network).toBe('netstack');
    expect(DEFAULT_RECIPE.packages).not.toContain('nftables');
  });
});
