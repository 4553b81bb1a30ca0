/**
 * How the MCP server reaches the daemon: the CLI's `client()` (which starts the daemon in the
 * background when it is not running), called lazily on the first tool call — so the MCP client's
 * handshake never waits on a daemon start — and again when the daemon went away between calls
 * (stopped, upgraded). Only a failure to *connect* is retried: then the request never reached
 * the daemon, so nothing (an exec, a restore) can have happened twice.
 */
import type { ApiClient } from '../api/client.ts';
import type { MethodInput, MethodName, MethodOutput } from '../api/contract.ts';

export interface DaemonCaller {
  call<M extends MethodName>(method: M, input: MethodInput<M>, opts?: { timeoutMs?: number }): Promise<MethodOutput<M>>;
}

type Connect = () => Promise<Pick<ApiClient, 'call'>>;

const NOT_CONNECTED = new Set(['ECONNREFUSED', 'ENOENT']);

/** True when the request could not even be sent (no daemon behind the socket). */
export function isNotConnected(err: unknown): boolean {
  const e = err as NodeJS.ErrnoException & { syscall?: string };
  return !!e && NOT_CONNECTED.has(e.code ?? '') && (e.syscall === undefined || e.syscall === 'connect');
}

export class DaemonLink implements DaemonCaller {
  private client: Promise<Pick<ApiClient, 'call'>> | null = null;
  constructor(private readonly connect: Connect) {}

  private api(): Promise<Pick<ApiClient, 'call'>> {
    if (!this.client) {
      this.client = this.connect();
      this.client.catch(() => (this.client = null));
    }
    return this.client;
  }

  async call<M extends MethodName>(method: M, input: MethodInput<M>, opts: { timeoutMs?: number } = {}): Promise<MethodOutput<M>> {
    const api = await this.api();
    try {
      return await api.call(method, input, opts);
    } catch (err) {
      if (!isNotConnected(err)) throw err;
      this.client = null;
      return (await this.api()).call(method, input, opts);
    }
  }
}
