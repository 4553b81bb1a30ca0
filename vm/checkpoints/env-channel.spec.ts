import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { duplexPair } from '../driver/fake-guest.ts';
import { EnvChannel, formatReply, MAX_REQUEST_BYTES, MAX_REQUESTS_PER_SECOND, MAX_UNREAD_BYTES, parseRequest, type EnvHandler } from './env-channel.ts';

describe('spritely-env protocol', () => {
  it('parses the requests', () => {
    expect(parseRequest('{"id":"a1","op":"checkpoint.create","comment":"hi"}')).toEqual({ req: { id: 'a1', op: 'checkpoint.create', comment: 'hi' } });
    expect(parseRequest('{"id":"a2","op":"checkpoint.list"}')).toEqual({ req: { id: 'a2', op: 'checkpoint.list' } });
    expect(parseRequest('{"id":"a3","op":"checkpoint.restore","checkpoint":"v3"}')).toEqual({ req: { id: 'a3', op: 'checkpoint.restore', checkpoint: 'v3' } });
    expect(parseRequest('{"id":"a4","op":"checkpoint.mount","checkpoint":"v3"}')).toEqual({ req: { id: 'a4', op: 'checkpoint.mount', checkpoint: 'v3' } });
    expect(parseRequest('{"id":"a5","op":"checkpoint.unmount","checkpoint":"v3","force":true}')).toEqual({ req: { id: 'a5', op: 'checkpoint.unmount', checkpoint: 'v3', force: true } });
    expect(parseRequest('{"id":"a6","op":"checkpoint.diff","from":"v1","to":"now","paths":["/etc"],"patch":true}')).toEqual({ req: { id: 'a6', op: 'checkpoint.diff', from: 'v1', to: 'now', paths: ['/etc'], patch: true } });
    const tooMany = parseRequest(JSON.stringify({ id: 'a7', op: 'checkpoint.diff', from: 'v1', paths: Array(101).fill('/x') }));
    expect('reply' in tooMany && tooMany.reply).toMatch(/^=BEGIN a7\n=ERR bad request/);
  });
  it('answers garbage and unknown operations with an error addressed to the asker', () => {
    expect(parseRequest('nope')).toEqual({ reply: '=BEGIN unknown\n=ERR request is not JSON\n' });
    const r = parseRequest('{"id":"x9","op":"sprites.destroy","name":"other"}');
    expect('reply' in r && r.reply).toMatch(/^=BEGIN x9\n=ERR bad request/);
    const bad = parseRequest('{"id":"../../x","op":"checkpoint.list"}');
    expect('reply' in bad && bad.reply).toMatch(/^=BEGIN unknown\n=ERR/);
  });
  it('frames replies: text lines then =OK, or one =ERR line', () => {
    expect(formatReply('a', { ok: true, text: 'v1\nv2' })).toBe('=BEGIN a\nv1\nv2\n=OK\n');
    expect(formatReply('a', { ok: true, text: '' })).toBe('=BEGIN a\n=OK\n');
    expect(formatReply('a', { ok: false, error: 'no\nsuch' })).toBe('=BEGIN a\n=ERR no such\n');
  });
  it('a text line starting with "=" cannot end the answer early', () => {
    expect(formatReply('a', { ok: true, text: 'x\n=OK\n=ERR y' })).toBe('=BEGIN a\nx\n =OK\n =ERR y\n=OK\n');
  });
});

describe('EnvChannel against a hostile guest', () => {
  const backoff = { firstMs: 100, maxMs: 400, forgiveAfterMs: 60_000 };
  let cleanups: (() => void)[] = [];
  afterEach(() => {
    for (const c of cleanups.splice(0)) c();
  });

  /** A channel whose port hands out in-memory connections; `guest()` is the guest's end of the newest. */
  function channel(handler: EnvHandler) {
    const peers: Duplex[] = [];
    const logs: string[] = [];
    const ch = new EnvChannel(
      async () => {
        const [host, guest] = duplexPair();
        guest.on('error', () => {});
        peers.push(guest);
        return host;
      },
      handler,
      (m) => logs.push(m),
      backoff,
    );
    cleanups.push(() => ch.close());
    return { ch, logs, peers, guest: () => peers.at(-1)! };
  }

  const read = (d: Duplex) => {
    const got = { text: '' };
    d.on('data', (c: Buffer) => (got.text += c.toString()));
    return got;
  };

  it('serves one request at a time; past 8 waiting, more are answered "busy" at once', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const served: string[] = [];
    const { guest } = channel(async (req) => {
      served.push(req.id);
      if (req.id === 'r0') await gate;
      return { text: req.id };
    });
    await until(() => guest() !== undefined);
    const got = read(guest());
    guest().write(Array.from({ length: 20 }, (_, i) => JSON.stringify({ id: `r${i}`, op: 'checkpoint.list' })).join('\n') + '\n');
    await until(() => (got.text.match(/=ERR busy/g) ?? []).length === 11);
    expect(served).toEqual(['r0']);
    expect(got.text).toContain('=BEGIN r19\n=ERR busy: 8 requests are already waiting; ask again when they are answered\n');
    release();
    await until(() => served.length === 9);
    await until(() => (got.text.match(/=OK/g) ?? []).length === 9);
    expect(served).toEqual(['r0', 'r1', 'r2', 'r3', 'r4', 'r5', 'r6', 'r7', 'r8']);
  });

  it('64 MiB without a newline: closed in well under a second, logged once, reopened after the back-off, and served again', async () => {
    const { logs, peers, guest } = channel(async (req) => ({ text: `hello ${req.id}` }));
    await until(() => peers.length === 1);
    const chunk = Buffer.alloc(64 * 1024, 0x41);
    const t0 = performance.now();
    const flooder = guest();
    for (let i = 0; i < 1024 && !flooder.destroyed; i++) flooder.write(chunk);
    await until(() => flooder.destroyed);
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(logs).toEqual([`spritely-env channel closed: the guest sent a request line longer than ${MAX_REQUEST_BYTES} bytes; reopening it in 0.1 s`]);
    await until(() => peers.length === 2, 2000);
    const got = read(guest());
    guest().write('{"id":"ok1","op":"checkpoint.list"}\n');
    await until(() => got.text.includes('=OK'));
    expect(got.text).toBe('=BEGIN ok1\nhello ok1\n=OK\n');
    // again at once: the back-off doubles
    for (let i = 0; i < 8 && !guest().destroyed; i++) guest().write(chunk);
    await until(() => logs.length === 2);
    expect(logs[1]).toMatch(/reopening it in 0.2 s$/);
  });

  it('more than 50 requests in a second is a flood: closed and logged once, not parsed on and on', async () => {
    let served = 0;
    const { logs, guest } = channel(async () => {
      served++;
      return { text: '' };
    });
    await until(() => guest() !== undefined);
    const flooder = guest();
    flooder.write('{"id":"x","op":"checkpoint.list"}\n'.repeat(10_000));
    await until(() => flooder.destroyed);
    expect(logs).toEqual([`spritely-env channel closed: the guest sent more than ${MAX_REQUESTS_PER_SECOND} requests in a second; reopening it in 0.1 s`]);
    expect(served).toBeLessThanOrEqual(1);
  });

  it('a guest that does not read its answers is cut off once they pass 1 MiB', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'env-'));
    const sock = path.join(dir, 's');
    let guestSide: net.Socket | null = null;
    const server = net.createServer((s) => {
      s.on('error', () => {});
      s.pause(); // never reads
      guestSide = s;
    });
    await new Promise<void>((r) => server.listen(sock, r));
    cleanups.push(() => {
      server.close();
      fs.rmSync(dir, { recursive: true, force: true });
    });
    const logs: string[] = [];
    const big = 'x'.repeat(100_000);
    const ch = new EnvChannel(async () => net.connect(sock), async () => ({ text: big }), (m) => logs.push(m), backoff);
    cleanups.push(() => ch.close());
    await until(() => guestSide !== null);
    for (let i = 0; i < 60 && logs.length === 0; i++) {
      guestSide!.write('{"id":"a","op":"checkpoint.list"}\n');
      await new Promise((r) => setTimeout(r, 5));
    }
    await until(() => logs.length > 0);
    expect(logs[0]).toBe(`spritely-env channel closed: the guest did not read its answers (more than ${MAX_UNREAD_BYTES} bytes unread); reopening it in 0.1 s`);
  });
});

async function until(cond: () => boolean, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 2));
  }
}
