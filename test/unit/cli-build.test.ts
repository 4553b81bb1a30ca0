/**
 * The built CLI (scripts/build-cli.mjs): when bin/spritely.js must rebuild, and that the bundle
 * really is split so `--version` and `--help` load only commander and the declarations — checked
 * twice: in the build's chunk graph, and by running the bundle with a module hook that records
 * every module Node resolves.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildCli, cliBundle, ROOT, staleReason, staticClosure, type CliManifest } from '../../scripts/build-cli.mjs';

const manifest = (inputs: Record<string, number>): CliManifest => ({ dir: 'b1', startedAt: 1000, inputs });

describe('staleReason', () => {
  const times: Record<string, number | null> = { 'vm/a.ts': 500, 'vm/b.ts': 600, 'package.json': 100 };
  const mtimeOf = (f: string) => times[f] ?? null;

  it('is fresh when every input has the time the build saw', () => {
    expect(staleReason(manifest({ 'vm/a.ts': 500, 'vm/b.ts': 600, 'package.json': 100 }), mtimeOf)).toBeNull();
  });
  it('wants a first build when there is none', () => {
    expect(staleReason(null, mtimeOf)).toBe('not built yet');
  });
  it('rebuilds when an input changed, newer or older (a checkout of an older branch)', () => {
    expect(staleReason(manifest({ 'vm/a.ts': 400, 'vm/b.ts': 600 }), mtimeOf)).toBe('vm/a.ts changed');
    expect(staleReason(manifest({ 'vm/a.ts': 500, 'vm/b.ts': 700 }), mtimeOf)).toBe('vm/b.ts changed');
  });
  it('rebuilds when an input is gone', () => {
    expect(staleReason(manifest({ 'vm/a.ts': 500, 'vm/gone.ts': 1 }), mtimeOf)).toBe('vm/gone.ts is gone');
  });
  it('rebuilds when an input changed while the build read it (recorded as -1)', () => {
    expect(staleReason(manifest({ 'vm/a.ts': -1 }), mtimeOf)).toBe('vm/a.ts changed');
  });
});

describe('cliBundle (the check bin/spritely.js makes on every call)', () => {
  let root: string;
  beforeAll(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'cli-bundle-'));
  });
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

  it('follows the manifest: missing, fresh, stale after an edit, gone when its files are', () => {
    const out = path.join(root, 'dist/cli');
    expect(cliBundle(root, out)).toEqual({ entry: null, stale: 'not built yet' });

    fs.mkdirSync(path.join(root, 'vm'), { recursive: true });
    fs.writeFileSync(path.join(root, 'vm/a.ts'), 'export {};');
    fs.mkdirSync(path.join(out, 'b1'), { recursive: true });
    fs.writeFileSync(path.join(out, 'b1/main.js'), '');
    const m = manifest({ 'vm/a.ts': fs.statSync(path.join(root, 'vm/a.ts')).mtimeMs });
    fs.writeFileSync(path.join(out, 'current.json'), JSON.stringify(m));
    expect(cliBundle(root, out)).toEqual({ entry: path.join(out, 'b1/main.js'), stale: null });

    const later = new Date(Date.now() + 5000);
    fs.utimesSync(path.join(root, 'vm/a.ts'), later, later);
    expect(cliBundle(root, out).stale).toBe('vm/a.ts changed');

    fs.rmSync(path.join(out, 'b1'), { recursive: true });
    expect(cliBundle(root, out)).toEqual({ entry: null, stale: 'its files are gone' });

    fs.writeFileSync(path.join(out, 'current.json'), '{"not":"a manifest"}');
    expect(cliBundle(root, out).stale).toBe('not built yet');
  });

});

describe('the bundle', () => {
  let outRoot: string;
  let built: Awaited<ReturnType<typeof buildCli>>;
  const heavy = [/node_modules\/zod\//, /node_modules\/ws\//, /node_modules\/undici\//, /node_modules\/@modelcontextprotocol\//, /^vm\/engine\//, /^vm\/api\//, /^vm\/daemon\//, /^vm\/ssh\//, /^vm\/qemu\//];

  beforeAll(async () => {
    // Inside the checkout (dist/ is ignored) so the bundle finds node_modules like the real one.
    outRoot = path.join(ROOT, 'dist', `cli-spec-${process.pid}`);
    built = await buildCli({ outRoot });
  }, 60_000);
  afterAll(() => fs.rmSync(outRoot, { recursive: true, force: true }));

  const out = (file: string) => path.relative(ROOT, file).split(path.sep).join('/');
  const chunkOf = (source: string) => Object.entries(built.metafile.outputs).find(([, v]) => v.entryPoint === source)?.[0];

  it('loads only commander and the declarations at start-up', () => {
    const c = staticClosure(built.metafile, out(built.entry));
    expect(c.inputs.filter((i) => !i.includes('node_modules/')).sort()).toEqual(['vm/cli/main.ts', 'vm/cli/program.ts', 'vm/errors.ts', 'vm/mcp/command.ts', 'vm/version.ts']);
    expect(new Set(c.inputs.filter((i) => i.includes('node_modules/')).map((i) => /node_modules\/([^/]+)/.exec(i)![1]))).toEqual(new Set(['commander']));
    expect(c.externals.filter((e) => !e.startsWith('node:'))).toEqual([]);
  });

  it('gives each command group its own chunk, without the daemon, ssh2, undici or the MCP SDK', () => {
    for (const group of ['sprite', 'exec', 'url', 'settings', 'checkpoint', 'daemon']) {
      const chunk = chunkOf(`vm/cli/${group}-commands.ts`);
      expect(chunk, group).toBeTruthy();
      const c = staticClosure(built.metafile, chunk!);
      expect(c.inputs.some((i) => i.endsWith('node_modules/zod/index.js')), `${group} talks to the daemon`).toBe(true);
      expect(c.inputs.filter((i) => /^vm\/(engine|daemon\/daemon|ssh|qemu)\b|undici|@modelcontextprotocol/.test(i)), group).toEqual([]);
      expect(c.externals, group).not.toContain('ssh2');
    }
  });

  it('keeps the daemon and the MCP server behind their own imports', () => {
    const daemon = staticClosure(built.metafile, chunkOf('vm/daemon/daemon.ts')!);
    expect(daemon.inputs).toContain('vm/engine/engine.ts');
    expect(daemon.externals).toContain('ssh2');
    const mcp = staticClosure(built.metafile, chunkOf('vm/mcp/server.ts')!);
    expect(mcp.inputs.some((i) => i.includes('@modelcontextprotocol/sdk'))).toBe(true);
    expect(mcp.inputs).not.toContain('vm/engine/engine.ts');
  });

  it('is found fresh right after the build, in a few milliseconds (bin/spritely.js checks on every call)', () => {
    expect(cliBundle(ROOT, outRoot)).toEqual({ entry: built.entry, stale: null });
    const t0 = performance.now();
    for (let i = 0; i < 10; i++) cliBundle(ROOT, outRoot);
    expect((performance.now() - t0) / 10).toBeLessThan(10);
  });

  it('records its own sources and the sentinels, not node_modules', () => {
    const inputs = Object.keys(built.manifest.inputs);
    expect(inputs).toEqual(expect.arrayContaining(['vm/cli/main.ts', 'vm/daemon/daemon.ts', 'scripts/build-cli.mjs', 'package.json']));
    expect(inputs.filter((i) => i.includes('node_modules/') && i !== 'node_modules/.package-lock.json')).toEqual([]);
  });

  it('runs --version and --help loading no module but main.js and its static chunks', () => {
    const hooks = path.join(outRoot, 'record-hooks.mjs');
    fs.writeFileSync(hooks, "import fs from 'node:fs';\nexport async function resolve(s, c, next) {\n  const r = await next(s, c);\n  fs.appendFileSync(process.env.RECORD_TO, r.url + '\\n');\n  return r;\n}\n");
    const register = path.join(outRoot, 'record.mjs');
    fs.writeFileSync(register, `import { register } from 'node:module';\nregister(${JSON.stringify(new URL(`file://${hooks}`).href)});\n`);
    const allowed = new Set(staticClosure(built.metafile, out(built.entry)).outputs.map((o) => new URL(`file://${path.join(ROOT, o)}`).href));
    for (const [args, expected] of [
      [['--version'], /^\d+\.\d+\.\d+\n$/],
      [['--help'], /ssh-config \[options\] \[name\]/],
      [['list', '--help'], /List sprites/],
    ] as const) {
      const log = path.join(outRoot, `loaded-${args.join('')}.txt`);
      const stdout = execFileSync(process.execPath, ['--import', register, built.entry, ...args], { env: { ...process.env, RECORD_TO: log }, encoding: 'utf8' });
      expect(stdout).toMatch(expected);
      const loaded = fs.readFileSync(log, 'utf8').trim().split('\n').filter((u) => !u.startsWith('node:') && u !== new URL(`file://${register}`).href);
      expect(loaded.filter((u) => !allowed.has(u)), args.join(' ')).toEqual([]);
      expect(loaded.filter((u) => heavy.some((h) => h.test(u)))).toEqual([]);
    }
  });
});
