#!/usr/bin/env node
// The `spritely` command (the CLI, the daemon and the MCP server). It runs the built bundle in
// dist/cli (scripts/build-cli.mjs), rebuilding it first when it is missing or older than its
// sources (a pull, an edit: about a second, once). Where it cannot be built (no esbuild; a
// read-only checkout) the TypeScript runs through tsx instead, with a one-line warning; where the
// build script is not there at all (the desktop package ships bin/ and vm/ only) it runs tsx
// silently, as before. SPRITELY_FROM_SOURCE=1 always runs the TypeScript (stack traces in .ts).
import { pathToFileURL } from 'node:url';

async function fromSource() {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../vm/cli/main.ts');
}

async function buildScript() {
  try {
    return await import('../scripts/build-cli.mjs');
  } catch (err) {
    if (err?.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('build-cli.mjs')) return null;
    throw err;
  }
}

const build = process.env.SPRITELY_FROM_SOURCE === '1' ? null : await buildScript();
if (!build) await fromSource();
else {
  let { entry, stale } = build.cliBundle();
  if (stale) {
    process.stderr.write(`spritely: building the CLI (${stale})…\n`);
    try {
      entry = (await build.buildCli({ logLevel: 'silent' })).entry;
    } catch (err) {
      entry = null;
      const why = err?.errors?.[0]?.text ?? String(err?.message ?? err).split('\n')[0];
      process.stderr.write(`spritely: could not build the CLI (${why}); running it from source through tsx (slower).\n`);
    }
  }
  if (entry) await import(pathToFileURL(entry).href);
  else await fromSource();
}
