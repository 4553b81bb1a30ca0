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
