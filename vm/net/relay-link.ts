/**
 * Public URLs: the daemon's one outbound tunnel to the user's relay (relay/tunnel-client.ts), which
 * carries every published sprite. Settings live in `relay.json` (0600): the relay URL, the tunnel
 * token, an optional private CA, the key that signs share links, and what is published with its
 * access token and publication id. The relay itself only ever sees sha256 hashes of access tokens and
 * the share key's public half. A request for a sleeping sprite wakes it (resolveTarget may take seconds).
 * Share links belong to one publication (relay/share-link.ts): publishing again, unpublishing,
 * destroying the sprite (the engine's `removed` event) and `revokeLinks` each end every earlier link;
 * the id is saved, so a daemon restart or a reconnect keeps links alive.
 * Every change of the tunnel's state or of what is published is emitted as `changed` (the status),
 * so windows show a reconnecting tunnel as it happens.
 */
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import type { Engine } from '../engine/engine.ts';
import { SpritelyError } from '../errors.ts';
import { writeJsonAtomicSync } from '../store/atomic-json.ts';
import { relayUrlProblem } from '../../relay/relay-url.ts';
import { createTunnelClient, generateAccessToken, generatePublicationId, generateShareKey, hashAccessToken, type TunnelClient, type TunnelState } from '../../relay/tunnel-client.ts';

export type AuthMode = 'sprite' | 'public';

interface RelaySettings {
  url: string;
  token: string;
  ca?: string;
  shareKey: string;
  published: Record<string, PublishedSprite>;
}

interface PublishedSprite {
  auth: AuthMode;
  accessToken: string;
  /** Named by every share link of this publication; a new one revokes them all. */
  publicationId: string;
  /** The sprite's `createdAt` when published: a sprite re-created under the name is not this publication. */
  spriteCreatedAt?: string;
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
  /** Why the saved relay was not opened at start (e.g. an http:// URL an older version accepted). */
  private problem: string | null = null;

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
    engine.on('removed', (name) => this.forget(name));
  }

  /** Reconnects with the saved settings (daemon start). */
  start(): void {
    if (!this.settings) return;
    this.problem = relayUrlProblem(this.settings.url);
    if (this.problem) return this.log(`relay: not connecting: ${this.problem}`);
    this.checkPublications(this.settings);
    this.open(this.settings);
  }

  /**
   * Drops publications of sprites that are gone or were re-created while the daemon was down (so
   * their links cannot open the new sprite), and gives settings from before publication ids one.
   */
  private checkPublications(s: RelaySettings): void {
    const sprites = new Map(this.engine.list().map((sprite) => [sprite.name, sprite.createdAt]));
    let changed = false;
    for (const [name, p] of Object.entries(s.published)) {
      const createdAt = sprites.get(name);
      if (createdAt === undefined || (p.spriteCreatedAt !== undefined && p.spriteCreatedAt !== createdAt)) {
        this.log(`relay: unpublishing ${name}: ${createdAt === undefined ? 'the sprite is gone' : 'the sprite was re-created'}`);
        delete s.published[name];
        changed = true;
        continue;
      }
      if (!p.publicationId || p.spriteCreatedAt === undefined) {
        s.published[name] = { ...p, publicationId: p.publicationId || generatePublicationId(), spriteCreatedAt: createdAt };
        changed = true;
      }
    }
    if (changed) this.save();
  }

  /** The sprite is gone (destroyed, or a create that failed): its publication and links end with it. */
  private forget(name: string): void {
    if (!this.settings?.published[name]) return;
    delete this.settings.published[name];
    this.save();
    this.changed();
    void this.client?.unpublish(name).catch((err: Error) => this.log(`relay: could not unpublish ${name}: ${err.message}`));
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
      void this.client
        .publish(name, { auth: p.auth, accessTokenHashes: [hashAccessToken(p.accessToken)], publicationId: p.publicationId })
        .catch((err) => this.log(`relay: could not publish ${name}: ${err.message}`));
    }
  }

  private changed(): void {
    this.emit('changed', this.status());
  }

  /** Atomically (temp file, fsync, rename): a crash mid-save never leaves a torn relay.json. */
  private save(): void {
    writeJsonAtomicSync(this.file, this.settings);
  }

  /** Connects (and remembers) a relay; waits briefly to report whether the token was accepted. */
  async connect(url: string, token: string, ca?: string): Promise<RelayStatus> {
    const problem = relayUrlProblem(url);
    if (problem) throw new SpritelyError('invalid_argument', problem);
    const parsed = new URL(url);
    const previous = this.client;
    this.problem = null;
    this.client = null;
    await previous?.close();
    this.settings = { url: parsed.origin, token, ca, shareKey: this.settings?.shareKey ?? generateShareKey(), published: this.settings?.published ?? {} };
    this.checkPublications(this.settings);
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
      reason: st?.reason ?? this.problem,
      account: st?.account ?? null,
      published: client ? Object.entries(this.settings?.published ?? {}).map(([name, p]) => ({ name, url: client.urlFor(name), auth: p.auth })) : [],
    };
  }

  private need(): { client: TunnelClient; settings: RelaySettings } {
    if (!this.client || !this.settings) throw new SpritelyError('failed_precondition', 'No relay is connected. Run: spritely relay connect https://YOUR-RELAY --token-file FILE');
    return { client: this.client, settings: this.settings };
  }

  /**
   * Publishes `name` (or changes its auth mode); a `sprite`-mode URL gets a new access token once.
   * Every call is a new publication: share links of an earlier one stop working.
   */
  async publish(name: string, auth: AuthMode): Promise<Publication> {
    const sprite = this.engine.get(name);
    const { client, settings } = this.need();
    const accessToken = settings.published[name]?.accessToken ?? generateAccessToken();
    const publicationId = generatePublicationId();
    settings.published[name] = { auth, accessToken, publicationId, spriteCreatedAt: sprite.createdAt };
    this.save();
    this.changed();
    const r = await client.publish(name, { auth, accessTokenHashes: [hashAccessToken(accessToken)], publicationId });
    return { name, url: r.url, auth, accessToken: auth === 'sprite' ? accessToken : null, live: r.live };
  }

  /** Ends every share link (and the cookies they set) of `name`; the URL and its access token stay. */
  async revokeLinks(name: string): Promise<{ name: string; url: string; auth: AuthMode; live: boolean }> {
    const { client, settings } = this.need();
    const p = settings.published[name];
    if (!p) throw new SpritelyError('failed_precondition', `"${name}" is not published, so it has no share links.`);
    const publicationId = generatePublicationId();
    settings.published[name] = { ...p, publicationId };
    this.save();
    const r = await client.publish(name, { auth: p.auth, accessTokenHashes: [hashAccessToken(p.accessToken)], publicationId });
    return { name, url: r.url, auth: p.auth, live: r.live };
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
