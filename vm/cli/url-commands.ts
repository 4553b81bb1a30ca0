/** `url` (a sprite's local URL and, through the relay, its public one) and `relay` (the tunnel). */
import fs from 'node:fs';
import { client, nameArg, print } from './command-kit.ts';
import { parseDuration } from './ui.ts';
import { readSecret } from './secret-input.ts';
import { SpritelyError } from '../errors.ts';

interface Json {
  json?: boolean;
}

export async function url(name: string, opts: Json & { port?: number; public?: boolean; auth?: 'sprite' | 'public'; share?: string; off?: boolean; revokeLinks?: boolean }): Promise<void> {
  nameArg(name);
  const api = await client();
  const local = await api.call('sprites.url', { name, port: opts.port });
  const out: Record<string, unknown> = { ...local };
  const lines = [`local   ${local.local}  → port ${local.port} in ${name}`];
  if (opts.off) {
    await api.call('sprites.publish', { name, off: true });
    out.public = null;
    lines.push('public  (unpublished)');
  } else if (opts.public || opts.auth) {
    const p = await api.call('sprites.publish', { name, auth: opts.auth });
    Object.assign(out, { public: p.url, auth: p.auth, accessToken: p.accessToken, live: p.live });
    lines.push(`public  ${p.url}  [${p.auth}${p.live ? '' : ', published once the relay connects'}]`);
    if (p.accessToken) lines.push(`token   ${p.accessToken}  (send as "Authorization: Bearer …", or make a share link with --share 1h)`);
  } else if (opts.revokeLinks) {
    const r = await api.call('sprites.revokeLinks', { name });
    Object.assign(out, { public: r.url, auth: r.auth, live: r.live, linksRevoked: true });
    lines.push(`public  ${r.url}  [${r.auth}]`, `links   every earlier share link is revoked${r.live ? '' : ' (the relay hears it as soon as it reconnects)'}`);
  } else {
    const st = await api.call('relay.status').catch(() => null);
    const pub = st?.published.find((x) => x.name === name);
    if (pub) {
      Object.assign(out, { public: pub.url, auth: pub.auth });
      lines.push(`public  ${pub.url}  [${pub.auth}]`);
    }
  }
  if (opts.share) {
    const s = await api.call('sprites.share', { name, ttlSec: parseDuration(opts.share) });
    out.share = s;
    lines.push(`share   ${s.link}  (until ${s.expiresAt})`);
  }
  print(opts.json, out, () => lines.join('\n'));
}

export async function relayConnect(url: string, opts: Json & { token?: string; tokenFile?: string; ca?: string }): Promise<void> {
  if (opts.token !== undefined) {
    throw new SpritelyError('invalid_argument', 'A token on the command line is visible to every local user (ps, /proc). Pass it with --token-file FILE, pipe it on stdin, or type it at the prompt.');
  }
  const token = await readSecret('relay token', { file: opts.tokenFile });
  const ca = opts.ca ? fs.readFileSync(opts.ca, 'utf8') : undefined;
  const st = await (await client()).call('relay.connect', { url, token, ca });
  print(opts.json, st, () => `relay ${st.url}: ${st.status}${st.reason ? ` (${st.reason})` : ''}${st.account ? `, account ${st.account}` : ''}`);
  if (st.status === 'unauthorized') process.exitCode = 1;
}

export async function relayStatus(opts: Json): Promise<void> {
  const st = await (await client()).call('relay.status');
  print(opts.json, st, () => (st.configured ? [`relay ${st.url}: ${st.status}${st.reason ? ` (${st.reason})` : ''}`, ...st.published.map((p) => `  ${p.name}  ${p.url}  [${p.auth}]`)].join('\n') : 'no relay connected (spritely relay connect URL --token-file FILE)'));
}

export async function relayDisconnect(): Promise<void> {
  await (await client()).call('relay.disconnect');
  process.stdout.write('relay disconnected\n');
}
