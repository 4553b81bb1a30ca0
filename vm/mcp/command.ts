/**
 * Registers `spritely mcp` on the CLI. The MCP SDK (and its schema tooling) is imported only when
 * the command runs, so every other CLI command starts as fast as before.
 */
import type { Command } from 'commander';

export function registerMcpCommand(program: Command): void {
  program
    .command('mcp')
    .description('Serve the Model Context Protocol on stdio, for coding agents (see docs/mcp.md)')
    .action(async () => {
      const { runMcpStdio } = await import('./server.ts');
      await runMcpStdio();
    });
}
