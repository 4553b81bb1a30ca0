/**
 * The CLI's two streaming commands: `exec` (stdout/stderr kept apart, stdin forwarded when piped,
 * exit code passed through) and `console` (a raw-mode terminal on a shell session). Both ack the
 * output they have written, so the daemon's flow control paces the guest to this terminal.
 */
import os from 'node:os';
import type { ApiClient } from '../api/client.ts';
import { STREAM_STDERR } from '../api/contract.ts';
import { SpritelyError, isErrorCode } from '../errors.ts';

/** Shell convention: a command killed by signal N exits 128 + N. ssh reports names (KILL or SIGKILL). */
export function exitStatus(code: number | null, signal: string | null): number {
  if (code !== null) return code;
  if (signal) {
    const name = (signal.startsWith('SIG') ? signal : `SIG${signal}`) as keyof typeof os.constants.signals;
    return 128 + (os.constants.signals[name] ?? 1);
  }
  return 255;
}

function rawMode(on: boolean): void {
  if (process.stdin.isTTY) process.stdin.setRawMode(on);
}

export function runExec(api: ApiClient, name: string, argv: string[], opts: { tty: boolean; cwd?: string; env?: Record<string, string> }): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = api.socket(`/v1/sprites/${encodeURIComponent(name)}/exec`);
    const forwardStdin = !process.stdin.isTTY || opts.tty;
    let done = false;
    const finish = (fn: () => void) => {
      if (done) return;
      done = true;
      if (opts.tty) rawMode(false);
      process.stdin.pause();
      fn();
    };
    ws.on('open', () => {
      ws.send(JSON.stringify({ type: 'start', argv, cwd: opts.cwd, env: opts.env, tty: opts.tty, cols: process.stdout.columns, rows: process.stdout.rows, stdin: forwardStdin }));
    });
    ws.on('message', (raw, isBinary) => {
      const data = raw as Buffer;
      if (isBinary) {
        const out = data[0] === STREAM_STDERR ? process.stderr : process.stdout;
        const payload = data.subarray(1);
        out.write(payload, () => {
          if (ws.readyState === ws.OPEN) ws.send(JSON.stringify({ type: 'ack', bytes: payload.length }));
        });
        return;
      }
      const msg = JSON.parse(data.toString());
      if (msg.type === 'started' && forwardStdin) {
        if (opts.tty) rawMode(true);
        process.stdin.on('data', (d: Buffer) => ws.send(d));
        process.stdin.on('end', () => ws.readyState === ws.OPEN && ws.send(JSON.stringify({ type: 'eof' })));
        process.stdin.resume();
        if (opts.tty) process.stdout.on('resize', () => ws.send(JSON.stringify({ type: 'resize', cols: process.stdout.columns, rows: process.stdout.rows })));
      } else if (msg.type === 'exit') {
        finish(() => process.stdout.write('', () => resolve(exitStatus(msg.code, msg.signal))));
      } else if (msg.type === 'error') {
        finish(() => reject(new SpritelyError(isErrorCode(msg.code) ? msg.code : 'internal', msg.message)));
      }
    });
    ws.on('error', (err) => finish(() => reject(err)));
    ws.on('close', () => finish(() => reject(new Error('the connection to the daemon closed before the command finished'))));
  });
}

export function runConsole(api: ApiClient, name: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = api.socket(`/v1/sprites/${encodeURIComponent(name)}/terminal`, { cols: process.stdout.columns ?? 80, rows: process.stdout.rows ?? 24 });
    let done = false;
    const onResize = () => ws.send(JSON.stringify({ type: 'resize', cols: process.stdout.columns, rows: process.stdout.rows }));
    const onInput = (d: Buffer) => ws.send(d);
    const finish = (fn: () => void) => {
      if (done) return;
      done = true;
      rawMode(false);
      process.stdin.off('data', onInput);
      process.stdin.pause();
      process.stdout.off('resize', onResize);
      fn();
    };
    ws.on('message', (raw, isBinary) => {
      const data = raw as Buffer;
      if (isBinary) {
        process.stdout.write(data, () => {
          if (ws.readyState === ws.OPEN) ws.send(JSON.stringify({ type: 'ack', bytes: data.length }));
        });
        return;
      }
      const msg = JSON.parse(data.toString());
      if (msg.type === 'session') {
        rawMode(true);
        process.stdin.on('data', onInput);
        process.stdin.on('end', () => ws.readyState === ws.OPEN && ws.send(JSON.stringify({ type: 'close' })));
        process.stdin.resume();
        process.stdout.on('resize', onResize);
      } else if (msg.type === 'exit') {
        finish(() => resolve(exitStatus(msg.code ?? 0, msg.signal)));
      } else if (msg.type === 'error') {
        finish(() => reject(new SpritelyError(isErrorCode(msg.code) ? msg.code : 'internal', msg.message)));
      }
    });
    ws.on('error', (err) => finish(() => reject(err)));
    ws.on('close', () => finish(() => resolve(0)));
  });
}
