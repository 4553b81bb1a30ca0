/**
 * A sprite's network policy, decided on the host. The guest's only way out is the daemon's egress
 * proxy, so this is the whole of what a sprite may reach:
 *   internet — any public address; never the host itself (its loopback, its own interface
 *              addresses), the LAN (private ranges), link-local (cloud metadata) or multicast;
 *   none     — nothing;
 *   allow    — only the listed names (`example.com`, `*.example.com`) or IP literals. A listed
 *              name may resolve to a private address (the user named it); loopback stays refused.
 * Names are resolved here, checked, and the connection goes to the checked address, so a DNS
 * answer cannot change between the check and the connect (no rebinding).
 */
import net from 'node:net';

export type NetworkMode = 'internet' | 'none' | 'allow';

export interface NetworkPolicy {
  mode: NetworkMode;
  /** For `allow`: host names, `*.domain` wildcards or IP literals. */
  allow: string[];
}

export const DEFAULT_NETWORK: NetworkPolicy = { mode: 'internet', allow: [] };

const HOST_PATTERN = /^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;

/** Parses `internet`, `none` or `allow=HOST,HOST…` (the CLI's and API's spelling). */
export function parseNetworkPolicy(text: string): NetworkPolicy {
  const t = text.trim();
  if (t === 'internet' || t === 'none') return { mode: t, allow: [] };
  const m = /^allow=(.*)$/s.exec(t);
  if (!m) throw new Error(`"${text}" is not a network policy: use internet, none or allow=HOST[,HOST…]`);
  return { mode: 'allow', allow: normalizeAllowList(m[1].split(',')) };
}

export function normalizeAllowList(entries: string[]): string[] {
  const out: string[] = [];
  for (const raw of entries) {
    const e = raw.trim().toLowerCase().replace(/\.$/, '');
    if (!e) continue;
    if (!(net.isIP(e.replace(/^\[|\]$/g, '')) || (e.length <= 253 && HOST_PATTERN.test(e)))) {
      throw new Error(`"${raw}" is not a host name, *.domain or IP address`);
    }
    if (!out.includes(e)) out.push(e);
  }
  if (out.length === 0) throw new Error('allow= needs at least one host, e.g. allow=deb.debian.org,*.github.com');
  if (out.length > 256) throw new Error('allow= takes at most 256 hosts');
  return out;
}

export function formatNetworkPolicy(p: NetworkPolicy): string {
  return p.mode === 'allow' ? `allow=${p.allow.join(',')}` : p.mode;
}

/** Whether `host` (a name or IP literal, lower-case) is named by the allow list. */
export function allowListMatches(allow: string[], host: string): boolean {
  const h = host.toLowerCase().replace(/\.$/, '').replace(/^\[|\]$/g, '');
  return allow.some((e) => {
    const entry = e.replace(/^\[|\]$/g, '');
    if (entry.startsWith('*.')) return h.endsWith(entry.slice(1)) && h.length > entry.length - 1;
    return h === entry;
  });
}

/** Ranges no sprite reaches in `internet` mode. Loopback and unspecified are refused in every mode. */
const ALWAYS_BLOCKED = ['127.0.0.0/8', '0.0.0.0/8', '::1/128', '::/128'];
const NON_PUBLIC = [
  '10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', // private (the LAN)
  '100.64.0.0/10', // carrier-grade NAT (also Tailscale)
  '169.254.0.0/16', // link-local, including cloud metadata at 169.254.169.254
  '224.0.0.0/4', '240.0.0.0/4', '255.255.255.255/32', // multicast, reserved, broadcast
  'fc00::/7', 'fe80::/10', 'ff00::/8', // unique-local, link-local, multicast
];

function blockList(cidrs: string[]): net.BlockList {
  const list = new net.BlockList();
  for (const c of cidrs) {
    const [addr, bits] = c.split('/');
    list.addSubnet(addr, Number(bits), net.isIPv6(addr) ? 'ipv6' : 'ipv4');
  }
  return list;
}

const alwaysBlocked = blockList(ALWAYS_BLOCKED);
const nonPublic = blockList(NON_PUBLIC);

function unmapped(address: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return m ? m[1] : address;
}

export interface EgressDecision {
  ok: boolean;
  /** For a refusal: one sentence a person in the guest can act on. */
  reason?: string;
}

/**
 * Decides whether a sprite with `policy` may connect to `address` (already resolved) on behalf of
 * a request for `host`. `hostAddresses` are the host's own interface addresses.
 */
export function decideEgress(policy: NetworkPolicy, host: string, address: string, hostAddresses: string[]): EgressDecision {
  const a = unmapped(address);
  const family = net.isIPv6(a) ? 'ipv6' : 'ipv4';
  if (policy.mode === 'none') return { ok: false, reason: 'this sprite has no network (network none)' };
  if (policy.mode === 'allow' && !allowListMatches(policy.allow, host)) return { ok: false, reason: `${host} is not in this sprite's allow list (${formatNetworkPolicy(policy)})` };
  if (alwaysBlocked.check(a, family)) return { ok: false, reason: `${host} is the host's loopback (${a}), which sprites never reach` };
  if (policy.mode === 'allow') return { ok: true };
  if (hostAddresses.map(unmapped).includes(a)) return { ok: false, reason: `${host} (${a}) is this computer, which sprites never reach` };
  if (nonPublic.check(a, family)) return { ok: false, reason: `${host} (${a}) is a private, link-local or multicast address; only public addresses are reachable (name it with allow= to reach it)` };
  return { ok: true };
}
