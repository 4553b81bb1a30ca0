#!/usr/bin/env node
/**
 * The built CLI. `spritely` is one program — the commands, the daemon (`spritely daemon run`) and
 * the MCP server (`spritely mcp`) — and compiling its TypeScript on every call (tsx) cost ~0.5 s
 * per command. This bundles vm/cli/main.ts with esbuild into dist/cli/<build>/, split into chunks
 * at every `await import()`, so a command loads only the code it runs (`--version` loads no zod,
 * no ssh2, no engine). It also answers, in a few stat calls, whether the bundle is older than its
 * sources: bin/spritely.js asks on every call and rebuilds when it is.
 *
 * Each build goes to a new directory and `dist/cli/current.json` (written last, atomically) names
 * it, so a process that started from the previous build still finds its chunks while a new one is
 * written; builds that are no longer current are removed after ten minutes.
 *
 * Kept external (loaded from node_modules as usual, never bundled):
 *   - ssh2: CommonJS that `require`s its optional native add-ons (its crypto binding, which our
 *     install does not build, and cpu-features) inside try/catch; bundled, those lookups would
 *     resolve against dist/ and the package's own fallbacks would be bypassed;
 *   - cpu-features, node-pty: native add-ons (.node files cannot be bundled);
 *   - bufferutil, utf-8-validate: optional native add-ons ws tries and does without.
 *
 *   node scripts/build-cli.mjs              build now
 *   node scripts/build-cli.mjs --if-stale   build only when the bundle is missing or stale
 *   node scripts/build-cli.mjs --report     build, then print what each command's chunk loads
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ENTRY = 'vm/cli/main.ts';
const EXTERNAL = ['ssh2', 'cpu-features', 'node-pty', 'bufferutil', 'utf-8-validate'];
/** Files that change what a build would produce without being one of its inputs. */
const SENTINELS = ['scripts/build-cli.mjs', 'package.json', 'tsconfig.json', 'node_modules/.package-lock.json'];
const MANIFEST = 'current.json';
const BANNER = [
  "import { createRequire as __spritelyCreateRequire } from 'node:module';",
  "import { fileURLToPath as __spritelyFileURLToPath } from 'node:url';",
  'const require = __spritelyCreateRequire(import.meta.url);',
  'const __spritelyFilename = __spritelyFileURLToPath(import.meta.url);',
  "const __spritelyDirname = __spritelyFileURLToPath(new URL('.', import.meta.url));",
].join('\n');
const OLD_BUILD_GRACE_MS = 10 * 60_000;

/** dist/cli of a checkout (or of a test's own output root). */
export function cliOutRoot(root = ROOT) {
  return path.join(root, 'dist/cli');
}

/** The manifest of the current build, or null when there is none (or it is unreadable). */
export function readManifest(outRoot = cliOutRoot()) {
  try {
    const m = JSON.parse(fs.readFileSync(path.join(outRoot, MANIFEST), 'utf8'));
    if (typeof m?.dir !== 'string' || typeof m.inputs !== 'object' || m.inputs === null) return null;
    return m;
  } catch {
    return null;
  }
}

/**
 * Why the build described by `manifest` must be redone, or null when it is fresh. A build records
 * the modification time of every input it read (the checkout's files, not node_modules: for those
 * the lockfile stands in); any difference — an edit, a checkout, a deleted file — makes it stale.
 * `mtimeOf(relPath)` returns a time in ms or null when the file is gone.
 */
export function staleReason(manifest, mtimeOf) {
  if (!manifest) return 'not built yet';
  for (const [file, mtime] of Object.entries(manifest.inputs)) {
    const now = mtimeOf(file);
    if (now === null) return `${file} is gone`;
    if (now !== mtime) return `${file} changed`;
  }
  return null;
}

/** The current build of a checkout: its entry file (null when there is none) and why it is stale (null when fresh). */
export function cliBundle(root = ROOT, outRoot = cliOutRoot(root)) {
  const manifest = readManifest(outRoot);
  const entry = manifest && path.join(outRoot, manifest.dir, 'main.js');
  if (entry && !fs.existsSync(entry)) return { entry: null, stale: 'its files are gone' };
  const stale = staleReason(manifest, (file) => {
    try {
      return fs.statSync(path.join(root, file)).mtimeMs;
    } catch {
      return null;
    }
  });
  return { entry, stale };
}

/**
 * What importing `output` (a path as the metafile names it) loads: it and every chunk it imports
 * statically, transitively (dynamic imports load only when their command runs), with the
 * modules bundled into them and the external packages they import.
 */
export function staticClosure(metafile, output) {
  const seen = new Set([output]);
  const externals = new Set();
  const todo = [output];
  while (todo.length) {
    for (const imp of metafile.outputs[todo.pop()].imports) {
      if (imp.kind !== 'import-statement') continue;
      if (imp.external) externals.add(imp.path);
      else if (!seen.has(imp.path)) {
        seen.add(imp.path);
        todo.push(imp.path);
      }
    }
  }
  const inputs = new Set([...seen].flatMap((o) => Object.keys(metafile.outputs[o].inputs)));
  return { outputs: [...seen], inputs: [...inputs], externals: [...externals] };
}

/**
 * Rewrites `import.meta.url` in the checkout's own modules to the URL the source file would have,
 * so paths they resolve from it (bin/spritely.js, dist/renderer, package.json, the image recipe)
 * land where they do when run from source. Relative, so the checkout can move.
 */
function sourceUrlPlugin(root, outdir) {
  return {
    name: 'source-import-meta-url',
    setup(b) {
      b.onLoad({ filter: /\.(ts|tsx|mts|js|mjs)$/ }, async (args) => {
        if (args.path.includes(`${path.sep}node_modules${path.sep}`) || !args.path.startsWith(root + path.sep)) return undefined;
        const text = await fs.promises.readFile(args.path, 'utf8');
        if (!text.includes('import.meta.url')) return undefined;
        const rel = path.relative(outdir, args.path).split(path.sep).join('/');
        const ext = path.extname(args.path).slice(1);
        const loader = ext === 'tsx' ? 'tsx' : ext === 'ts' || ext === 'mts' ? 'ts' : 'js';
        return { contents: text.replaceAll('import.meta.url', `new URL(${JSON.stringify(rel)}, import.meta.url).href`), loader };
      });
    },
  };
}

/** Builds the CLI into a new directory under `outRoot` and makes it current. Returns its entry, manifest and esbuild metafile. */
export async function buildCli({ root = ROOT, outRoot = cliOutRoot(root), logLevel = 'warning' } = {}) {
  const { build } = await import('esbuild');
  const startedAt = Date.now();
  const dir = `${startedAt.toString(36)}-${process.pid}`;
  const outdir = path.join(outRoot, dir);
  const result = await build({
    absWorkingDir: root,
    entryPoints: { main: path.join(root, ENTRY) },
    outdir,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    entryNames: '[name]',
    chunkNames: '[name]-[hash]',
    external: EXTERNAL,
    // Whitespace and syntax only: identifiers stay (function names in stack traces), and a third
    // less source to compile made `exec` start ~40 ms sooner. Line numbers: the linked source maps
    // (NODE_OPTIONS=--enable-source-maps), or SPRITELY_FROM_SOURCE=1.
    minifyWhitespace: true,
    minifySyntax: true,
    sourcemap: 'linked',
    metafile: true,
    logLevel,
    // CommonJS dependencies bundled into ES modules still call require() (Node's built-ins) and
    // read __filename (write-file-atomic names its temporary files with it); ES modules have neither.
    banner: { js: BANNER },
    define: { __filename: '__spritelyFilename', __dirname: '__spritelyDirname' },
    plugins: [sourceUrlPlugin(root, outdir)],
  });
  const inputs = {};
  const files = [...Object.keys(result.metafile.inputs).filter((f) => !f.startsWith('node_modules/') && !f.includes('/node_modules/')), ...SENTINELS];
  for (const file of files) {
    let mtime;
    try {
      mtime = fs.statSync(path.join(root, file)).mtimeMs;
    } catch {
      continue; // a sentinel this checkout does not have
    }
    // Changed while the build read it: record a time no file has, so the next call rebuilds.
    inputs[file] = mtime > startedAt ? -1 : mtime;
  }
  const manifest = { dir, startedAt, inputs };
  fs.writeFileSync(path.join(outdir, 'meta.json'), JSON.stringify(result.metafile));
  const tmp = path.join(outRoot, `${MANIFEST}.${process.pid}.tmp`);
  fs.writeFileSync(tmp, JSON.stringify(manifest, null, 1));
  fs.renameSync(tmp, path.join(outRoot, MANIFEST));
  removeOldBuilds(outRoot, dir);
  return { entry: path.join(outdir, 'main.js'), manifest, metafile: result.metafile };
}

function removeOldBuilds(outRoot, keep) {
  for (const e of fs.readdirSync(outRoot, { withFileTypes: true })) {
    if (!e.isDirectory() || e.name === keep) continue;
    const p = path.join(outRoot, e.name);
    try {
      if (Date.now() - fs.statSync(p).mtimeMs > OLD_BUILD_GRACE_MS) fs.rmSync(p, { recursive: true, force: true });
    } catch {
      /* another build removed it */
    }
  }
}

/** Builds when the bundle is missing or stale; `log` hears why. Returns the entry and whether it built. */
export async function ensureCliBuilt({ root = ROOT, log = () => {} } = {}) {
  const { entry, stale } = cliBundle(root);
  if (entry && !stale) return { entry, built: false };
  const t0 = Date.now();
  log(`building the CLI (${stale})…`);
  const r = await buildCli({ root });
  log(`built the CLI in ${Date.now() - t0} ms`);
  return { entry: r.entry, built: true };
}

/** One line per chunk a command starts from (main.js, then each `await import()`): what loading it loads. */
export function loadReport(metafile) {
  const starts = Object.entries(metafile.outputs).filter(([o, v]) => o.endsWith('.js') && (v.entryPoint || o.endsWith('/main.js')));
  const lines = starts.map(([o, v]) => {
    const c = staticClosure(metafile, o);
    const kb = c.outputs.reduce((n, x) => n + metafile.outputs[x].bytes, 0) / 1024;
    const packages = new Set(c.inputs.map((i) => /node_modules\/((@[^/]+\/)?[^/]+)/.exec(i)?.[1]).filter(Boolean));
    const from = v.entryPoint ?? o;
    return `${from.padEnd(30)} ${kb.toFixed(0).padStart(5)} KiB  ${[...packages, ...c.externals.filter((e) => !e.startsWith('node:'))].join(' ') || '-'}`;
  });
  return [`${'chunk (and what it imports)'.padEnd(30)} ${'size'.padStart(9)}  packages`, ...lines];
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const log = (m) => process.stderr.write(`build-cli: ${m}\n`);
  if (process.argv.includes('--if-stale')) await ensureCliBuilt({ log });
  else {
    const t0 = Date.now();
    const r = await buildCli();
    log(`${path.relative(ROOT, r.entry)} in ${Date.now() - t0} ms`);
    if (process.argv.includes('--report')) console.log(loadReport(r.metafile).join('\n'));
  }
}
