/**
 * WS /v1/sprites/:name/terminal[?session=ID&cols=&rows=]: opens a new shell session, or attaches
 * to an existing one (replaying what was missed; a sleeping sprite is woken). Closing the socket
 * only detaches; a `close` message hangs the shell up. A shell that is lost rather than exited (its
 * machine was restored or stopped) ends the socket without an exit status (close code 1012) after a
 * line saying why: the client reconnects, finds the session gone, and opens a new shell.
 */
import type { RawData, WebSocket } from 'ws';
import type { Engine } from '../engine/engine.ts';
import { toSpritelyError } from '../errors.ts';
import type { TerminalClient, TerminalManager, TerminalSession } from '../terminals/terminal-manager.ts';
import { TerminalClientMessage, type TerminalServerMessage } from './contract.ts';
import { parseInput } from './parse-input.ts';

function sendMessage(ws: WebSocket, m: TerminalServerMessage): void {
  if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(m));
}

export async function handleTerminalSocket(ws: WebSocket, engine: Engine, terminals: TerminalManager, name: string, query: URLSearchParams): Promise<void> {
  ws.on('error', () => {});
  let session: TerminalSession;
  const early: { data: Buffer; isBinary: boolean }[] = [];
  const buffer = (raw: RawData, isBinary: boolean) => early.push({ data: toBuffer(raw), isBinary });
  ws.on('message', buffer);
  try {
    const id = query.get('session');
    if (id) {
      session = terminals.get(id, name);
      // its sprite may sleep (the shell waits in its saved RAM): wake it for the one looking
      if (engine.isAsleep(name)) void engine.ensureAwake(name).catch(() => {});
    } else session = await terminals.open(name, { pty: (req) => engine.pty(name, req) }, { cols: query.get('cols'), rows: query.get('rows') });
  } catch (err) {
    const e = toSpritelyError(err);
    sendMessage(ws, { type: 'error', code: e.code, message: e.message });
    ws.close(1011, e.code);
    return;
  }
  ws.off('message', buffer);
  const client: TerminalClient = {
    attached: (replayed) => sendMessage(ws, { type: 'session', session: session.id, replayed }),
    send: (data) => {
      if (ws.readyState === ws.OPEN) ws.send(data);
    },
    exited: (code, signal) => {
      if (ws.readyState !== ws.OPEN) return;
      sendMessage(ws, { type: 'exit', code, signal });
      ws.close(1000);
    },
    lost: (reason) => {
      if (ws.readyState !== ws.OPEN) return;
      ws.send(Buffer.from(`\r\n\x1b[2m[This shell is gone: ${reason.replace(/[\x00-\x1f\x7f]/g, ' ')}.]\x1b[0m\r\n`));
      ws.close(1012, 'shell lost');
    },
  };
  if (!session.isOpen) {
    sendMessage(ws, { type: 'exit', code: null, signal: null });
    ws.close(1000);
    return;
  }
  session.attach(client);
  // An open terminal keeps its sprite awake.
  const release = engine.hold(name);
  ws.on('close', release);
  session.on('closed', release);
  const onMessage = (raw: RawData, isBinary: boolean) => {
    const data = toBuffer(raw);
    if (isBinary) {
      engine.touch(name);
      // typing into a sleeping sprite's shell wakes it; the input waits for the resumed shell
      if (engine.isAsleep(name)) void engine.ensureAwake(name).catch(() => {});
      return session.write(data);
    }
    try {
      const msg = parseInput(TerminalClientMessage, JSON.parse(data.toString('utf8')));
      if (msg.type === 'resize') session.resize(msg.cols, msg.rows);
      else if (msg.type === 'ack') session.ack(client, msg.bytes);
      else if (msg.type === 'close') session.close();
    } catch (err) {
      const e = toSpritelyError(err);
      sendMessage(ws, { type: 'error', code: e.code, message: e.message });
    }
  };
  for (const m of early) onMessage(m.data, m.isBinary);
  ws.on('message', onMessage);
  ws.on('close', () => session.detach(client));
}

function toBuffer(raw: RawData): Buffer {
  if (Buffer.isBuffer(raw)) return raw;
  if (Array.isArray(raw)) return Buffer.concat(raw);
  return Buffer.from(raw as ArrayBuffer);
}
