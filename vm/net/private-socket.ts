/**
 * Listening on a unix socket only its owner may use: the daemon's API socket, each sprite's egress
 * proxy and its host network stack's link. A stale file from an earlier run is removed first; the
 * socket is made under umask 077 (never, even for a moment, open to other local users) and then
 * set 0600 explicitly, whatever the process umask was.
 */
import fs from 'node:fs';
import type net from 'node:net';

export async function listenPrivate(server: net.Server, socketPath: string): Promise<void> {
  fs.rmSync(socketPath, { force: true });
  const oldMask = process.umask(0o177);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socketPath, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } finally {
    process.umask(oldMask);
  }
  fs.chmodSync(socketPath, 0o600);
}
