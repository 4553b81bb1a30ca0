import { defineConfig } from 'vitest/config';

/**
 * Three projects: `unit` (pure logic, fakes allowed, fast), `vm` (real QEMU, real image, run one file
 * at a time: the machine has 2 cores) and `e2e` (real daemon + real QEMU + Debian's Chromium).
 */
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['vm/**/*.spec.ts', 'relay/**/*.spec.ts', 'electron/**/*.spec.ts', 'renderer/**/*.spec.{ts,tsx}', 'test/unit/**/*.test.ts', 'test/relay/**/*.test.ts'],
          environment: 'node',
          testTimeout: 30_000,
          // One module graph per worker instead of one per file: the 150 files' imports and setup
          // cost ~40 s on 2 cores otherwise. Specs keep no state at module level that another file
          // could see (each builds its own fixture), and vi.mock still applies per file.
          isolate: false,
        },
      },
      {
        test: {
          name: 'vm',
          include: ['test/vm/**/*.test.ts'],
          globalSetup: ['test/vm/global-setup.ts'],
          fileParallelism: false,
          testTimeout: 300_000,
          hookTimeout: 1_800_000,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          globalSetup: ['test/vm/global-setup.ts'],
          fileParallelism: false,
          testTimeout: 300_000,
          hookTimeout: 1_800_000,
        },
      },
    ],
  },
});
