/**
 * The daemon's end of one tunneled request: forwards an HTTP/2 stream from the relay to the sprite's
 * app over plain HTTP/1.1 — or, for an extended CONNECT (RFC 8441), performs the HTTP/1.1 upgrade
 * (WebSocket) against the app and splices the bytes. Both directions stream with backpressure, so
 * SSE and downloads pass unbuffered and a slow phone slows the app rather than filling memory.
 */
import http from 'node:http';
import http2, { type IncomingHttpHeaders, type OutgoingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import { endToEndHeaders } from './forward-headers.ts';
import { pipeH2, pumpAndEnd } from './h2-pipe.ts';
import { ERROR_HEADER, UPGRADE_STATUS_HEADER, type TunnelError } from './tunnel-protocol.ts';

export interface OriginTarget {
  host: string;
  port: number;
}

const NO_BODY_STATUS = new Set([204, 304]);
const INTERNAL_ERROR = http2.constants.NGHTTP2_INTERNAL_ERROR;

/** Answers a stream with the daemon-side error the relay turns into its 502 page. */
export function respondTunnelError(stream: ServerHttp2Stream, error: TunnelError, status = 502): void {
  if (stream.destroyed || stream.closed) return;
  if (stream.headersSent) {
    stream.close(INTERNAL_ERROR);
    return;
  }
  stream.respond({ ':status': status, [ERROR_HEADER]: error, 'content-length': '0' }, { endStream: true });
}

function originHeaders(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const out = endToEndHeaders(headers, undefined, true);
  out.host = headers[':authority'];
  return out;
}

function answerHeaders(status: number, headers: http.IncomingHttpHeaders): OutgoingHttpHeaders {
  const out = endToEndHeaders(headers, undefined, true);
  out[':status'] = status;
  return out;
}

/** Forwards one plain request. `agent` keeps connections to the app alive between requests. */
export function proxyRequest(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, target: OriginTarget, agent: http.Agent): void {
  const method = headers[':method'] ?? 'GET';
  const request = http.request({ host: target.host, port: target.port, method, path: headers[':path'], headers: originHeaders(headers), agent });
  request.setNoDelay(true);
  let done = false;
  request.on('response', (response) => {
    if (stream.destroyed || stream.closed) {
      response.destroy();
      return;
    }
    const status = response.statusCode ?? 502;
    const empty = method === 'HEAD' || NO_BODY_STATUS.has(status);
    try {
      stream.respond(answerHeaders(status, response.headers), { endStream: empty });
    } catch {
      response.destroy();
      stream.close(INTERNAL_ERROR);
      return;
    }
    if (empty) {
      response.resume();
      done = true;
      return;
    }
    pumpAndEnd(response, stream);
    response.on('end', () => {
      done = true;
    });
    response.on('error', () => stream.close(INTERNAL_ERROR));
  });
  request.on('error', () => respondTunnelError(stream, 'app-down'));
  stream.on('close', () => {
    if (!done) request.destroy();
  });
  pipeH2(stream, request);
}

/** Forwards an extended CONNECT as an HTTP/1.1 upgrade to the app and splices the two. */
export function proxyUpgrade(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, target: OriginTarget): void {
  const out = originHeaders(headers);
  out.connection = 'Upgrade';
  out.upgrade = headers[':protocol'];
  const request = http.request({ host: target.host, port: target.port, method: 'GET', path: headers[':path'], headers: out, agent: false });
  request.on('upgrade', (response, socket, head) => {
    socket.on('error', () => stream.close(INTERNAL_ERROR));
    if (stream.destroyed || stream.closed) {
      socket.destroy();
      return;
    }
    socket.setNoDelay(true);
    const answer = answerHeaders(200, response.headers);
    answer[UPGRADE_STATUS_HEADER] = '101';
    stream.respond(answer);
    if (head.length > 0) stream.write(head);
    socket.pipe(stream);
    pipeH2(stream, socket);
    stream.on('close', () => socket.destroy());
  });
  request.on('response', (response) => {
    // The app declined the upgrade: pass its answer back as it is.
    if (stream.destroyed || stream.closed) {
      response.destroy();
      return;
    }
    stream.respond(answerHeaders(response.statusCode ?? 502, response.headers));
    response.pipe(stream);
  });
  request.on('error', () => respondTunnelError(stream, 'app-down'));
  stream.on('close', () => request.destroy());
  request.end();
}
