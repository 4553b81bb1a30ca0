/**
 * The sprite's network stack on the host (resources/net-helper; docs/network.md, "The host network
 * stack"): one `spritely-net` process per machine, started before its QEMU and detached like it, so
 * both outlive a daemon restart. It listens on a socket in the run dir, QEMU connects its second
 * NIC there, and it exits when that QEMU goes (or when none connects within a minute), so nothing
 * has to end it. It asks the daemon about every guest connection on the sprite's net socket.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { killPid, tailOfLog } from './qemu-process.ts';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** Where the helper is: SPRITELY_NET_HELPER, else what scripts/setup.sh builds. */
export function netHelperBinary(): string {
  return process.env.SPRITELY_NET_HELPER || path.join(repoRoot, 'dist', 'spritely-net');
}

/** The one sentence for a missing helper (launch errors and `spritely doctor`). */
export function missingNetHelper(binary: string): string {
  return `the network helper ${binary} is missing: run scripts/setup.sh (it builds it from resources/net-helper with Go and Debian's golang-gvisor-gvisor-dev)`;
}

/** Starts the helper and waits until its socket for QEMU is there; returns its pid. */
export async function startNetHelper(o: { binary?: string; qemuSocket: string; daemonSocket: string; logFile: string; timeoutMs?: number }): Promise<number> {
  const binary = o.binary ?? netHelperBinary();
  if (!fs.existsSync(binary)) throw new Error(missingNetHelper(binary));
  fs.rmSync(o.qemuSocket, { force: true });
  const logFd = fs.openSync(o.logFile, 'a', 0o600);
  fs.writeSync(logFd, `\n--- ${new Date().toISOString()} ${binary} -qemu ${o.qemuSocket} -daemon ${o.daemonSocket}\n`);
  const child = spawn(binary, ['-qemu', o.qemuSocket, '-daemon', o.daemonSocket], { detached: true, stdio: ['ignore', logFd, logFd] });
  fs.closeSync(logFd);
  let exited = false;
  let spawnError: Error | null = null;
  child.on('exit', () => (exited = true));
  child.on('error', (err) => (spawnError = err));
  child.unref();
  const deadline = Date.now() + (o.timeoutMs ?? 5_000);
  while (Date.now() < deadline) {
    if (spawnError) throw new Error(`could not run ${binary}: ${(spawnError as Error).message}`);
    if (exited) throw new Error(`the network helper exited at start: ${tailOfLog(o.logFile)}`);
    if (child.pid && fs.existsSync(o.qemuSocket)) return child.pid;
    await new Promise((r) => setTimeout(r, 5));
  }
  if (child.pid) killPid(child.pid);
  throw new Error(`the network helper did not listen within ${o.timeoutMs ?? 5_000} ms: ${tailOfLog(o.logFile)}`);
}
