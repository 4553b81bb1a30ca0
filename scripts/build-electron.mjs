#!/usr/bin/env node
// Bundles Electron main and preload into dist/electron/{main,preload}.cjs (Electron runs JS, not
// TypeScript). `electron` stays external; everything else (the daemon client, zod) is bundled.
// import.meta.url is rewritten to the bundle's own file URL so paths resolved from it work.
import { build } from 'esbuild';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const common = {
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node22',
  external: ['electron', 'bufferutil', 'utf-8-validate'],
  sourcemap: 'linked',
  logLevel: 'info',
  define: { 'import.meta.url': '__spritelyImportMetaUrl' },
  banner: { js: "const __spritelyImportMetaUrl = require('node:url').pathToFileURL(__filename).href;" },
};

await build({ ...common, entryPoints: [path.join(root, 'electron/main.ts')], outfile: path.join(root, 'dist/electron/main.cjs') });
// The preload runs sandboxed: only `electron` can be required, so it must be self-contained.
await build({ ...common, entryPoints: [path.join(root, 'electron/preload.ts')], outfile: path.join(root, 'dist/electron/preload.cjs'), platform: 'browser', format: 'cjs', sourcemap: false });
