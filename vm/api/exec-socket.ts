/**
 * WS /v1/sprites/:name/exec: one command, streamed, as a session on the sprite's guest agent.
 * stdout/stderr go out as binary frames tagged with a stream byte, stdin comes in as binary
 * frames, the exit status closes the exchange. Output is credit-flow-controlled: the agent's
 * channel is paused while the client is behind (and the agent stops reading the command's pipes).
 * A client that goes away ends the command: the agent kills its process group.
 */
import type { RawData, WebSocket } from 'ws';
import type { Engine } from '../engine/engine.ts';
import { SpritelyError, toSpritelyError } from '../errors.ts';
import type { AgentChannel } from '../guest/agent-channel.ts';
import { EXEC_HIGH_WATER, EXEC_LOW_WATER, FlowGate } from '../terminals/flow-control.ts';
import { clampSize } from '../terminals/terminal-manager.ts';
import { ExecClientMessage, STREAM_STDERR, STREAM_STDOUT, type ExecServerMessage } from './contract.ts';
import { parseInput } from './parse-input.ts';

/** Stdin held while the command starts (e.g. while its sprite wakes) before reading pauses. */
const STDIN_PENDING_LIMIT = 4 * 1024 * 1024;
/** Output the agent may send per stream ahead of what this side has read (the client's acks pace it beyond). */
const EXEC_WINDOW = 1024 * 1024;

function sendMessage(ws: WebSocket, m: ExecServerMessage): void {
  if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(m));
}

/**
 * Ends the exchange. A socket paused for stdin backpressure is resumed first: the closing
 * handshake needs the client's answer read, or the client waits out ws's 30 s close timeout.
 */
function closeSocket(ws: WebSocket, code: number, reason?: string): void {
  ws.resume();
  ws.close(code, reason);
}

export function handleExecSocket(ws: WebSocket, engine: Engine, name: string): void {
  let channel: AgentChannel | null = null;
  let flow: FlowGate | null = null;
  let starting = false;
  const pending: Buffer[] = [];
  const fail = (err: unknown) => {
    const e = toSpritelyError(err);
    if (ws.readyState === ws.OPEN) {
      sendMessage(ws, { type: 'error', code: e.code, message: e.message });
      closeSocket(ws, 1011, e.code);
    }
    channel?.close();
  };
  let resumeAfterStart: (() => void) | undefined;
  const startTimer = setTimeout(() => fail(new Error('no start message within 30 s')), 30_000);
  ws.on('error', () => {});
  ws.on('close', () => {
    clearTimeout(startTimer);
    channel?.close();
  });
  // stdin backpressure: when the guest does not read as fast as the client sends, stop reading
  // the WebSocket (the client's socket fills up, not the daemon's memory) until the agent's credit returns.
  let pendingBytes = 0;
  let stdinPaused = false;
  const pauseStdin = (until: (resume: () => void) => void) => {
    if (stdinPaused) return;
    stdinPaused = true;
    ws.pause();
    until(() => {
      stdinPaused = false;
      ws.resume();
    });
  };
  ws.on('message', async (raw: RawData, isBinary: boolean) => {
    const data = Buffer.isBuffer(raw) ? raw : Buffer.from(raw as ArrayBuffer);
    if (isBinary) {
      if (channel) {
        const ch = channel;
        if (!ch.write(data)) pauseStdin((resume) => ch.once('drain', resume));
      } else {
        pending.push(data);
        pendingBytes += data.length;
        if (pendingBytes > STDIN_PENDING_LIMIT) {
          if (!starting) return fail(new Error('stdin before "start"'));
          pauseStdin((resume) => (resumeAfterStart = resume));
        }
      }
      return;
    }
    let msg;
    try {
      msg = parseInput(ExecClientMessage, JSON.parse(data.toString('utf8')));
    } catch (err) {
      return fail(err);
    }
    if (msg.type === 'start') {
      if (starting || channel) return fail(new Error('exec already started'));
      starting = true;
      clearTimeout(startTimer);
      try {
        const release = engine.hold(name);
        ws.on('close', release);
        const size = clampSize(msg.cols, msg.rows);
        const ch = msg.tty
          ? await engine.pty(name, { argv: msg.argv, cwd: msg.cwd, env: msg.env, term: 'xterm-256color', ...size, window: EXEC_WINDOW })
          : await engine.exec(name, { argv: msg.argv, cwd: msg.cwd, env: msg.env, window: EXEC_WINDOW });
        if (ws.readyState !== ws.OPEN) {
          // the client left while the command started: it must not outlive it
          ch.close();
          return;
        }
        channel = ch;
        flow = wire(ws, ch);
        for (const d of pending.splice(0)) ch.write(d);
        pendingBytes = 0;
        resumeAfterStart?.();
        if (msg.stdin === false) ch.end();
        sendMessage(ws, { type: 'started' });
      } catch (err) {
        fail(err);
      }
      return;
    }
    if (!channel) return fail(new Error(`"${msg.type}" before "start"`));
    if (msg.type === 'eof') channel.end();
    else if (msg.type === 'resize') {
      const s = clampSize(msg.cols, msg.rows);
      channel.setWindow(s.rows, s.cols, 0, 0);
    } else if (msg.type === 'ack') flow?.acked(ws, msg.bytes);
    else if (msg.type === 'signal') channel.signal(msg.signal);
  });
}

function wire(ws: WebSocket, ch: AgentChannel): FlowGate {
  const g = new FlowGate(
    EXEC_HIGH_WATER,
    EXEC_LOW_WATER,
    () => {
      ch.pause();
      ch.stderr.pause();
    },
    () => {
      ch.resume();
      ch.stderr.resume();
    },
  );
  g.add(ws);
  const forward = (tag: number) => (d: Buffer) => {
    if (ws.readyState !== ws.OPEN) return;
    ws.send(Buffer.concat([Buffer.from([tag]), d]));
    g.sent(ws, d.length);
  };
  ch.on('data', forward(STREAM_STDOUT));
  ch.stderr.on('data', forward(STREAM_STDERR));
  ch.on('close', () => {
    if (ws.readyState !== ws.OPEN) return;
    const exit = ch.exited ?? { code: null, signal: null, timedOut: false, lost: 'the session ended' };
    if (exit.lost) {
      const e = new SpritelyError('unavailable', `The command ended without an exit status: ${exit.lost}.`);
      sendMessage(ws, { type: 'error', code: e.code, message: e.message });
      closeSocket(ws, 1011, e.code);
      return;
    }
    sendMessage(ws, { type: 'exit', code: exit.code, signal: exit.signal });
    closeSocket(ws, 1000);
  });
  return g;
}
