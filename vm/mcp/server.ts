/**
 * `spritely mcp`: an MCP server on stdio, so coding agents (Claude Code, Cursor, …) can create
 * sprites, run commands, read and write files and checkpoint/restore through the tools in
 * tools.ts. Why a separate front end and not a second owner: it is one more client of the
 * daemon's API over the owner-only unix socket (the daemon is started on first use like for every
 * CLI command), so VMs keep one owner, the same validation and the same locks as the CLI and the UI.
 * stdout belongs to the protocol: nothing else may write there.
 */
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { ensureDaemon } from '../daemon/autostart.ts';
import { selectedHost } from '../hosts/host-target.ts';
import { layout } from '../paths.ts';
import { VERSION } from '../version.ts';
import { DaemonLink, type DaemonCaller } from './daemon-link.ts';
import { registerTools, SERVER_INSTRUCTIONS, type ToolOptions } from './tools.ts';

export function createMcpServer(daemon: DaemonCaller, opts: ToolOptions = {}): McpServer {
  const server = new McpServer({ name: 'spritely', title: 'Spritely', version: VERSION }, { instructions: SERVER_INSTRUCTIONS, capabilities: { tools: {} } });
  registerTools(server, daemon, opts);
  return server;
}

/** Serves MCP on this process's stdin/stdout until the client closes stdin. */
export async function runMcpStdio(): Promise<void> {
  // `spritely mcp --host NAME`: the same tools on a remote host's sprites, through this computer's daemon.
  const host = selectedHost();
  const daemon = new DaemonLink(async () => (await ensureDaemon(layout())).forHost(host));
  const server = createMcpServer(daemon);
  const transport = new StdioServerTransport();
  const closed = new Promise<void>((resolve) => {
    transport.onclose = () => resolve();
    process.stdin.once('end', () => resolve());
    process.stdin.once('close', () => resolve());
  });
  await server.connect(transport);
  await closed;
  await server.close().catch(() => {});
}
