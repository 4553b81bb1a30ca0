/**
 * The MCP tools, each a thin wrapper over one or two daemon API calls (the daemon stays the only
 * owner of VMs; this process holds no state but a socket path). Descriptions are written for the
 * model that reads them: when to checkpoint, what restore does, that sprites sleep and wake, what
 * the network allows. Every daemon error comes back as a tool result with `isError: true` and the
 * daemon's own sentence, so the model can read it and adapt instead of seeing a protocol failure.
 * `sprites.destroy` is deliberately not a tool: an agent must not delete the user's machines.
 */
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { registerCheckpointTools } from './checkpoint-tools.ts';
import type { DaemonCaller } from './daemon-link.ts';
import { registerExecFileTools } from './exec-file-tools.ts';
import { registerSpriteTools } from './sprite-tools.ts';
import { CHECKPOINT_NOTE, NETWORK_NOTE, SLEEP_NOTE, toolError, type Extra } from './tool-kit.ts';

export { checkpointInfo, spriteInfo, toolError } from './tool-kit.ts';

export interface ToolOptions {
  /** How often a long call reports progress to a client that asked for it (keeps its timeout from firing). */
  heartbeatMs?: number;
}

export const SERVER_INSTRUCTIONS = [
  'Spritely runs sprites: real Linux VMs (Debian 12, you are root) on the user\'s own machine, each with its own disk that persists until the user destroys it. Use them to run code, install tools, build and test software without touching the user\'s computer.',
  'Start with sprite_list; create a sprite with sprite_create if there is none to use (it takes seconds). Run commands with exec; read and write files with file_read, file_write and file_list.',
  CHECKPOINT_NOTE + ' A checkpoint captures the whole running machine (disk + RAM + processes); restoring first takes an automatic undo checkpoint.',
  SLEEP_NOTE,
  NETWORK_NOTE,
  'There is no tool to destroy a sprite: only the user deletes machines (`spritely destroy NAME`).',
].join('\n\n');

// ------------------------------------------------------------------ registration

export function registerTools(server: McpServer, daemon: DaemonCaller, opts: ToolOptions = {}): void {
  const heartbeatMs = opts.heartbeatMs ?? 10_000;

  /** Runs a tool body: errors become isError results; a long call sends progress if the client asked. */
  const run = async (extra: Extra, label: string, body: () => Promise<CallToolResult>): Promise<CallToolResult> => {
    const token = extra?._meta?.progressToken;
    const t0 = Date.now();
    const timer =
      token !== undefined
        ? setInterval(() => {
            const s = Math.round((Date.now() - t0) / 1000);
            extra.sendNotification({ method: 'notifications/progress', params: { progressToken: token, progress: s, message: `${label}: still running after ${s} s` } }).catch(() => {});
          }, heartbeatMs)
        : null;
    try {
      return await body();
    } catch (err) {
      return toolError(err);
    } finally {
      if (timer) clearInterval(timer);
    }
  };

  const ctx = { server, daemon, run };
  registerSpriteTools(ctx);
  registerExecFileTools(ctx);
  registerCheckpointTools(ctx);
}
