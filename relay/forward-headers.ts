/**
 * Header hygiene at each hop. Hop-by-hop headers (RFC 9110 §7.6.1, plus whatever `Connection` names)
 * must not be forwarded — and HTTP/2 rejects them outright. The relay is the trust boundary, so it
 * replaces client-supplied X-Forwarded-* unless it runs behind a proxy it was told to trust.
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'proxy-authenticate',
  'proxy-authorization',
  'http2-settings',
  'host',
]);

const NOTHING: ReadonlySet<string> = new Set();

/**
 * Copies end-to-end headers: drops hop-by-hop ones, the ones `Connection` lists, HTTP/2
 * pseudo-headers, our own `spritely-*` control headers, any name in `drop`, and — unless
 * `keepForwarded` (the daemon, which trusts the relay) — client-supplied `x-forwarded-*`.
 */
export function endToEndHeaders(headers: IncomingHttpHeaders, drop: ReadonlySet<string> = NOTHING, keepForwarded = false): OutgoingHttpHeaders {
  const listed = new Set<string>();
  const connection = headers.connection;
  if (typeof connection === 'string') {
    for (const token of connection.split(',')) listed.add(token.trim().toLowerCase());
  }
  const out: OutgoingHttpHeaders = {};
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined) continue;
    if (name.charCodeAt(0) === 58 /* ':' */) continue;
    if (HOP_BY_HOP.has(name) || listed.has(name) || drop.has(name)) continue;
    if (name.startsWith('spritely-') || (!keepForwarded && name.startsWith('x-forwarded-'))) continue;
    out[name] = value;
  }
  return out;
}

export interface ForwardedInput {
  /** The TCP peer of the relay (the client, or the trusted proxy). */
  peerIp: string;
  /** The scheme the relay itself was reached with. */
  scheme: 'http' | 'https';
  host: string;
  trustProxy: boolean;
  incoming: IncomingHttpHeaders;
}

/** X-Forwarded-For/-Proto/-Host for the origin. */
export function forwardedHeaders(input: ForwardedInput): { 'x-forwarded-for': string; 'x-forwarded-proto': string; 'x-forwarded-host': string } {
  let chain = input.peerIp;
  let proto: string = input.scheme;
  if (input.trustProxy) {
    const prior = headerValue(input.incoming['x-forwarded-for']);
    if (prior) chain = `${prior}, ${input.peerIp}`;
    const claimed = headerValue(input.incoming['x-forwarded-proto'])?.split(',')[0].trim().toLowerCase();
    if (claimed === 'http' || claimed === 'https') proto = claimed;
  }
  return { 'x-forwarded-for': chain, 'x-forwarded-proto': proto, 'x-forwarded-host': input.host };
}

/** The client address used for rate limiting: the proxy's view when trusted, else the TCP peer. */
export function clientIp(peerIp: string, incoming: IncomingHttpHeaders, trustProxy: boolean): string {
  if (!trustProxy) return peerIp;
  const chain = headerValue(incoming['x-forwarded-for']);
  const last = chain?.split(',').pop()?.trim();
  return last || peerIp;
}

/** The scheme the public client used. */
export function publicScheme(ownScheme: 'http' | 'https', incoming: IncomingHttpHeaders, trustProxy: boolean): 'http' | 'https' {
  if (!trustProxy) return ownScheme;
  const claimed = headerValue(incoming['x-forwarded-proto'])?.split(',')[0].trim().toLowerCase();
  return claimed === 'http' || claimed === 'https' ? claimed : ownScheme;
}

/** Removes one cookie from a Cookie header; returns undefined when nothing is left. */
export function withoutCookie(cookieHeader: string | undefined, name: string): string | undefined {
  if (!cookieHeader) return undefined;
  const kept = cookieHeader
    .split(';')
    .map((part) => part.trim())
    .filter((part) => part !== '' && part.split('=', 1)[0].trim() !== name);
  return kept.length > 0 ? kept.join('; ') : undefined;
}

/** The value of one cookie, or null. */
export function readCookie(cookieHeader: string | undefined, name: string): string | null {
  if (!cookieHeader) return null;
  for (const part of cookieHeader.split(';')) {
    const eq = part.indexOf('=');
    if (eq === -1) continue;
    if (part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return null;
}

/** Request targets in absolute form (`GET http://host/x`) become origin form (`/x`). */
export function originForm(target: string): string {
  if (target.startsWith('/')) return target;
  try {
    const url = new URL(target);
    return `${url.pathname}${url.search}`;
  } catch {
    return '/';
  }
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(', ') : value;
}
