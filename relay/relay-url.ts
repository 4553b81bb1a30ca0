/**
 * Which relay URLs the daemon may send its tunnel token to. The token is a bearer credential for the
 * whole relay account — whoever replays it takes over every public URL of the installation (the
 * newest connection wins) — and the same connection carries every visitor's access token and cookie.
 * So the daemon speaks to a relay only over TLS (`https://`, a self-signed relay with a private CA
 * included), or over plain `http://` to this machine's own loopback (a local test relay, or an SSH
 * port-forward), where nothing crosses a network.
 */
import ipaddr from 'ipaddr.js';

/** Why the daemon must not connect to `url`, as a sentence for the user; null when it may. */
export function relayUrlProblem(url: string): string | null {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return `"${url}" is not a URL (e.g. https://relay.example.com).`;
  }
  if (parsed.protocol === 'https:') return null;
  if (parsed.protocol !== 'http:') return `The relay URL must start with https:// (got ${parsed.protocol}//).`;
  if (isLoopbackHost(parsed.hostname)) return null;
  return (
    `Refusing ${parsed.origin}: over plain http:// the tunnel token (and every visitor's access token) would cross the network unencrypted. ` +
    'Use https:// (a relay with a self-signed certificate works with --ca FILE), or http:// only to this machine (127.0.0.1, [::1], localhost), e.g. through an SSH port-forward.'
  );
}

/** `localhost`, 127.0.0.0/8, ::1 and their IPv4-mapped forms (`hostname` as URL gives it, IPv6 in brackets). */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.toLowerCase().replace(/\.$/, '');
  if (host === 'localhost') return true;
  const literal = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  if (!ipaddr.isValid(literal)) return false;
  if (!literal.includes(':') && !ipaddr.IPv4.isValidFourPartDecimal(literal)) return false;
  return ipaddr.process(literal).range() === 'loopback';
}
