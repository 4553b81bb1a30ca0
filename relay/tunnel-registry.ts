/**
 * Which account's tunnel serves which host, keyed by the account's suffix. Publications belong to the
 * account, not to one connection: when a tunnel drops they stay reserved for a grace period and
 * requests for them are held until the daemon reconnects (and re-syncs) or the hold times out.
 */
import type { KeyObject } from 'node:crypto';
import { DigestSet } from './digest-set.ts';
import { spriteLabel, spriteNameProblem } from './host-routing.ts';
import type { RelayTunnel } from './relay-tunnel.ts';
import { importSharePublicKey } from './share-link.ts';
import type { AccessPolicy } from './request-auth.ts';
import type { Publication } from './tunnel-protocol.ts';

export interface LivePublication {
  name: string;
  policy: AccessPolicy;
}

interface AccountEntry {
  suffix: string;
  tokenHash: string;
  tunnel: RelayTunnel | null;
  publications: Map<string, LivePublication>;
  graceTimer: NodeJS.Timeout | undefined;
  waiters: Set<Waiter>;
}

interface Waiter {
  sprite: string;
  settle: (result: Lookup) => void;
}

export type Lookup =
  | { kind: 'ready'; tunnel: RelayTunnel; publication: LivePublication }
  /** The account's tunnel is down but within its grace period: hold the request. */
  | { kind: 'offline' }
  /** The account is connected (or in grace) but does not publish this sprite. */
  | { kind: 'unknown' }
  /** The relay holds nothing for this suffix. */
  | { kind: 'no-tunnel' };

export class TunnelRegistry {
  private readonly accounts = new Map<string, AccountEntry>();

  constructor(private readonly graceMs: number) {}

  /** Makes `tunnel` the account's live tunnel; an older one is closed (newest connection wins). */
  attach(tunnel: RelayTunnel): void {
    const suffix = tunnel.account.suffix;
    let entry = this.accounts.get(suffix);
    if (!entry) {
      entry = { suffix, tokenHash: tunnel.tokenHash, tunnel: null, publications: new Map(), graceTimer: undefined, waiters: new Set() };
      this.accounts.set(suffix, entry);
    }
    entry.tokenHash = tunnel.tokenHash;
    const previous = entry.tunnel;
    clearTimeout(entry.graceTimer);
    entry.graceTimer = undefined;
    entry.tunnel = tunnel;
    if (previous && previous !== tunnel) previous.close('replaced by a newer connection for this account', true);
    tunnel.once('close', () => this.detach(tunnel));
  }

  private detach(tunnel: RelayTunnel): void {
    const entry = this.accounts.get(tunnel.account.suffix);
    if (!entry || entry.tunnel !== tunnel) return;
    entry.tunnel = null;
    entry.graceTimer = setTimeout(() => this.forget(entry.suffix), this.graceMs);
    entry.graceTimer.unref();
  }

  /** Drops an account's state at once (revocation, or the grace period ran out). */
  forget(suffix: string, reason = 'token revoked'): void {
    const entry = this.accounts.get(suffix);
    if (!entry) return;
    clearTimeout(entry.graceTimer);
    this.accounts.delete(suffix);
    for (const waiter of entry.waiters) waiter.settle({ kind: 'unknown' });
    entry.waiters.clear();
    entry.tunnel?.close(reason, false);
  }

  /** Replaces the account's publications; returns the ones rejected, with why. */
  sync(tunnel: RelayTunnel, sprites: Publication[]): { name: string; error: string }[] {
    const entry = this.entryOf(tunnel);
    if (!entry) return sprites.map((sprite) => ({ name: sprite.name, error: 'tunnel is closed' }));
    const rejected: { name: string; error: string }[] = [];
    const next = new Map<string, LivePublication>();
    for (const sprite of sprites) {
      const result = toLive(sprite, entry.suffix);
      if (typeof result === 'string') rejected.push({ name: sprite.name, error: result });
      else next.set(sprite.name, result);
    }
    entry.publications = next;
    this.wake(entry);
    return rejected;
  }

  publish(tunnel: RelayTunnel, sprite: Publication): string | null {
    const entry = this.entryOf(tunnel);
    if (!entry) return 'tunnel is closed';
    const result = toLive(sprite, entry.suffix);
    if (typeof result === 'string') return result;
    entry.publications.set(sprite.name, result);
    this.wake(entry);
    return null;
  }

  unpublish(tunnel: RelayTunnel, name: string): void {
    this.entryOf(tunnel)?.publications.delete(name);
  }

  lookup(suffix: string, sprite: string): Lookup {
    const entry = this.accounts.get(suffix);
    if (!entry) return { kind: 'no-tunnel' };
    const publication = entry.publications.get(sprite);
    if (!publication) return { kind: 'unknown' };
    if (!entry.tunnel) return { kind: 'offline' };
    return { kind: 'ready', tunnel: entry.tunnel, publication };
  }

  /** Waits until the host is servable again, it is forgotten, or `timeoutMs` passes (→ 'offline'). */
  waitFor(suffix: string, sprite: string, timeoutMs: number): { promise: Promise<Lookup>; cancel: () => void } {
    const entry = this.accounts.get(suffix);
    if (!entry) return { promise: Promise.resolve({ kind: 'no-tunnel' }), cancel: () => undefined };
    let waiter!: Waiter;
    let timer: NodeJS.Timeout;
    const promise = new Promise<Lookup>((resolve) => {
      waiter = {
        sprite,
        settle: (result) => {
          clearTimeout(timer);
          entry.waiters.delete(waiter);
          resolve(result);
        },
      };
      timer = setTimeout(() => waiter.settle({ kind: 'offline' }), timeoutMs);
      entry.waiters.add(waiter);
    });
    return { promise, cancel: () => waiter.settle({ kind: 'offline' }) };
  }

  /** Accounts whose tunnel is currently connected. */
  tunnels(): RelayTunnel[] {
    return [...this.accounts.values()].flatMap((entry) => (entry.tunnel ? [entry.tunnel] : []));
  }

  /** Forgets every account (connected or in grace) whose token no longer passes `isLive`. */
  forgetWhere(isLive: (tokenHash: string) => boolean, reason: string): void {
    for (const entry of [...this.accounts.values()]) {
      if (!isLive(entry.tokenHash)) this.forget(entry.suffix, reason);
    }
  }

  closeAll(reason: string): void {
    for (const entry of this.accounts.values()) {
      clearTimeout(entry.graceTimer);
      for (const waiter of entry.waiters) waiter.settle({ kind: 'unknown' });
      entry.tunnel?.close(reason, true);
    }
    this.accounts.clear();
  }

  private entryOf(tunnel: RelayTunnel): AccountEntry | undefined {
    const entry = this.accounts.get(tunnel.account.suffix);
    return entry && entry.tunnel === tunnel ? entry : undefined;
  }

  private wake(entry: AccountEntry): void {
    for (const waiter of [...entry.waiters]) {
      const result = this.lookup(entry.suffix, waiter.sprite);
      if (result.kind === 'ready') waiter.settle(result);
    }
  }
}

function toLive(sprite: Publication, suffix: string): LivePublication | string {
  const problem = spriteNameProblem(sprite.name, suffix);
  if (problem) return problem;
  let shareKey: KeyObject | null = null;
  if (sprite.shareKey) {
    try {
      shareKey = importSharePublicKey(sprite.shareKey);
    } catch {
      return 'invalid share key';
    }
  }
  return {
    name: sprite.name,
    policy: {
      auth: sprite.auth,
      accessTokenHashes: new DigestSet(sprite.accessTokenHashes.map((hash) => [hash, true] as const)),
      shareKey,
      label: spriteLabel(sprite.name, suffix),
      publicationId: sprite.publicationId ?? null,
    },
  };
}
