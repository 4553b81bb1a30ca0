/**
 * One SSH connection per running sprite, kept warm, with channels multiplexed on it (terminals
 * and exec). Why ssh2 (pure JS) rather than the system `ssh` under node-pty: channels on one
 * in-process connection cost no process and no handshake each (a handshake is ~1.3 s in a TCG
 * guest), PTY size and exit codes are first-class, and flow control is plain stream pause/resume.
 * The host key is pinned to the one the engine injected, so nothing else can answer for a sprite.
 */
import { Client, type ClientChannel, type PseudoTtyOptions } from 'ssh2';
import { publicKeyBlob } from './keys.ts';

/** How long one SSH connection attempt may take to reach `ready` (a TCG handshake takes 1–3 s, more on a loaded machine). */
const ATTEMPT_TIMEOUT_MS = 15_000;
/** After this long without a connection, `onStuck` is asked to look into the guest (once per connect). */
export const STUCK_AFTER_MS = 10_000;

export interface SshLinkOptions {
  name: string;
  port: number;
  privateKey: string;
  hostKeyPub: string;
  log?: (msg: string) => void;
  /**
   * Called once when connecting has failed for `STUCK_AFTER_MS`: the engine asks the guest over its
   * agent (no network needed) why, and repairs what it can; retries go on meanwhile.
   */
  onStuck?: () => Promise<void>;
}

export function shellQuote(s: string): string {
  if (/^[A-Za-z0-9_\-+=/.,:@%]+$/.test(s)) return s;
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

/** The command line an exec request sends: `cd DIR && exec env -- K=V argv…` with every word quoted. */
export function buildRemoteCommand(argv: string[], opts: { cwd?: string; env?: Record<string, string> } = {}): string {
  if (argv.length === 0) throw new Error('nothing to run');
  const parts: string[] = [];
  if (opts.cwd) parts.push(`cd ${shellQuote(opts.cwd)} &&`);
  parts.push('exec');
  const env = Object.entries(opts.env ?? {});
  if (env.length) {
    for (const [k] of env) if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw new Error(`invalid environment variable name: ${JSON.stringify(k)}`);
    // `--` first: GNU env stops parsing options there; after an assignment it would be the command.
    parts.push('env', '--', ...env.map(([k, v]) => shellQuote(`${k}=${v}`)));
  }
  parts.push(...argv.map(shellQuote));
  return parts.join(' ');
}

/** What the engine and its clients use of a link (the engine's specs pass a fake). */
export type SshChannels = Pick<SshLink, 'ready' | 'exec' | 'shell' | 'close'>;

export class SshLink {
  private client: Client | null = null;
  private connecting: Promise<Client> | null = null;
  private closed = false;

  constructor(private readonly opts: SshLinkOptions) {}

  /** A ready connection, connecting (and retrying until `timeoutMs`) if there is none. */
  ready(timeoutMs = 30_000): Promise<Client> {
    if (this.closed) return Promise.reject(new Error('SSH link closed'));
    if (this.client) return Promise.resolve(this.client);
    if (!this.connecting) {
      this.connecting = this.connectWithRetry(Date.now() + timeoutMs).finally(() => (this.connecting = null));
    }
    return this.connecting;
  }

  private async connectWithRetry(deadline: number): Promise<Client> {
    let lastErr: Error | null = null;
    let delay = 50;
    const onStuck = this.opts.onStuck;
    const stuck = onStuck ? setTimeout(() => void onStuck().catch(() => undefined), STUCK_AFTER_MS) : undefined;
    stuck?.unref();
    try {
      while (!this.closed && Date.now() < deadline) {
        try {
          // Each attempt gets a bounded handshake: a first connection that the guest never answers
          // (its SYN lost while the machine was still being restored) must not hold up the retry.
          const c = await this.connectOnce(Math.max(2000, Math.min(ATTEMPT_TIMEOUT_MS, deadline - Date.now())));
          this.client = c;
          return c;
        } catch (err) {
          lastErr = err as Error;
          await new Promise((r) => setTimeout(r, delay));
          delay = Math.min(delay * 2, 500);
        }
      }
    } finally {
      clearTimeout(stuck);
    }
    throw new Error(`could not reach sprite "${this.opts.name}" over SSH: ${lastErr?.message ?? 'closed'}`);
  }

  private connectOnce(readyTimeout: number): Promise<Client> {
    const expected = publicKeyBlob(this.opts.hostKeyPub);
    return new Promise((resolve, reject) => {
      const c = new Client();
      let settled = false;
      c.on('ready', () => {
        settled = true;
        resolve(c);
      });
      c.on('error', (err) => {
        if (!settled) {
          settled = true;
          reject(err);
        } else this.opts.log?.(`ssh ${this.opts.name}: ${err.message}`);
      });
      c.on('close', () => {
        if (!settled) {
          settled = true;
          reject(new Error('connection closed during handshake'));
        }
        if (this.client === c) this.client = null;
      });
      c.connect({
        host: '127.0.0.1',
        port: this.opts.port,
        username: 'root',
        privateKey: this.opts.privateKey,
        readyTimeout,
        keepaliveInterval: 15_000,
        keepaliveCountMax: 4,
        hostVerifier: (key: Buffer) => key.equals(expected),
      });
    });
  }

  async exec(argv: string[], opts: { cwd?: string; env?: Record<string, string>; pty?: PseudoTtyOptions | false; timeoutMs?: number } = {}): Promise<ClientChannel> {
    const command = buildRemoteCommand(argv, opts);
    const c = await this.ready(opts.timeoutMs);
    return new Promise((resolve, reject) => {
      c.exec(command, opts.pty ? { pty: opts.pty } : {}, (err, ch) => (err ? reject(err) : resolve(ch)));
    });
  }

  async shell(pty: PseudoTtyOptions, timeoutMs?: number): Promise<ClientChannel> {
    const c = await this.ready(timeoutMs);
    return new Promise((resolve, reject) => {
      c.shell(pty, (err, ch) => (err ? reject(err) : resolve(ch)));
    });
  }

  close(): void {
    this.closed = true;
    this.client?.end();
    this.client = null;
  }
}
