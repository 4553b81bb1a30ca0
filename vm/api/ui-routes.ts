/**
 * What the loopback port serves outside `/v1/`: the app shell (public code, no login needed —
 * everything it then asks of the daemon needs a token) and the three browser login steps of
 * docs/ui.md, `POST /ui/login`, `/ui/identity` and `/ui/resume` (small JSON bodies, answered only
 * on `127.0.0.1:PORT`). The server has already checked Host and Origin.
 */
import type http from 'node:http';
import { SpritelyError } from '../errors.ts';
import { loopbackHost } from './access.ts';
import type { UiAuth } from './ui-auth.ts';
import { serveStatic, uiCsp } from './ui-static.ts';

const MAX_STEP_BODY = 8 * 1024;

/** Earlier versions set this cookie on 127.0.0.1, where it went to every port; the daemon clears it. */
export const CLEAR_LEGACY_COOKIE = 'spritely_session=; Max-Age=0; Path=/; HttpOnly; SameSite=Strict';

const STEPS: Record<string, (auth: UiAuth, body: unknown, host: string) => unknown> = {
  '/ui/login': (auth, body, host) => auth.login(body, host),
  '/ui/identity': (auth, body, host) => auth.answerIdentity(body, host),
  '/ui/resume': (auth, body, host) => auth.resume(body, host),
};

export interface UiRouteContext {
  auth: UiAuth | null;
  port: number;
  uiRoot?: string;
  sendJson(res: http.ServerResponse, status: number, body: unknown): void;
  sendPage(res: http.ServerResponse, status: number, message: string): void;
}

/** Throws SpritelyError for the login steps (sent as JSON by the caller); pages for the rest. */
export async function handleUiRoute(ctx: UiRouteContext, req: http.IncomingMessage, res: http.ServerResponse, url: URL): Promise<void> {
  const step = Object.hasOwn(STEPS, url.pathname) ? STEPS[url.pathname] : undefined;
  if (step && req.method === 'POST') {
    if (!ctx.auth) throw new SpritelyError('unavailable', 'This daemon has no browser logins.');
    const host = loopbackHost(ctx.port);
    if (req.headers.host !== host) throw new SpritelyError('permission_denied', `Browser logins work on http://${host} only.`);
    const body = await readSmallJson(req);
    ctx.sendJson(res, 200, step(ctx.auth, body, host));
    return;
  }
  res.setHeader('Set-Cookie', CLEAR_LEGACY_COOKIE);
  if (url.pathname === '/ui/login') return ctx.sendPage(res, 410, 'This kind of login link is no longer used. Run `spritely ui` for a new one.');
  if (step) return ctx.sendPage(res, 405, 'Method not allowed.');
  if (req.method !== 'GET' && req.method !== 'HEAD') return ctx.sendPage(res, 405, 'Method not allowed.');
  const root = ctx.uiRoot;
  const csp = uiCsp(ctx.port);
  if (root && serveStatic(root, url.pathname, res, csp)) return;
  if (root && !url.pathname.includes('.') && serveStatic(root, '/index.html', res, csp)) return;
  ctx.sendPage(res, 404, root ? 'Not found.' : 'The UI is not built (npm run build:renderer).');
}

/** Reads a small JSON body; a larger one is drained (to a bound) so the 413 reaches the client. */
function readSmallJson(req: http.IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > 64 * MAX_STEP_BODY) req.destroy();
      else if (size <= MAX_STEP_BODY) chunks.push(c);
    });
    req.on('end', () => {
      if (size > MAX_STEP_BODY) return reject(new SpritelyError('payload_too_large', `A login request is at most ${MAX_STEP_BODY} bytes.`));
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      } catch {
        reject(new SpritelyError('invalid_argument', 'A login request must be a JSON object.'));
      }
    });
    req.on('error', reject);
    req.on('close', () => reject(new SpritelyError('invalid_argument', 'The login request was cut off.')));
  });
}
