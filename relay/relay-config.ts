/**
 * Relay settings: parsing of CLI values and the default limits, each tuned constant explained.
 */

export interface RelayLimits {
  /** Largest request body forwarded (413 beyond). */
  maxBodyBytes: number;
  /** Largest request head (431 beyond). */
  maxHeaderBytes: number;
  /** In-flight requests per tunnel (503 beyond): bounds what one installation can hold open. */
  maxStreamsPerTunnel: number;
  /** How long a request waits for the sprite's answer (it may be waking) before a 504. */
  holdTimeoutMs: number;
  /** A client must finish sending its request head within this (slowloris guard; 408 after). */
  headersTimeoutMs: number;
  /** A public connection with no traffic either way for this long is closed. */
  idleTimeoutMs: number;
  /** A tunnel that dropped keeps its names reserved (and requests held) this long for a reconnect. */
  tunnelGraceMs: number;
  /** Request rate per client — IPv4 address or IPv6 /64 (relay/rate-key.ts) — (0 = off) and burst. */
  ratePerSecond: number;
  rateBurst: number;
}

export const DEFAULT_LIMITS: RelayLimits = {
  maxBodyBytes: 100 * 1024 * 1024,
  maxHeaderBytes: 16 * 1024,
  maxStreamsPerTunnel: 512,
  holdTimeoutMs: 30_000,
  headersTimeoutMs: 10_000,
  idleTimeoutMs: 120_000,
  tunnelGraceMs: 60_000,
  ratePerSecond: 100,
  rateBurst: 400,
};

/** `HOST:PORT`, `[V6]:PORT` or `PORT`. */
export function parseListen(value: string): { host: string; port: number } {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s]+)):(\d+)$/.exec(value) ?? /^()()(\d+)$/.exec(value);
  if (!match) throw new Error(`--listen must be HOST:PORT, got ${JSON.stringify(value)}`);
  const port = Number(match[3]);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`invalid port in ${JSON.stringify(value)}`);
  return { host: match[1] || match[2] || '0.0.0.0', port };
}

/** `1048576`, `512k`, `10mb`, `1g` (binary units) → bytes. */
export function parseByteSize(value: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([kmg]?)i?b?$/i.exec(value.trim());
  if (!match) throw new Error(`invalid size ${JSON.stringify(value)} (examples: 512k, 10mb)`);
  const scale = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[match[2].toLowerCase() as '' | 'k' | 'm' | 'g'];
  return Math.floor(Number(match[1]) * scale);
}

/** `500ms`, `30s`, `2m`, or plain milliseconds. */
export function parseDuration(value: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h)?$/.exec(value.trim());
  if (!match) throw new Error(`invalid duration ${JSON.stringify(value)} (examples: 500ms, 30s, 2m)`);
  const scale = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(match[2] ?? 'ms') as 'ms' | 's' | 'm' | 'h'];
  return Math.round(Number(match[1]) * scale);
}

/** Validates a relay domain (the apex its sprite hosts hang under). */
export function parseDomain(value: string): string {
  const domain = value.trim().toLowerCase().replace(/\.$/, '');
  if (!/^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*$/.test(domain)) {
    throw new Error(`invalid --domain ${JSON.stringify(value)}`);
  }
  return domain;
}
