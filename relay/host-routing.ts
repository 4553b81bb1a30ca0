/**
 * Maps public host names to sprites. A sprite's public host is `<sprite>-<suffix>.<domain>`, where
 * the suffix belongs to one account: the relay builds labels from the account's own suffix, so no
 * account can claim a name that routes to another. The suffix is the last `-` segment (suffixes have
 * no hyphens), so sprite names may contain hyphens.
 */

export const SPRITE_NAME_PATTERN = /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/;
export const SUFFIX_PATTERN = /^[a-z0-9]{4,16}$/;
const MAX_LABEL = 63;

export type HostRoute =
  | { kind: 'sprite'; label: string; sprite: string; suffix: string }
  /** The relay's own name (the tunnel endpoint and a health page live here). */
  | { kind: 'apex' }
  | { kind: 'unknown' };

/** Lower-cases, drops a trailing dot and the port; returns '' for garbage (IPv6 literals included). */
export function normalizeHost(host: string | undefined): string {
  if (!host) return '';
  let value = host.trim().toLowerCase();
  if (value.startsWith('[')) return '';
  const colon = value.indexOf(':');
  if (colon !== -1) value = value.slice(0, colon);
  if (value.endsWith('.')) value = value.slice(0, -1);
  return /^[a-z0-9.-]+$/.test(value) ? value : '';
}

export function parsePublicHost(host: string | undefined, domain: string): HostRoute {
  const name = normalizeHost(host);
  const apex = domain.toLowerCase();
  if (name === '') return { kind: 'unknown' };
  if (name === apex) return { kind: 'apex' };
  if (!name.endsWith(`.${apex}`)) return { kind: 'unknown' };
  const label = name.slice(0, -apex.length - 1);
  if (label.includes('.') || label.length > MAX_LABEL) return { kind: 'unknown' };
  const dash = label.lastIndexOf('-');
  if (dash <= 0) return { kind: 'unknown' };
  const sprite = label.slice(0, dash);
  const suffix = label.slice(dash + 1);
  if (!SPRITE_NAME_PATTERN.test(sprite) || !SUFFIX_PATTERN.test(suffix)) return { kind: 'unknown' };
  return { kind: 'sprite', label, sprite, suffix };
}

/** Why `name` cannot be published under `suffix`, or null when it can. */
export function spriteNameProblem(name: string, suffix: string): string | null {
  if (!SPRITE_NAME_PATTERN.test(name)) {
    return `invalid sprite name ${JSON.stringify(name)}: use lower-case letters, digits and inner hyphens`;
  }
  if (name.length + 1 + suffix.length > MAX_LABEL) return `sprite name ${JSON.stringify(name)} is too long for a DNS label`;
  return null;
}

export function spriteLabel(name: string, suffix: string): string {
  return `${name}-${suffix}`;
}

/** The public URL of a sprite; `port` is omitted when it is the scheme's default. */
export function spriteUrl(name: string, suffix: string, domain: string, protocol = 'https:', port = ''): string {
  const defaultPort = protocol === 'https:' ? '443' : '80';
  const portPart = port && port !== defaultPort ? `:${port}` : '';
  return `${protocol}//${spriteLabel(name, suffix)}.${domain}${portPart}`;
}
