/**
 * The wire contract between the relay and the tunnel client (the daemon), kept in one place so both
 * ends agree. Transport: the client sends `GET /.spritely/tunnel` with `Upgrade: spritely-tunnel/1`
 * and its bearer token; after `101 Switching Protocols` the same TCP/TLS socket speaks HTTP/2 with the
 * roles reversed (the relay is the HTTP/2 client, the daemon the server), so every public request is
 * one HTTP/2 stream with HTTP/2's own flow control. Control messages (publish, unpublish, hello) are
 * JSON lines on one long-lived stream the relay opens at `/.spritely/control`. See docs/relay.md.
 */
import { z } from 'zod';
import { PUBLICATION_ID_PATTERN } from './share-link.ts';

export const TUNNEL_PATH = '/.spritely/tunnel';
export const TUNNEL_UPGRADE = 'spritely-tunnel/1';
export const CONTROL_PATH = '/.spritely/control';
/** Request header (relay → daemon) naming the sprite a stream is for. */
export const SPRITE_HEADER = 'spritely-sprite';
/** Response header (daemon → relay) saying why the daemon could not reach the sprite's app. */
export const ERROR_HEADER = 'spritely-error';
/** On an extended CONNECT answer: the status line the origin answered the upgrade with. */
export const UPGRADE_STATUS_HEADER = 'spritely-upgrade-status';
/** Query parameter carrying a signed share link. */
export const SHARE_PARAM = 'spritely_share';
/**
 * The cookie the relay swaps a share link for. `__Host-` makes browsers accept it only when it is
 * Secure, has Path=/ and no Domain, so a sibling sprite (`evil-….relay.example`) cannot set one for
 * the parent domain that shadows or replaces ours.
 */
export const SHARE_COOKIE = '__Host-spritely_share';
/** The cookie's name before it had the `__Host-` prefix: stripped before forwarding, never read. */
export const LEGACY_SHARE_COOKIE = 'spritely_share';

export const tunnelErrorSchema = z.enum(['app-down', 'no-target', 'not-published', 'resolve-failed']);
export type TunnelError = z.infer<typeof tunnelErrorSchema>;

export const authModeSchema = z.enum(['public', 'sprite']);
export type AuthMode = z.infer<typeof authModeSchema>;

const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/);

export const publicationSchema = z.object({
  name: z.string().min(1).max(63),
  auth: authModeSchema,
  /** sha256 (hex) of each access token that may open this sprite; the relay never sees the tokens. */
  accessTokenHashes: z.array(sha256Hex).max(10_000).default([]),
  /** Ed25519 public key (base64url, 32 bytes, JWK `x`) that signs this sprite's share links. */
  shareKey: z.string().regex(/^[A-Za-z0-9_-]{43}$/).optional(),
  /**
   * Random id of this publication (relay/share-link.ts): share links name it, and a new one revokes
   * every earlier link and cookie. Without it (a daemon older than ids) share links are refused.
   */
  publicationId: z.string().regex(PUBLICATION_ID_PATTERN).optional(),
});
export type Publication = z.infer<typeof publicationSchema>;

export const clientMessageSchema = z.discriminatedUnion('type', [
  /** Replaces the account's whole set of publications (sent first after every connect). */
  z.object({ type: z.literal('sync'), id: z.number().int(), sprites: z.array(publicationSchema).max(10_000) }),
  z.object({ type: z.literal('publish'), id: z.number().int(), sprite: publicationSchema }),
  z.object({ type: z.literal('unpublish'), id: z.number().int(), name: z.string().min(1).max(63) }),
]);
export type ClientMessage = z.infer<typeof clientMessageSchema>;

export const relayMessageSchema = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('hello'),
    account: z.string(),
    suffix: z.string(),
    domain: z.string(),
    limits: z.object({ maxConcurrentStreams: z.number(), maxBodyBytes: z.number(), holdTimeoutMs: z.number() }),
  }),
  z.object({
    type: z.literal('result'),
    id: z.number().int(),
    ok: z.boolean(),
    error: z.string().optional(),
    /** Per-sprite rejections of a `sync`. */
    rejected: z.array(z.object({ name: z.string(), error: z.string() })).optional(),
  }),
  /** The relay is about to close this tunnel; `retry: false` means reconnecting is pointless. */
  z.object({ type: z.literal('closing'), reason: z.string(), retry: z.boolean() }),
]);
export type RelayMessage = z.infer<typeof relayMessageSchema>;
