/**
 * One remote host, as the local daemon holds it: a long-lived OpenSSH master (one SSH connection)
 * with the remote daemon's owner-only API socket forwarded to a socket in this data dir's 0700 run
 * dir, and the remote URL proxy's loopback port forwarded beside it. Every HTTP request and
 * WebSocket to that host is a new channel on the same connection — no new handshake, no new
 * process. The link also keeps one events stream open to the remote daemon: that is how it learns
 * the host's sprites (re-emitted to this daemon's windows) and notices the remote daemon going away.
 *
 * States: connecting → connected, or → unreachable with the reason and a retry time (backoff, see
 * reconnect-schedule.ts). A drop of the SSH connection or of the remote daemon starts over; the
 * remote daemon is (re)started by `spritely daemon start --json` over the same connection, as the
 * local CLI starts the local one. Nothing here ever waits on a dead host for longer than asked:
 * `ready(ms)` is how a caller bounds it.
 */
import crypto from 'node:crypto';
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import WebSocket from 'ws';
import { ApiClient } from '../api/client.ts';
import { DaemonEvent, type HostStatus, type Sprite } from '../api/contract.ts';
import { SpritelyError } from '../errors.ts';
import { safeText } from '../safe-text.ts';
import type { RemoteHello } from './host-compat.ts';
import type { HostRecord } from './host-records.ts';
import { ReconnectSchedule } from './reconnect-schedule.ts';
import { startRemoteDaemon } from './remote-daemon.ts';
import { classifySshFailure, CONNECT_TIMEOUT_S, exitArgs, forwardArgs, masterArgs, sshFailureMessage, type SshSpec } from './ssh-command.ts';
import { MasterFailed, runSsh, startMaster, stopMaster, type Master } from './ssh-process.ts';
import { parseSshUrl } from './ssh-url.ts';

export interface HostLinkPaths {
  control: string;
  api: string;
  url: string;
}

/** Short socket names in the run dir (unix socket paths are limited to ~108 bytes). */
export function hostLinkPaths(runDir: string, name: string): HostLinkPaths {
  const id = crypto.createHash('sha256').update(name).digest('hex').slice(0, 10);
  return { control: path.join(runDir, `h-${id}.ctl`), api: path.join(runDir, `h-${id}.api`), url: path.join(runDir, `h-${id}.url`) };
}

const FORWARD_TIMEOUT_MS = 15_000;
const EVENTS_OPEN_TIMEOUT_MS = 15_000;

export interface HostLinkOptions {
  log: (msg: string) => void;
  localVersion: string;
}

export interface ConnectResult {
  /** The server's host key as ssh showed it (only with `verbose`). */
  offeredKey: string | null;
  /** This connection wrote the key to known_hosts (accept-new). */
  keyAdded: boolean;
}

type LinkEvents = { status: [HostStatus]; event: [DaemonEvent] };

export class HostLink extends EventEmitter<LinkEvents> {
  readonly paths: HostLinkPaths;
  /** Keep-alive connections to the remote API: a request reuses an open channel. */
  readonly agent = new http.Agent({ keepAlive: true, maxFreeSockets: 4 });
  private readonly spec: SshSpec;
  private readonly schedule = new ReconnectSchedule();
  private master: Master | null = null;
  /** What the last master said before it ended (why a connection dropped). */
  private lastMasterErr = '';
  private hello: RemoteHello | null = null;
  private forwarded: { api: string | null; url: string | null } = { api: null, url: null };
  private events: WebSocket | null = null;
  private readonly sprites = new Map<string, Sprite>();
  private attempt: Promise<ConnectResult> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  private st: { state: HostStatus['state']; reason: string | null; retryAt: number | null; since: number } = { state: 'connecting', reason: null, retryAt: null, since: Date.now() };
  private accel: { accel: string; reason: string } | null = null;

  constructor(
    readonly record: HostRecord,
    runDir: string,
    private readonly opts: HostLinkOptions,
  ) {
    super();
    this.paths = hostLinkPaths(runDir, record.name);
    this.spec = { target: parseSshUrl(record.url), identity: record.identity, configFile: record.sshConfig, controlPath: this.paths.control };
  }

  get name(): string {
    return this.record.name;
  }

  status(): HostStatus {
    return {
      name: this.record.name,
      url: this.record.url,
      state: this.st.state,
      reason: this.st.reason,
      retryAt: this.st.retryAt ? new Date(this.st.retryAt).toISOString() : null,
      since: new Date(this.st.since).toISOString(),
      version: this.hello?.version ?? null,
      accel: this.accel?.accel ?? null,
      accelReason: this.accel?.reason ?? null,
      qemuVersion: this.hello?.qemuVersion ?? null,
      sshPid: this.master?.child.pid ?? null,
    };
  }

  /** The host's sprites as its events stream last said (for a window that connects). */
  knownSprites(): Sprite[] | null {
    return this.st.state === 'connected' ? [...this.sprites.values()] : null;
  }

  /** Where to reach the remote URL proxy: the forwarded socket and the Host it expects. */
  urlTarget(sprite: string): { socketPath: string; hostHeader: string } | null {
    if (!this.hello?.urlPort || !this.forwarded.url) return null;
    return { socketPath: this.paths.url, hostHeader: `${sprite}.localhost:${this.hello.urlPort}` };
  }

  /** An API client for the remote daemon (through the forward). */
  api(): ApiClient {
    return new ApiClient(this.paths.api);
  }

  /** Starts connecting in the background; failures retry with backoff. */
  start(): void {
    this.kick();
  }

  /**
   * One attempt now, without the retry loop (host add): `acceptNewHostKey` lets ssh write an
   * unknown key to known_hosts; `verbose` makes ssh say which key the server showed.
   */
  connectOnce(opts: { acceptNewHostKey?: boolean; verbose?: boolean } = {}): Promise<ConnectResult> {
    return this.connect(opts);
  }

  /** Resolves once connected; tries at once if it is not (within the schedule's minimum gap). */
  async ready(timeoutMs: number): Promise<void> {
    if (this.st.state === 'connected') return;
    if (this.closed) throw new SpritelyError('unavailable', `Host "${this.name}" was removed.`);
    if (!this.attempt) {
      const wait = this.schedule.demandDelay();
      if (this.timer) clearTimeout(this.timer);
      this.timer = null;
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      if (!this.attempt && (this.st.state as string) !== 'connected') this.kick();
    }
    const attempt = this.attempt;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), timeoutMs)));
    const outcome = await Promise.race([attempt ? attempt.then(() => 'ok' as const, () => 'failed' as const) : Promise.resolve('failed' as const), timeout]);
    clearTimeout(timer);
    if ((this.st.state as string) === 'connected') return;
    if (outcome === 'timeout') throw new SpritelyError('unavailable', `Host "${this.name}" did not connect within ${Math.round(timeoutMs / 1000)} s${this.st.reason ? ` (${this.st.reason})` : ''}. It keeps trying on its own; \`spritely host list\` shows its state.`);
    throw new SpritelyError('unavailable', this.st.reason ?? `Host "${this.name}" is not connected.`);
  }

  /** Something using the link saw it fail (a request cut off): check now instead of at the next drop. */
  suspect(): void {
    if (this.closed || this.st.state !== 'connected') return;
    const alive = this.master && this.master.child.exitCode === null && this.master.child.signalCode === null;
    if (!alive) return; // the master's exit handler takes it from here
    // The SSH connection stands: the remote daemon may have gone; the events stream tells soon,
    // but a request already failed, so look now.
    this.api()
      .call('daemon.info', {}, { timeoutMs: 3000 })
      .catch(() =>
        // a connection that just died fails the check too: let its master's exit be seen first
        setTimeout(() => {
          if (this.masterAlive()) this.lost('the remote daemon does not answer; starting it again');
        }, 150),
      );
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.events?.terminate();
    this.events = null;
    this.agent.destroy();
    if (this.master) await stopMaster(this.master);
    this.master = null;
    for (const p of [this.paths.api, this.paths.url, this.paths.control]) fs.rmSync(p, { force: true });
  }

  // ------------------------------------------------------------------ internals

  private setState(state: HostStatus['state'], reason: string | null, retryAt: number | null = null): void {
    const changed = state !== this.st.state || reason !== this.st.reason || retryAt !== this.st.retryAt;
    this.st = { state, reason, retryAt, since: state === this.st.state ? this.st.since : Date.now() };
    if (changed) this.emit('status', this.status());
  }

  private kick(): void {
    if (this.closed || this.attempt) return;
    this.connect({}).catch(() => {
      /* state and retry handled in connect */
    });
  }

  private connect(opts: { acceptNewHostKey?: boolean; verbose?: boolean }): Promise<ConnectResult> {
    if (this.attempt) return this.attempt;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const oneShot = opts.acceptNewHostKey !== undefined || opts.verbose !== undefined;
    this.attempt = this.doConnect(opts).then(
      (r) => {
        this.attempt = null;
        this.schedule.connected();
        this.setState('connected', null);
        return r;
      },
      (err) => {
        this.attempt = null;
        const message = (err as Error).message;
        if (this.closed) throw err;
        if (oneShot) {
          this.setState('unreachable', message);
          throw err;
        }
        const delay = this.schedule.failed();
        this.setState('unreachable', message, Date.now() + delay);
        this.opts.log(`host ${this.name}: ${message} (next attempt in ${Math.round(delay / 1000)} s)`);
        this.timer = setTimeout(() => this.kick(), delay);
        throw err;
      },
    );
    return this.attempt;
  }

  private async doConnect(opts: { acceptNewHostKey?: boolean; verbose?: boolean }): Promise<ConnectResult> {
    this.setState('connecting', this.master ? 'starting the remote daemon' : 'connecting over SSH');
    let result: ConnectResult = { offeredKey: null, keyAdded: false };
    if (!this.masterAlive()) result = await this.openMaster(opts);
    try {
      this.hello = await startRemoteDaemon(this.spec, this.record, this.opts.localVersion, () => (this.masterAlive() ? null : this.master?.stderr.value || this.lastMasterErr || 'the SSH connection ended'));
      if (this.hello.accel) this.accel = this.hello.accel;
      await this.forward('api', this.hello.socket);
      if (this.hello.urlPort) await this.forward('url', `127.0.0.1:${this.hello.urlPort}`);
      await this.openEvents();
      this.opts.log(`host ${this.name}: connected (${this.record.url}, Spritely ${this.hello.version}, ssh pid ${this.master?.child.pid})`);
      return result;
    } catch (err) {
      // A master that cannot serve is no use: the next attempt starts clean.
      await this.dropMaster();
      throw err;
    }
  }

  private masterAlive(): boolean {
    return !!this.master && this.master.child.exitCode === null && this.master.child.signalCode === null;
  }

  private async openMaster(opts: { acceptNewHostKey?: boolean; verbose?: boolean }): Promise<ConnectResult> {
    await this.clearStaleControl();
    let master: Master;
    try {
      master = await startMaster(masterArgs(this.spec, opts), this.paths.control, (CONNECT_TIMEOUT_S + 22) * 1000);
    } catch (err) {
      if (!(err instanceof MasterFailed)) throw err;
      const f = classifySshFailure(err.stderr);
      const code = f.kind === 'unreachable' || f.kind === 'ssh' ? 'unavailable' : 'failed_precondition';
      throw new SpritelyError(code, sshFailureMessage(this.name, this.record.url, f), { kind: f.kind, offeredKey: f.offeredKey });
    }
    this.master = master;
    this.forwarded = { api: null, url: null };
    master.exited.then(() => this.onMasterExit(master));
    const text = master.stderr.value;
    return { offeredKey: classifySshFailure(text).offeredKey, keyAdded: /Permanently added/.test(text) };
  }

  /** A control socket left by a master of an earlier daemon (killed without cleanup): end it. */
  private async clearStaleControl(): Promise<void> {
    if (!fs.existsSync(this.paths.control)) return;
    await runSsh(exitArgs(this.spec), 3000);
    fs.rmSync(this.paths.control, { force: true });
  }

  private async dropMaster(): Promise<void> {
    this.events?.terminate();
    this.events = null;
    const m = this.master;
    this.master = null;
    if (m) await stopMaster(m);
  }

  private onMasterExit(m: Master): void {
    if (this.master !== m && this.master !== null) return;
    const wasConnected = this.st.state === 'connected';
    this.lastMasterErr = m.stderr.value;
    this.master = null;
    this.forwarded = { api: null, url: null };
    this.events?.terminate();
    this.events = null;
    this.agent.destroy();
    if (this.closed || !wasConnected) return;
    const f = classifySshFailure(m.stderr.value);
    const why = f.kind === 'ssh' ? `the SSH connection ended (${f.detail})` : `the SSH connection ended: ${sshFailureMessage(this.name, this.record.url, f)}`;
    this.lost(why, true);
  }

  /** A working link broke: unreachable, and back on its own. */
  private lost(why: string, masterGone = false): void {
    if (this.closed || this.st.state !== 'connected') return;
    this.events?.terminate();
    this.events = null;
    const delay = masterGone ? this.schedule.dropped() : 0;
    this.opts.log(`host ${this.name}: ${why}`);
    if (delay === 0) {
      this.setState('connecting', why);
      this.kick();
      return;
    }
    this.setState('unreachable', why, Date.now() + delay);
    this.timer = setTimeout(() => this.kick(), delay);
  }

  private async forward(which: 'api' | 'url', remote: string): Promise<void> {
    if (this.forwarded[which] === remote) return;
    const local = which === 'api' ? this.paths.api : this.paths.url;
    const prior = this.forwarded[which];
    if (prior) await runSsh(forwardArgs(this.spec, 'cancel', local, prior), FORWARD_TIMEOUT_MS);
    this.forwarded[which] = null;
    fs.rmSync(local, { force: true });
    const r = await runSsh(forwardArgs(this.spec, 'forward', local, remote), FORWARD_TIMEOUT_MS);
    if (r.code !== 0) throw new SpritelyError('unavailable', `Host "${this.name}": could not forward ${which === 'api' ? 'its API socket' : 'its URL port'} over SSH: ${safeText(r.stderr.trim() || `exit ${r.code}`, { maxChars: 300 })}. Is stream-local forwarding allowed by its sshd (AllowStreamLocalForwarding)?`);
    this.forwarded[which] = remote;
  }

  private openEvents(): Promise<void> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`ws+unix://${this.paths.api}:/v1/events`, { perMessageDeflate: false, maxPayload: 64 * 1024 * 1024 });
      let opened = false;
      const timer = setTimeout(() => {
        ws.terminate();
        reject(new SpritelyError('timeout', `Host "${this.name}": its daemon did not open the events stream within ${EVENTS_OPEN_TIMEOUT_MS / 1000} s.`));
      }, EVENTS_OPEN_TIMEOUT_MS);
      ws.on('open', () => {
        opened = true;
        clearTimeout(timer);
        this.events = ws;
        resolve();
      });
      ws.on('message', (raw) => this.onRemoteEvent(raw.toString()));
      ws.on('error', (err) => {
        if (opened) return;
        clearTimeout(timer);
        reject(new SpritelyError('unavailable', `Host "${this.name}": could not reach its daemon through the SSH forward (${err.message}).`));
      });
      ws.on('close', () => {
        if (!opened || this.events !== ws) return;
        this.events = null;
        // The stream also ends when the whole connection does; give the master's exit a moment
        // to be seen, so a dropped connection is not mistaken for a stopped daemon.
        setTimeout(() => {
          if (this.masterAlive()) this.lost('its daemon stopped; starting it again');
        }, 150);
      });
    });
  }

  private onRemoteEvent(text: string): void {
    let parsed: DaemonEvent;
    try {
      const r = DaemonEvent.safeParse(JSON.parse(text));
      if (!r.success) return;
      parsed = r.data;
    } catch {
      return;
    }
    if (parsed.type === 'hosts.changed') return; // no chaining: a host's own hosts stay its business
    if (parsed.type === 'hello') {
      this.sprites.clear();
      for (const s of parsed.sprites) this.sprites.set(s.name, s);
    } else if (parsed.type === 'sprite.changed') this.sprites.set(parsed.sprite.name, parsed.sprite);
    else if (parsed.type === 'sprite.removed') this.sprites.delete(parsed.name);
    const accel = parsed.type === 'sprite.changed' ? parsed.sprite.accel : parsed.type === 'hello' ? parsed.sprites.find((s) => s.accel)?.accel : null;
    if (accel && accel !== this.accel?.accel) {
      this.accel = { accel, reason: this.accel?.reason ?? 'chosen by its daemon' };
      this.emit('status', this.status());
    }
    this.emit('event', parsed);
  }
}
