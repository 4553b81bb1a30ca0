/**
 * MCP overhead: on one sprite of a real daemon, N round trips (client call → result) of
 *   - the MCP tool `exec` with argv ["true"], through the SDK's Client over stdio to `spritely mcp`;
 *   - `sprites.exec` ["true"] called directly through the API client;
 *   - `sprites.exec` with the request the MCP tool really sends (["true"] with timeoutMs, which the
 *     daemon enforces with one more process in the guest), to split MCP's cost into transport and
 *     guest work;
 *   - `sprite_list` vs `sprites.list` (no VM involved: the transport alone),
 * interleaved call by call so load from elsewhere hits every variant alike. Prints median, p90, min.
 *   node bin/run-ts.js bench/mcp.ts [N=20]
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { BIN, startDaemon } from '../test/vm/harness.ts';
import { median } from './stats.ts';

const N = Number(process.argv[2] ?? 20);

function p90(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.max(0, Math.ceil(0.9 * s.length) - 1)];
}

async function time(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

const d = await startDaemon();
let client: Client | null = null;
try {
  const created = await d.api.call('sprites.create', { name: 'bench' }, { timeoutMs: 900_000 });
  const env = Object.fromEntries(Object.entries(d.env).filter((e): e is [string, string] => e[1] !== undefined));
  client = new Client({ name: 'bench', version: '1' });
  const tConnect = await time(() => client!.connect(new StdioClientTransport({ command: process.execPath, args: [BIN, 'mcp'], env, stderr: 'inherit' })));
  const mcp = client;

  const variants: Record<string, () => Promise<unknown>> = {
    'mcp exec ["true"]': async () => {
      const r = await mcp.callTool({ name: 'exec', arguments: { name: 'bench', argv: ['true'] } }, undefined, { timeout: 120_000 });
      if (r.isError || (r.structuredContent as { exitCode: number }).exitCode !== 0) throw new Error(`exec failed: ${JSON.stringify(r)}`);
    },
    'api sprites.exec ["true"]': () => d.api.call('sprites.exec', { name: 'bench', argv: ['true'] }, { timeoutMs: 120_000 }),
    'api sprites.exec ["true"] + timeoutMs': () => d.api.call('sprites.exec', { name: 'bench', argv: ['true'], timeoutMs: 300_000, maxOutputBytes: 65536 }, { timeoutMs: 120_000 }),
    'mcp sprite_list': () => mcp.callTool({ name: 'sprite_list', arguments: {} }),
    'api sprites.list': () => d.api.call('sprites.list'),
  };
  // Warm-up: the first exec after a create waits for the guest's sshd; the first MCP call connects to the daemon.
  for (let i = 0; i < 3; i++) for (const fn of Object.values(variants)) await fn();

  const samples: Record<string, number[]> = Object.fromEntries(Object.keys(variants).map((k) => [k, []]));
  for (let i = 0; i < N; i++) for (const [k, fn] of Object.entries(variants)) samples[k].push(await time(fn));

  const row = (k: string) => ({ medianMs: +median(samples[k]).toFixed(1), p90Ms: +p90(samples[k]).toFixed(1), minMs: +Math.min(...samples[k]).toFixed(1) });
  const result = {
    n: N,
    accel: created.sprite.accel,
    mcpConnectMs: Math.round(tConnect),
    ...Object.fromEntries(Object.keys(variants).map((k) => [k, row(k)])),
    execOverheadMedianMs: +(median(samples['mcp exec ["true"]']) - median(samples['api sprites.exec ["true"]'])).toFixed(1),
    execTransportOverheadMedianMs: +(median(samples['mcp exec ["true"]']) - median(samples['api sprites.exec ["true"] + timeoutMs'])).toFixed(1),
    listOverheadMedianMs: +(median(samples['mcp sprite_list']) - median(samples['api sprites.list'])).toFixed(1),
  };
  console.log(JSON.stringify(result, null, 2));
} finally {
  await client?.close().catch(() => {});
  await d.cleanup();
}
