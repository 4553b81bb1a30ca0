/**
 * The pass-through's decisions, kept pure: which requests to the local daemon go to a remote host
 * (`/v1/hosts/HOST/REST` → that host's `/v1/REST`), which must not, which headers cross, and the
 * one answer that must change on the way back. The remote API is the same contract as the local
 * one — nothing is declared twice: a client reaches method M on host H by prefixing M's own path.
 *
 * What does not cross: this computer's credentials (the API token, the UI session cookie) and the
 * browser's Origin (the local daemon has already checked it); a remote host's own hosts (no
 * chaining: each daemon drives only what it owns) and its browser login (that UI is for a browser
 * on the server).
 */
import type http from 'node:http';
import { matchRoute, methods, type MethodName, type MethodOutput } from '../api/contract.ts';
import { spriteNameProblem } from '../names.ts';
import { hostNameProblem, LOCAL_HOST } from './host-records.ts';

export type HostRoute = { host: string; remotePath: string } | { problem: string; status: 400 | 403 | 404 };

const HOSTED = /^\/v1\/hosts\/([^/]+)(\/.*)$/;

/** The host and remote path a local request path names, a refusal, or null (not a pass-through). */
export function hostRoute(pathname: string): HostRoute | null {
  const m = HOSTED.exec(pathname);
  if (!m) return null;
  let host: string;
  try {
    host = decodeURIComponent(m[1]);
  } catch {
    return { problem: 'The host name in the path is not valid percent-encoding.', status: 400 };
  }
  const rest = m[2];
  if (host === LOCAL_HOST) return { problem: `"local" is this computer: call ${'/v1' + rest} directly.`, status: 400 };
  const problem = hostNameProblem(host);
  if (problem) return { problem: `Invalid host name: ${problem}.`, status: 400 };
  if (rest === '/hosts' || rest.startsWith('/hosts/')) return { problem: `The hosts of host "${host}" are not reachable through it: each daemon drives only its own machine.`, status: 403 };
  if (rest.startsWith('/ui/')) return { problem: `The browser login of host "${host}" is for a browser on that server; this computer's UI shows its sprites already.`, status: 403 };
  return { host, remotePath: '/v1' + rest };
}

/** The kind of stream a remote WebSocket path opens (how a lost connection is reported on it). */
export function streamKind(remotePath: string): 'events' | 'exec' | 'terminal' | 'other' {
  if (remotePath === '/v1/events') return 'events';
  const m = /^\/v1\/sprites\/[^/]+\/(exec|terminal)$/.exec(remotePath);
  return m ? (m[1] as 'exec' | 'terminal') : 'other';
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade']);
/** This computer's credentials and browser context: checked here, never sent to a server. */
const LOCAL_ONLY = new Set(['authorization', 'cookie', 'origin', 'referer', 'host', 'forwarded', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto']);

/** Request headers for the remote daemon. */
export function upstreamRequestHeaders(headers: http.IncomingHttpHeaders): http.OutgoingHttpHeaders {
  const named = String(headers.connection ?? '')
    .split(',')
    .map((t) => t.trim().toLowerCase());
  const out: http.OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(headers)) {
    const key = k.toLowerCase();
    if (v === undefined || HOP_BY_HOP.has(key) || LOCAL_ONLY.has(key) || named.includes(key) || key.startsWith('sec-websocket-')) continue;
    out[key] = v;
  }
  out.host = 'spritely';
  return out;
}

/** Response headers for the local client. */
export function downstreamResponseHeaders(headers: http.IncomingHttpHeaders): http.OutgoingHttpHeaders {
  const out: http.OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(headers)) {
    if (v === undefined || HOP_BY_HOP.has(k.toLowerCase()) || k.toLowerCase() === 'set-cookie') continue;
    out[k] = v;
  }
  return out;
}

export interface RewriteContext {
  host: string;
  /** This computer's local URL for a sprite of that host (`http://NAME.HOST.localhost:PORT/`). */
  localUrl: (host: string, sprite: string) => string | null;
}

type Rewrite<M extends MethodName> = (out: MethodOutput<M>, params: Record<string, string>, ctx: RewriteContext) => MethodOutput<M>;

/**
 * Answers that name something of the server that this computer must name differently. Only the
 * local URL: the server's `http://NAME.localhost:PORT/` is on its own loopback; this computer
 * serves the same sprite at `http://NAME.HOST.localhost:PORT/` through the same SSH connection.
 */
const REWRITES: { [M in MethodName]?: Rewrite<M> } = {
  'sprites.url': (out, params, ctx) => {
    const local = ctx.localUrl(ctx.host, params.name);
    if (!local) throw new Error('This computer serves no local URLs (its URL proxy port is not open).');
    return { ...out, local };
  },
};

/** The method a remote request calls, when its answer needs rewriting (else null: stream it). */
export function rewriteFor(httpMethod: string, remotePath: string): { method: MethodName; params: Record<string, string> } | null {
  for (const name of Object.keys(REWRITES) as MethodName[]) {
    const def = methods[name];
    if (def.http !== httpMethod) continue;
    const params = matchRoute(def, remotePath);
    if (params) return { method: name, params };
  }
  return null;
}

/** Applies the rewrite to a successful answer's JSON body. */
export function rewriteBody(method: MethodName, params: Record<string, string>, body: unknown, ctx: RewriteContext): unknown {
  const fn = REWRITES[method] as Rewrite<MethodName> | undefined;
  return fn ? fn(body as never, params, ctx) : body;
}

/** A remote sprite's local URL name: `SPRITE.HOST.localhost[:port]` → both names, or null. */
export function hostedSpriteFromHost(hostHeader: string | undefined): { sprite: string; host: string } | null {
  if (!hostHeader) return null;
  const m = /^([^.:]+)\.([^.:]+)\.localhost(?::\d+)?$/i.exec(hostHeader.trim());
  if (!m) return null;
  const sprite = m[1].toLowerCase();
  const host = m[2].toLowerCase();
  if (hostNameProblem(host) || spriteNameProblem(sprite)) return null;
  return { sprite, host };
}
