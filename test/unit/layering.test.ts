/**
 * The layering of the code, checked on every import (type-only ones included) in vm/, relay/,
 * electron/ and renderer/. Each file belongs to a layer; an import may go down or stay level, never
 * up, and the units (directories, or the parts of one listed apart below) must not import each
 * other in a cycle. Also: only electron/ imports `electron`; vm/ imports neither `electron`, React
 * nor the renderer; relay/ stands alone (it is deployed on its own); the renderer takes nothing but
 * types from vm/ and electron/ (zod and Node stay out of its bundle), but for import-free protocol
 * modules both sides share (SHARED_WITH_RENDERER).
 *
 * To place a new directory, add it to LAYERS; the test says which file is unplaced.
 */
import fs from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../..');

/**
 * Layers, bottom to top. A unit is a path prefix (a directory ending in `/`, or a file name without
 * its extension, which takes its spec along); the most specific prefix decides a file's unit. Units on one layer may import each other (no cycle).
 */
const LAYERS: { name: string; units: string[] }[] = [
  { name: 'leaves', units: ['vm/errors', 'vm/names', 'vm/paths', 'vm/version', 'vm/json-lines', 'vm/line-splitter', 'vm/text-format', 'vm/safe-text', 'vm/store/atomic-json'] },
  { name: 'store', units: ['vm/store/'] },
  { name: 'driver interface', units: ['vm/driver/driver.ts'] },
  { name: 'mechanisms: drivers, guest protocols, SSH, egress, the relay program', units: ['vm/driver/', 'vm/qemu/', 'vm/guest/', 'vm/ssh/', 'vm/net/', 'relay/'] },
  { name: 'images, terminals, checkpoints', units: ['vm/images/', 'vm/terminals/', 'vm/checkpoints/'] },
  { name: 'engine', units: ['vm/engine/'] },
  // vm/net/ holds mechanisms (the egress proxy and its policy) and, listed apart, two services that
  // use the engine; moving those two to a directory of their own would make this entry unnecessary.
  { name: 'services above the engine', units: ['vm/net/url-proxy', 'vm/net/relay-link'] },
  { name: 'API', units: ['vm/api/'] },
  // Remote hosts: a service above the API (it passes API calls to other daemons, through the
  // contract and the API client); the server knows it only as the RemoteHosts interface.
  { name: 'remote hosts', units: ['vm/hosts/'] },
  { name: 'daemon, CLI, MCP', units: ['vm/daemon/', 'vm/cli/', 'vm/mcp/'] },
  { name: 'desktop shell and UI', units: ['electron/', 'renderer/'] },
];

const SCANNED = ['vm', 'relay', 'electron', 'renderer'];

/** Protocol modules both the daemon and the page bundle: pure constants and types, no imports. */
const SHARED_WITH_RENDERER = ['vm/api/ui-protocol.ts'];

interface Edge {
  from: string;
  to: string;
  /** The module specifier as written. */
  spec: string;
  typeOnly: boolean;
}

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(path.join(ROOT, dir), { withFileTypes: true })) {
    const rel = `${dir}/${e.name}`;
    if (e.name === 'node_modules' || e.name === 'dist' || e.name.startsWith('.')) continue;
    if (e.isDirectory()) out.push(...sourceFiles(rel));
    else if (/\.(ts|tsx|mts)$/.test(e.name) && !e.name.endsWith('.d.ts')) out.push(rel);
  }
  return out;
}

/** Every module specifier a file names: imports, re-exports, dynamic import(), import = require(). */
function importsOf(file: string): { spec: string; typeOnly: boolean }[] {
  const text = fs.readFileSync(path.join(ROOT, file), 'utf8');
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, false, file.endsWith('x') ? ts.ScriptKind.TSX : ts.ScriptKind.TS);
  const out: { spec: string; typeOnly: boolean }[] = [];
  const visit = (node: ts.Node) => {
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier)) {
      const c = node.importClause;
      const allTypes = !!c && (c.isTypeOnly || (!c.name && !!c.namedBindings && ts.isNamedImports(c.namedBindings) && c.namedBindings.elements.length > 0 && c.namedBindings.elements.every((e) => e.isTypeOnly)));
      out.push({ spec: node.moduleSpecifier.text, typeOnly: allTypes });
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      const allTypes = node.isTypeOnly || (!!node.exportClause && ts.isNamedExports(node.exportClause) && node.exportClause.elements.length > 0 && node.exportClause.elements.every((e) => e.isTypeOnly));
      out.push({ spec: node.moduleSpecifier.text, typeOnly: allTypes });
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword && node.arguments[0] && ts.isStringLiteral(node.arguments[0])) {
      out.push({ spec: node.arguments[0].text, typeOnly: false });
    } else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference) && ts.isStringLiteral(node.moduleReference.expression)) {
      out.push({ spec: node.moduleReference.expression.text, typeOnly: node.isTypeOnly });
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument) && ts.isStringLiteral(node.argument.literal)) {
      out.push({ spec: node.argument.literal.text, typeOnly: true });
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

function resolve(from: string, spec: string): string | null {
  const base = path.posix.join(path.posix.dirname(from), spec);
  const candidates = [base, base.replace(/\.js$/, '.ts'), base.replace(/\.js$/, '.tsx'), `${base}.ts`, `${base}.tsx`, `${base}/index.ts`];
  return candidates.find((c) => fs.existsSync(path.join(ROOT, c)) && fs.statSync(path.join(ROOT, c)).isFile()) ?? null;
}

function unitOf(file: string): { unit: string; layer: number } | null {
  let best: { unit: string; layer: number } | null = null;
  LAYERS.forEach((l, layer) => {
    for (const u of l.units) if (file.startsWith(u) && (!best || u.length > best.unit.length)) best = { unit: u, layer };
  });
  return best;
}

function walk(): { files: string[]; edges: Edge[]; packages: { from: string; spec: string; typeOnly: boolean }[]; unresolved: string[] } {
  const files = SCANNED.flatMap((d) => sourceFiles(d));
  const edges: Edge[] = [];
  const packages: { from: string; spec: string; typeOnly: boolean }[] = [];
  const unresolved: string[] = [];
  for (const from of files) {
    for (const { spec, typeOnly } of importsOf(from)) {
      if (spec.startsWith('.')) {
        const to = resolve(from, spec);
        if (to) edges.push({ from, to, spec, typeOnly });
        else if (!/\.(css|svg|png|html)$/.test(spec)) unresolved.push(`${from}: ${spec}`);
      } else if (!spec.startsWith('node:')) packages.push({ from, spec, typeOnly });
    }
  }
  return { files, edges, packages, unresolved };
}

const { files, edges, packages, unresolved } = walk();

/** A cycle in a directed graph, as a list of nodes, or null. */
function findCycle(graph: Map<string, Set<string>>): string[] | null {
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const dfs = (n: string): string[] | null => {
    state.set(n, 'open');
    stack.push(n);
    for (const m of graph.get(n) ?? []) {
      if (state.get(m) === 'open') return [...stack.slice(stack.indexOf(m)), m];
      if (!state.has(m)) {
        const c = dfs(m);
        if (c) return c;
      }
    }
    stack.pop();
    state.set(n, 'done');
    return null;
  };
  for (const n of graph.keys()) {
    if (state.has(n)) continue;
    const c = dfs(n);
    if (c) return c;
  }
  return null;
}

describe('layering', () => {
  it('finds the code it checks, and every relative import resolves', () => {
    expect(files.length).toBeGreaterThan(150);
    expect(edges.length).toBeGreaterThan(300);
    expect(unresolved).toEqual([]);
  });

  it('places every file in a layer', () => {
    expect(files.filter((f) => !unitOf(f))).toEqual([]);
  });

  it('no import goes up a layer', () => {
    const up = edges
      .map((e) => ({ e, a: unitOf(e.from), b: unitOf(e.to) }))
      .filter(({ a, b }) => a && b && b.layer > a.layer)
      .map(({ e, a, b }) => `${e.from} (${LAYERS[a!.layer].name}) imports ${e.to} (${LAYERS[b!.layer].name})`);
    expect(up).toEqual([]);
  });

  it('no cycle between units (directories, and the parts of vm/net listed apart)', () => {
    const graph = new Map<string, Set<string>>();
    for (const e of edges) {
      const a = unitOf(e.from)?.unit;
      const b = unitOf(e.to)?.unit;
      if (!a || !b || a === b) continue;
      if (!graph.has(a)) graph.set(a, new Set());
      graph.get(a)!.add(b);
    }
    const cycle = findCycle(graph);
    const where = cycle ? cycle.slice(0, -1).map((u, i) => `${u} -> ${cycle[i + 1]}: ${edges.find((e) => unitOf(e.from)?.unit === u && unitOf(e.to)?.unit === cycle[i + 1])!.from}`) : [];
    expect(where).toEqual([]);
  });

  it('no cycle between the files of vm/', () => {
    const graph = new Map<string, Set<string>>();
    for (const e of edges.filter((x) => x.from.startsWith('vm/') && x.to.startsWith('vm/'))) {
      if (!graph.has(e.from)) graph.set(e.from, new Set());
      graph.get(e.from)!.add(e.to);
    }
    expect(findCycle(graph) ?? []).toEqual([]);
  });

  it('only electron/ imports electron; vm/ imports neither electron, React nor the renderer', () => {
    const electron = packages.filter((p) => (p.spec === 'electron' || p.spec.startsWith('electron/')) && !p.from.startsWith('electron/'));
    expect(electron.map((p) => `${p.from}: ${p.spec}`)).toEqual([]);
    const ui = packages.filter((p) => p.from.startsWith('vm/') && /^(react|react-dom)(\/|$)/.test(p.spec));
    expect(ui.map((p) => `${p.from}: ${p.spec}`)).toEqual([]);
    expect(edges.filter((e) => e.from.startsWith('vm/') && (e.to.startsWith('renderer/') || e.to.startsWith('electron/'))).map((e) => `${e.from} -> ${e.to}`)).toEqual([]);
  });

  it('relay/ stands alone', () => {
    expect(edges.filter((e) => e.from.startsWith('relay/') && !e.to.startsWith('relay/')).map((e) => `${e.from} -> ${e.to}`)).toEqual([]);
  });

  it('the renderer takes only types from vm/ and electron/ (its specs and test helpers aside), or a shared protocol module that imports nothing', () => {
    const shipped = (f: string) => f.startsWith('renderer/src/') && !/\.spec\.tsx?$/.test(f) && !f.startsWith('renderer/src/testing/');
    for (const f of SHARED_WITH_RENDERER) expect(importsOf(f), `${f} must import nothing to be bundled by the renderer`).toEqual([]);
    const values = edges.filter((e) => shipped(e.from) && (e.to.startsWith('vm/') || e.to.startsWith('electron/')) && !e.typeOnly && !SHARED_WITH_RENDERER.includes(e.to));
    expect(values.map((e) => `${e.from} -> ${e.to}`)).toEqual([]);
    expect(packages.filter((p) => shipped(p.from) && p.spec === 'zod' && !p.typeOnly).map((p) => p.from)).toEqual([]);
  });
});
