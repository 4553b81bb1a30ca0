// Types of scripts/build-cli.mjs for the TypeScript that imports it (tests, the VM tests' global setup).
import type { Metafile } from 'esbuild';

export interface CliManifest {
  /** The build's directory under dist/cli. */
  dir: string;
  startedAt: number;
  /** Every input (relative to the checkout) with the modification time the build saw; -1 = changed during the build. */
  inputs: Record<string, number>;
}

export const ROOT: string;
export function cliOutRoot(root?: string): string;
export function readManifest(outRoot?: string): CliManifest | null;
export function staleReason(manifest: CliManifest | null, mtimeOf: (file: string) => number | null): string | null;
export function cliBundle(root?: string, outRoot?: string): { entry: string | null; stale: string | null };
export function buildCli(opts?: { root?: string; outRoot?: string; logLevel?: 'silent' | 'error' | 'warning' | 'info' }): Promise<{ entry: string; manifest: CliManifest; metafile: Metafile }>;
export function ensureCliBuilt(opts?: { root?: string; log?: (message: string) => void }): Promise<{ entry: string; built: boolean }>;
export function staticClosure(metafile: Metafile, output: string): { outputs: string[]; inputs: string[]; externals: string[] };
