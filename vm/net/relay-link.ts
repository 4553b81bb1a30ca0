/**
 * Public URLs: the daemon's one outbound tunnel to the user's relay (relay/tunnel-client.ts), which
 * carries every published sprite. Settings live in `relay.json` (0600): the relay URL, the tunnel
 * token, an optional private CA, the key that signs share links, and what is published with its
 * access token. The relay itself only ever sees sha256 hashes of access tokens and the share key's
 * public half. A request for a sleeping sprite wakes it (resolveTarget may take seconds).
 * Every change of the tunnel's state or of what is published is emitted as `changed` (the status),
 * so windows show a reconnecting tunnel as it happens.
 */
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import type { Engine } from '../engine/engine.ts';
import { SpritelyError } from '../errors.ts';
import { createTunnelClient, generateAccessToken, generateShareKey, hashAccessToken, type TunnelClient, type TunnelState } from '../../relay/tunnel-client.ts';

export type AuthMode = 'sprite' | 'public';

interface RelaySettings {
  url: string;
  token: string;
  ca?: string;
  shareKey: string;
  published: Record<string, { auth: AuthMode; accessToken: string }>;
}

export interface RelayStatus {
  configured: boolean;
  url: string | null;
  status: TunnelState['status'] | 'off';
  reason: string | null;
  account: string | null;
  published: { name: string; url: string; auth: AuthMode }[];
}

export interface Publication {
  name: string;
  url: string;
  auth: AuthMode;
  /** The bearer token that opens a `sprite`-mode URL (kept on this machine only). */
  accessToken: string | null;
  live: boolean;
}

export class RelayLink extends EventEmitter<{ changed: [RelayStatus] }> {
  private client: TunnelClient | null = null;
  private settings: RelaySettings | null = null;

  constructor(
    private readonly engine: Engine,
    private readonly file: string,
    private readonly log: (msg: string) => void,
  ) {
    super();
    try {
      this.settings = JSON.parse(fs.readFileSync(file, 'utf8'));
    } catch {
      this.settings = null;
    }
    engine.on('removed', (name) => {
      if (this.settings?.published[name]) void this.unpublish(name).catch(() => {});
    });
  }

  /** Reconnects with the saved settings (daemon start). */
  start(): void {
    if (this.settings) this.open(this.settings);
  }

  private open(s: RelaySettings): void {
    this.client = createTunnelClient({
      relayUrl: s.url,
      token: s.token,
      ca: s.ca,
      shareKey: s.shareKey,
      resolveTarget: async (name) => {
        if (!this.settings?.published[name]) return null;
        return this.engine.urlTarget(name);
      },
      log: (level, msg) => {
        if (level !== 'debug') this.log(`relay: ${msg}`);
      },
    });
    const client = this.client;
    client.on('state', (st) => {
      this.log(`relay: ${st.status}${st.reason ? ` (${st.reason})` : ''}`);
      if (this.client === client) this.changed();
    });
    for (const [name, p] of Object.entries(s.published)) {
      void this.client.publish(name, { auth: p.auth, accessTokenHashes: [hashAccessToken(p.accessToken)] }).catch((err) => this.log(`relay: could not publish ${name}: ${err.message}`));
    }
  }

  private changed(): void {
    this.emit('changed', this.status());
  }

  private save(): void {
    fs.writeFileSync(this.file, JSON.stringify(this.settings, null, 2) + '\n', { mode: 0o600 });
    fs.chmodSync(this.file, 0o600);
  }

  /** Connects (and remembers) a relay; waits briefly to report whether the token was accepted. */
  async connect(url: string, token: string, ca?: string): Promise<RelayStatus> {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new SpritelyError('invalid_argument', `"${url}" is not a URL (e.g. https://relay.example.com).`);
    }
    if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') throw new SpritelyError('invalid_argument', 'The relay URL must start with https:// (or http:// for a local test relay).');
    const previous = this.client;
    this.client = null;
    await previous?.close();
    this.settings = { url: parsed.origin, token, ca, shareKey: this.settings?.shareKey ?? generateShareKey(), published: this.settings?.published ?? {} };
    this.save();
    this.open(this.settings);
    const client = this.client!;
    await new Promise<void>((resolve) => {
      if (client.state.status === 'connected' || client.state.status === 'unauthorized') return resolve();
      const off = client.on('state', (st) => {
        if (st.status === 'connected' || st.status === 'unauthorized' || st.status === 'backoff') {
          off();
          resolve();
        }
      });
      setTimeout(() => {
        off();
        resolve();
      }, 10_000).unref();
    });
    return this.status();
  }

  async disconnect(): Promise<void> {
    const client = this.client;
    this.client = null;
    this.settings = null;
    await client?.close();
    fs.rmSync(this.file, { force: true });
    this.changed();
  }

  status(): RelayStatus {
    const client = this.client;
    const st = client?.state;
    return {
      configured: !!this.settings,
      url: this.settings?.url ?? null,
      status: st?.status ?? 'off',
      reason: st?.reason ?? null,
      account: st?.account ?? null,
      published: client ? Object.entries(this.settings?.published ?? {}).map(([name, p]) => ({ name, url: client.urlFor(name), auth: p.auth })) : [],
    };
  }

  private need(): { client: TunnelClient; settings: RelaySettings } {
    if (!this.client || !this.settings) throw new SpritelyError('failed_precondition', 'No relay is connected. Run: spritely relay connect https://YOUR-RELAY --token TOKEN');
    return { client: this.client, settings: this.settings };
  }

  /** Publishes `name` (or changes its auth mode); a `sprite`-mode URL gets a new access token once. */
  async publish(name: string, auth: AuthMode): Promise<Publication> {
    this.engine.get(name);
    const { client, settings } = this.need();
    const accessToken = settings.published[name]?.accessToken ?? generateAccessToken();
    settings.published[name] = { auth, accessToken };
    this.save();
    this.changed();
    const r = await client.publish(name, { auth, accessTokenHashes: [hashAccessToken(accessToken)] });
    return { name, url: r.url, auth, accessToken: auth === 'sprite' ? accessToken : null, live: r.live };
  }

  async unpublish(name: string): Promise<void> {
    const { client, settings } = this.need();
    delete settings.published[name];
    this.save();
    this.changed();
    await client.unpublish(name);
  }

  shareLink(name: string, ttlMs: number): { link: string; expiresAt: string } {
    const { client, settings } = this.need();
    if (!settings.published[name]) throw new SpritelyError('failed_precondition', `"${name}" is not public yet. Run: spritely url ${name} --public`);
    return { link: client.shareLink(name, ttlMs), expiresAt: new Date(Date.now() + ttlMs).toISOString() };
  }

  publication(name: string): Publication | null {
    const p = this.settings?.published[name];
    if (!p || !this.client) return null;
    return { name, url: this.client.urlFor(name), auth: p.auth, accessToken: p.auth === 'sprite' ? p.accessToken : null, live: this.client.state.status === 'connected' };
  }

  async close(): Promise<void> {
    await this.client?.close();
  }
}
