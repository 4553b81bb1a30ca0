/**
 * The commands for people and agents that move files and open doors (`cp`, `ssh-config`,
 * `ssh-proxy`), registered on the CLI in one call. See docs/agents.md.
 */
import type { Command } from 'commander';
import type { ApiClient } from '../api/client.ts';
import { registerCpCommand } from './agent-cp.ts';
import { registerSshCommands } from './agent-ssh.ts';

export { bareCheckpointFlag, checkpointBefore } from './agent-checkpoint.ts';

export function registerAgentCommands(program: Command, client: () => Promise<ApiClient>): void {
  registerCpCommand(program, client);
  registerSshCommands(program, client);
}
