/**
 * The engine's control channel into a guest, as the engine needs it: is it there, run a program
 * (with stdin) and wait for it, and ask it to power off. No network, no crypto. Today it is
 * qemu-guest-agent on a named guest port (guest-agent.ts); a later in-guest agent of our own can
 * implement the same interface over its own port, on every driver.
 */
export interface GuestExecResult {
  exitCode: number;
  stdout: Buffer;
  stderr: Buffer;
}

export interface GuestControl {
  ping(timeoutMs?: number): Promise<void>;
  /** Runs a program in the guest, feeding `stdin`, and waits for it to finish. */
  exec(path: string, args?: string[], opts?: { stdin?: Buffer | string; timeoutMs?: number }): Promise<GuestExecResult>;
  /** Asks the guest to power off. No answer comes: the reply path goes down with it. */
  shutdown(): void;
}
