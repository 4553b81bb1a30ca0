/**
 * The remote hosts of this daemon: a service above the engine (the engine never knows a host
 * exists). It owns `hosts.json`, one HostLink (one SSH connection) per host, started when the
 * daemon starts and kept open, and re-emits each host's state and events for this daemon's
 * windows. `host add` is the one place a connection may accept a new host key, and it checks the
 * server before remembering it: Spritely there and compatible, QEMU, the accelerator, free disk.
 */
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import type http from 'node:http';
import type net from 'node:net';
import path from 'node:path';
import type { WebSocket, WebSocketServer } from 'ws';
import type { DaemonEvent, HostStatus, MethodInput, MethodOutput, Sprite } from '../api/contract.ts';
import type { RemoteHosts, RemoteHostsListener } from '../api/remote-hosts.ts';
import { SpritelyError } from '../errors.ts';
import type { Layout } from '../paths.ts';
import { HostLink } from './host-link.ts';
import { handleHostedRequest, handleHostedUpgrade } from './host-passthrough.ts';
import type { RewriteContext } from './host-route.ts';
import { assertHostName, DEFAULT_REMOTE_COMMAND, readHostsFile, remoteCommandProblem, unknownHost, withHost, withoutHost, writeHostsFile, type HostRecord } from './host-records.ts';
import { formatSshUrl, parseSshUrl } from './ssh-url.ts';

/** How long `host add` lets the server's doctor run (a first accelerator canary boots a kernel). */
const ADD_DOCTOR_TIMEOUT_MS = 120_000;

type ManagerEvents = { changed: [HostStatus[]]; event: [string, DaemonEvent] };

export class HostManager extends EventEmitter<ManagerEvents> implements RemoteHosts {
  private readonly links = new Map<string, HostLink>();
  readonly file: string;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly layout: Layout,
    private readonly opts: { log: (msg: string) => void; version: string; localUrl: RewriteContext['localUrl'] },
  ) {
    super();
    this.file = path.join(layout.home, 'hosts.json');
  }

  subscribe(l: RemoteHostsListener): () => void {
    this.on('changed', l.changed);
    this.on('event', l.event);
    return () => {
      this.off('changed', l.changed);
      this.off('event', l.event);
    };
  }

  request(url: URL, req: http.IncomingMessage, res: http.ServerResponse): Promise<boolean> {
    return handleHostedRequest({ hosts: this, localUrl: this.opts.localUrl }, url, req, res);
  }

  upgrade(url: URL, req: http.IncomingMessage, socket: net.Socket, head: Buffer, wss: WebSocketServer, onClient: (ws: WebSocket) => void): boolean {
    return handleHostedUpgrade({ hosts: this, localUrl: this.opts.localUrl, onClient }, wss, url, req, socket, head);
  }

  /** Opens a connection to every remembered host (in the background; none is waited for). */
  start(): void {
    let records: HostRecord[];
    try {
      records = readHostsFile(this.file).hosts;
    } catch (err) {
      this.opts.log(`hosts: ${(err as Error).message}`);
      return;
    }
    for (const rec of records) {
      const link = this.track(new HostLink(rec, this.layout.runDir, { log: this.opts.log, localVersion: this.opts.version }));
      link.start();
    }
  }

  list(): HostStatus[] {
    return [...this.links.values()].map((l) => l.status());
  }

  get(name: string): HostStatus {
    return this.link(name).status();
  }

  link(name: string): HostLink {
    const l = this.links.get(name);
    if (!l) throw unknownHost(name);
    return l;
  }

  /** Connected hosts with the sprites their events last showed (for a window that connects). */
  snapshots(): { host: string; sprites: Sprite[] }[] {
    const out: { host: string; sprites: Sprite[] }[] = [];
    for (const l of this.links.values()) {
      const sprites = l.knownSprites();
      if (sprites) out.push({ host: l.name, sprites });
    }
    return out;
  }

  add(input: MethodInput<'hosts.add'>): Promise<MethodOutput<'hosts.add'>> {
    return this.serial(() => this.doAdd(input));
  }

  remove(name: string): Promise<void> {
    return this.serial(async () => {
      const link = this.link(name);
      await writeHostsFile(this.file, withoutHost(readHostsFile(this.file), name));
      this.links.delete(name);
      link.removeAllListeners();
      await link.close();
      this.opts.log(`host ${name}: removed`);
      this.emit('changed', this.list());
    });
  }

  async close(): Promise<void> {
    await Promise.all([...this.links.values()].map((l) => l.close()));
    this.links.clear();
  }

  private async doAdd(input: MethodInput<'hosts.add'>): Promise<MethodOutput<'hosts.add'>> {
    assertHostName(input.name);
    if (this.links.has(input.name)) throw new SpritelyError('already_exists', `There is already a host named "${input.name}" (spritely host list). Remove it first (spritely host remove ${input.name}), or choose another name.`);
    const url = formatSshUrl(parseSshUrl(input.url));
    const identity = input.identity ? trustedFile(input.identity, '--identity', this.layout.home) : null;
    const sshConfig = input.sshConfig ? trustedFile(input.sshConfig, '--ssh-config', this.layout.home) : null;
    const remoteCommand = input.remoteCommand ?? DEFAULT_REMOTE_COMMAND;
    const cmdProblem = remoteCommandProblem(remoteCommand);
    if (cmdProblem) throw new SpritelyError('invalid_argument', `Invalid --remote-command: ${cmdProblem}.`);
    const record: HostRecord = { name: input.name, url, identity, sshConfig, remoteCommand, addedAt: new Date().toISOString() };
    const before = readHostsFile(this.file);
    const link = new HostLink(record, this.layout.runDir, { log: this.opts.log, localVersion: this.opts.version });
    let checks: { name: string; ok: boolean; detail: string }[];
    let key: { offeredKey: string | null; keyAdded: boolean };
    try {
      key = await link.connectOnce({ acceptNewHostKey: !!input.acceptNewHostKey, verbose: true });
      checks = (await link.api().call('daemon.doctor', {}, { timeoutMs: ADD_DOCTOR_TIMEOUT_MS })).checks;
      const qemu = checks.find((c) => c.name === 'qemu');
      if (qemu && !qemu.ok) throw new SpritelyError('failed_precondition', `Host "${input.name}" cannot run sprites: ${qemu.detail}. Install QEMU there (Debian/Ubuntu: sudo apt-get install qemu-system-x86 qemu-utils), then add it again.`);
      await writeHostsFile(this.file, withHost(before, record));
    } catch (err) {
      await link.close();
      throw err;
    }
    this.track(link);
    // It is connected now; from here on a drop retries with backoff like any remembered host.
    this.opts.log(`host ${input.name}: added (${url})`);
    this.emit('changed', this.list());
    return { host: link.status(), checks, hostKey: key.offeredKey, hostKeyAdded: key.keyAdded };
  }

  private track(link: HostLink): HostLink {
    this.links.set(link.name, link);
    link.on('status', () => this.emit('changed', this.list()));
    link.on('event', (e) => this.emit('event', link.name, e));
    return link;
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => {});
    return run;
  }
}

/**
 * An --identity or --ssh-config file: ssh trusts what they say (an ssh_config can run commands:
 * ProxyCommand), so, as ssh itself demands of ~/.ssh/config, it must be a regular file of this
 * user that nobody else may write — and nothing under the data dir, where guests' output lands.
 */
export function trustedFile(p: string, flag: string, dataDir: string): string {
  if (!path.isAbsolute(p)) throw new SpritelyError('invalid_argument', `${flag} must be an absolute path (got "${p}").`);
  const real = (() => {
    try {
      return fs.realpathSync(p);
    } catch (err) {
      throw new SpritelyError('invalid_argument', `${flag} ${p} is not a readable file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}).`);
    }
  })();
  const st = fs.statSync(real);
  if (!st.isFile()) throw new SpritelyError('invalid_argument', `${flag} ${p} is not a regular file.`);
  if (process.getuid && st.uid !== process.getuid()) throw new SpritelyError('invalid_argument', `${flag} ${p} belongs to another user; ssh would trust what it says. Use a file of your own.`);
  if (st.mode & 0o022) throw new SpritelyError('invalid_argument', `${flag} ${p} may be written by others (mode ${(st.mode & 0o777).toString(8)}); ssh would trust what it says. chmod go-w it.`);
  const home = fs.existsSync(dataDir) ? fs.realpathSync(dataDir) : path.resolve(dataDir);
  if (real === home || real.startsWith(home + path.sep)) throw new SpritelyError('invalid_argument', `${flag} ${p} is inside Spritely's data dir, where sprites' output is kept; use a file of your own elsewhere.`);
  try {
    fs.accessSync(real, fs.constants.R_OK);
  } catch {
    throw new SpritelyError('invalid_argument', `${flag} ${p} is not readable.`);
  }
  return p;
}
