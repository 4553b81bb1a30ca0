/**
 * Builds the renderer into dist/renderer (served by the daemon at `/`, and loaded by Electron
 * from there). The API's routes are generated here from the daemon's contract, so the bundle
 * knows every method without shipping zod: `virtual:spritely-routes`.
 *
 *   npx vite build --config renderer/vite.config.ts
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import react from '@vitejs/plugin-react';
import { defineConfig, type Plugin } from 'vite';
import { methods } from '../vm/api/contract.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const VIRTUAL = 'virtual:spritely-routes';

export function contractRoutes(): Record<string, { http: string; path: string }> {
  return Object.fromEntries(Object.entries(methods).map(([name, def]) => [name, { http: def.http, path: def.path }]));
}

function spritelyRoutes(): Plugin {
  return {
    name: 'spritely-routes',
    resolveId: (id) => (id === VIRTUAL ? '\0' + VIRTUAL : null),
    load: (id) => (id === '\0' + VIRTUAL ? `export const routes = ${JSON.stringify(contractRoutes())};` : null),
  };
}

export default defineConfig({
  root: here,
  base: '/',
  plugins: [react(), spritelyRoutes()],
  build: {
    outDir: path.resolve(here, '../dist/renderer'),
    emptyOutDir: true,
    sourcemap: false,
    chunkSizeWarningLimit: 1200,
  },
});
