/**
 * What every MCP tool shares: the shapes of sprites and checkpoints as tools return them, name and
 * policy checks made before the daemon is asked, a daemon error as a result the model reads, and the
 * notes the tool descriptions and the server's instructions repeat. The tools themselves are in
 * sprite-tools.ts, exec-file-tools.ts and checkpoint-tools.ts; tools.ts registers them.
 */
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult, ServerNotification, ServerRequest } from '@modelcontextprotocol/sdk/types.js';
import type { RequestHandlerExtra } from '@modelcontextprotocol/sdk/shared/protocol.js';
import { z } from 'zod';
import { type Checkpoint, type Sprite } from '../api/contract.ts';
import { SpritelyError } from '../errors.ts';
import { spriteNameProblem } from '../names.ts';
import { agentPolicyProblem } from '../net/egress-policy.ts';
import type { DaemonCaller } from './daemon-link.ts';

export type Extra = RequestHandlerExtra<ServerRequest, ServerNotification>;

/** Runs a tool body: errors become isError results; a long call sends progress if the client asked. */
export type Run = (extra: Extra, label: string, body: () => Promise<CallToolResult>) => Promise<CallToolResult>;

/** What a group of tools is registered with. */
export interface ToolContext {
  server: McpServer;
  daemon: DaemonCaller;
  run: Run;
}

// ------------------------------------------------------------------ shared shapes

export const name = z.string().describe('The sprite\'s name (see sprite_list), a DNS label: a-z, 0-9 and "-".');
export const checkpointId = z.string().describe('A checkpoint id: v1, v2, … (see checkpoint_list).');

export const SpriteInfo = z.object({
  name: z.string(),
  state: z.string().describe('running, sleeping (RAM saved to disk; wakes on use), stopped or crashed'),
  operation: z.string().nullable().describe('what the daemon is doing to it right now, if anything'),
  memoryMiB: z.number(),
  cpus: z.number(),
  network: z.string().describe('network policy: internet, none or allow=HOST,…'),
  urlPort: z.number().describe('the port inside the sprite its local URL forwards to'),
  uptimeSeconds: z.number().nullable(),
  createdAt: z.string(),
  lastError: z.string().nullable(),
});
export type SpriteInfo = z.infer<typeof SpriteInfo>;

export const CheckpointInfo = z.object({
  id: z.string(),
  parent: z.string().nullable(),
  comment: z.string(),
  createdAt: z.string(),
  auto: z.boolean().describe('taken automatically (before a restore)'),
  memory: z.boolean().describe('true: RAM + disk (running processes come back); false: disk only'),
  bytes: z.number(),
  current: z.boolean().describe('the machine descends from this one'),
});
export type CheckpointInfo = z.infer<typeof CheckpointInfo>;

export function spriteInfo(s: Sprite): SpriteInfo {
  return {
    name: s.name,
    state: s.state,
    operation: s.operation,
    memoryMiB: s.memoryMiB,
    cpus: s.cpus,
    network: s.network,
    urlPort: s.urlPort,
    uptimeSeconds: s.uptimeSeconds,
    createdAt: s.createdAt,
    lastError: s.lastError,
  };
}

export function checkpointInfo(c: Checkpoint): CheckpointInfo {
  return { id: c.id, parent: c.parent, comment: c.comment, createdAt: c.createdAt, auto: c.auto, memory: c.memory, bytes: c.bytes, current: c.current };
}

export function checkName(n: string): string {
  const problem = spriteNameProblem(n);
  if (problem) throw new SpritelyError('invalid_argument', `Invalid sprite name: ${problem}.`);
  return n;
}

/** An agent may only narrow a sprite's network (vm/net/egress-policy.ts); refused before the daemon is asked. */
export function checkAgentNetwork(policy: string): string {
  const problem = agentPolicyProblem(policy);
  if (problem) throw new SpritelyError('invalid_argument', `Network policy refused: ${problem}`);
  return policy;
}

/** A daemon error (or any failure) as a result the model reads. */
export function toolError(err: unknown): CallToolResult {
  let text: string;
  if (err instanceof SpritelyError) text = `Error (${err.code}): ${err.message}`;
  else {
    const e = err as NodeJS.ErrnoException;
    const msg = e?.message ?? String(err);
    text = e?.code === 'ECONNREFUSED' || e?.code === 'ENOENT' ? `Error: cannot reach the spritely daemon (${msg}). The user can check it with \`spritely daemon status\`.` : `Error: ${msg}`;
  }
  return { content: [{ type: 'text', text }], isError: true };
}

export function ok<T extends Record<string, unknown>>(text: string, structured: T): CallToolResult {
  return { content: [{ type: 'text', text }], structuredContent: structured };
}

// ------------------------------------------------------------------ descriptions

export const NETWORK_NOTE =
  'Networking is restricted by a policy the user controls: the default `internet` allows public internet addresses only (never this host, its LAN or link-local/cloud metadata); the sprite resolves names and opens TCP connections of any protocol itself (ssh, git, database clients, fetch), each decided on the host; UDP other than DNS is refused, and a refused connection is reset at once (a refused name gets REFUSED). `none` blocks everything; `allow=HOST,*.DOMAIN` allows only those names, at public addresses. An agent may choose a narrower policy when creating a sprite, never a wider one; the policy can only be changed on the host (`spritely net set NAME POLICY`): if a download is refused, tell the user.';

export const SLEEP_NOTE = 'Sprites go to sleep when idle (RAM saved to disk, no CPU) and wake on their own when used (exec, file tools, their URL): no need to wake them first.';

export const CHECKPOINT_NOTE =
  'Take a checkpoint (checkpoint_create, or checkpoint_before on exec) before anything risky — installing or upgrading packages, editing system files, running migrations or untrusted code — so it can be undone exactly with checkpoint_restore.';
