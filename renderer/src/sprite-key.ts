/**
 * Which machine a sprite is on, in one string. The UI keys everything (the list, tabs, pending
 * actions, checkpoint trees) by sprite; with remote hosts the same name can exist on two machines,
 * so a remote sprite's key is `NAME@HOST` ("@" cannot occur in a sprite or host name) and a local
 * one's is its plain name, as before. The transport routes a call whose `name` is such a key to
 * `/v1/hosts/HOST/…` (the local daemon passes it to that host) with the plain name.
 */

export function spriteKey(host: string | null, name: string): string {
  return host ? `${name}@${host}` : name;
}

export function parseSpriteKey(key: string): { host: string | null; name: string } {
  const at = key.indexOf('@');
  return at < 0 ? { host: null, name: key } : { host: key.slice(at + 1), name: key.slice(0, at) };
}

export function hostOfKey(key: string): string | null {
  return parseSpriteKey(key).host;
}

/** A sprite in a sentence: `dev`, or `dev on box` for a remote one. */
export function spriteLabel(key: string): string {
  const { host, name } = parseSpriteKey(key);
  return host ? `${name} on ${host}` : name;
}

/** The path of an API method on a host: `/v1/X` → `/v1/hosts/HOST/X`. */
export function hostedPath(path: string, host: string | null): string {
  return host ? path.replace(/^\/v1\//, `/v1/hosts/${encodeURIComponent(host)}/`) : path;
}

/**
 * A call's host and its input with plain names: `name` (and, for a fork, `newName`) may be keys,
 * and so may `sprite` (the sprite a `config.set` is for). A fork stays on its source's host.
 */
export function routeInput(input: Record<string, unknown>): { host: string | null; input: Record<string, unknown> } {
  const field = typeof input.name === 'string' ? 'name' : typeof input.sprite === 'string' ? 'sprite' : null;
  if (!field) return { host: null, input };
  const { host, name } = parseSpriteKey(input[field] as string);
  if (!host) return { host: null, input };
  const out: Record<string, unknown> = { ...input, [field]: name };
  if (typeof input.newName === 'string') out.newName = parseSpriteKey(input.newName).name;
  return { host, input: out };
}
