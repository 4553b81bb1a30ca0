import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { QmpClient } from './qmp-client.ts';

let dir: string | null = null;
let server: net.Server | null = null;

afterEach(() => {
  server?.close();
  server = null;
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
  dir = null;
});

/** A QMP server on a unix socket: greets, accepts capabilities, then does what `after` says. */
async function fakeQmp(after: (s: net.Socket, line: string) => void): Promise<string> {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qmp-'));
  const sock = path.join(dir, 'q');
  server = net.createServer((s) => {
    s.on('error', () => {});
    s.write('{"QMP": {"version": {"qemu": {"major": 7, "minor": 2, "micro": 0}}, "capabilities": []}}\n');
    let buf = '';
    s.on('data', (c) => {
      buf += c;
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        const { id, execute } = JSON.parse(line);
        if (execute === 'qmp_capabilities') s.write(JSON.stringify({ return: {}, id }) + '\n');
        else after(s, line);
      }
    });
  });
  await new Promise<void>((r) => server!.listen(sock, r));
  return sock;
}

describe('QmpClient', () => {
  it('a peer that floods a line past the cap is cut off: pending commands fail with why, `closed` resolves', async () => {
    const sock = await fakeQmp((s) => {
      const chunk = Buffer.alloc(64 * 1024, 0x41);
      const pump = () => {
        while (!s.destroyed && s.write(chunk));
        if (!s.destroyed) s.once('drain', pump);
      };
      pump();
    });
    const qmp = await QmpClient.connect(sock);
    const t0 = performance.now();
    await expect(qmp.execute('query-status')).rejects.toThrow(/QEMU sent more than 16777216 bytes on its QMP socket without a line end/);
    await qmp.closed;
    expect(performance.now() - t0).toBeLessThan(3000);
    expect(qmp.closeReason).toMatch(/without a line end; the connection was closed/);
    await expect(qmp.execute('cont')).rejects.toThrow(/connection closed/);
  });

  it('answers commands and passes events on', async () => {
    const sock = await fakeQmp((s, line) => {
      const { id } = JSON.parse(line);
      s.write('{"event": "STOP", "timestamp": {"seconds": 1, "microseconds": 0}}\n' + JSON.stringify({ return: { status: 'paused' }, id }) + '\n');
    });
    const qmp = await QmpClient.connect(sock);
    const ev = qmp.waitForEvent((e) => e.event === 'STOP', 2000);
    await expect(qmp.execute('query-status')).resolves.toEqual({ status: 'paused' });
    await expect(ev).resolves.toMatchObject({ event: 'STOP' });
    expect(qmp.closeReason).toBeNull();
    qmp.close();
    await qmp.closed;
  });
});
