/**
 * A QMP connection over QEMU's unix socket: connect, negotiate capabilities, run commands, watch
 * events. Thin I/O shell around QmpProtocol. `closed` resolves when QEMU goes away (it quit, was
 * killed, or closed the socket), which is how the engine notices a VM that died. A line over the
 * protocol's cap closes the connection from this side, and `closeReason` says so (the machine
 * reports it as the reason it ended).
 */
import { EventEmitter } from 'node:events';
import net from 'node:net';
import { QmpProtocol, type QmpEvent } from './qmp-protocol.ts';

export class QmpClient extends EventEmitter<{ event: [QmpEvent] }> {
  private protocol = new QmpProtocol();
  private socket!: net.Socket;
  private closedResolve!: () => void;
  readonly closed: Promise<void> = new Promise((r) => (this.closedResolve = r));
  private isClosed = false;
  /** Why this side closed the connection (a protocol violation), if it did. */
  closeReason: string | null = null;

  static async connect(socketPath: string, timeoutMs = 5000): Promise<QmpClient> {
    const client = new QmpClient();
    await client.open(socketPath, timeoutMs);
    return client;
  }

  private open(socketPath: string, timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(socketPath);
      this.socket = socket;
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`QMP at ${socketPath}: no greeting within ${timeoutMs} ms`));
      }, timeoutMs);
      socket.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      socket.on('close', () => {
        this.isClosed = true;
        clearTimeout(timer);
        const why = this.closeReason ?? 'QMP connection closed (QEMU exited?)';
        this.protocol.failAll(new Error(why));
        reject(new Error(`QMP at ${socketPath}: ${why}`)); // a no-op once connected
        this.closedResolve();
      });
      socket.on('data', (chunk: Buffer) => {
        for (const out of this.protocol.receive(chunk)) {
          if (out.kind === 'overflow') {
            this.closeReason = `QEMU sent more than ${out.maxLineBytes} bytes on its QMP socket without a line end; the connection was closed`;
            socket.destroy();
            return;
          }
          if (out.kind === 'greeting') {
            this.execute('qmp_capabilities').then(
              () => {
                clearTimeout(timer);
                resolve();
              },
              (err) => {
                clearTimeout(timer);
                reject(err);
              },
            );
          } else if (out.kind === 'event') {
            this.emit('event', out.event);
          }
        }
      });
    });
  }

  execute<T = any>(command: string, args?: Record<string, unknown>): Promise<T> {
    if (this.isClosed) return Promise.reject(new Error(`QMP ${command}: connection closed (QEMU exited?)`));
    const { line, reply } = this.protocol.command(command, args);
    this.socket.write(line);
    return reply as Promise<T>;
  }

  /** Runs an HMP command (for the few things QMP lacks); HMP reports errors as text. */
  async hmp(commandLine: string): Promise<string> {
    return this.execute<string>('human-monitor-command', { 'command-line': commandLine });
  }

  /** Resolves with the first event matching `pred`, or rejects after `timeoutMs` / on close. */
  waitForEvent(pred: (e: QmpEvent) => boolean, timeoutMs: number): Promise<QmpEvent> {
    return new Promise((resolve, reject) => {
      const onEvent = (e: QmpEvent) => {
        if (!pred(e)) return;
        cleanup();
        resolve(e);
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for a QMP event`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.off('event', onEvent);
      };
      this.on('event', onEvent);
      this.closed.then(() => {
        cleanup();
        reject(new Error('QMP connection closed while waiting for an event'));
      });
    });
  }

  close(): void {
    this.socket?.destroy();
  }
}
