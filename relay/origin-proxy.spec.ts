import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OriginPools } from './origin-proxy.ts';

/** A real app on loopback: `/` answers at once, `/hang` answers only when `release` is called. */
let server: http.Server;
let port: number;
let release: (() => void) | null = null;
let connections = 0;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    if (req.url === '/hang') {
      release = () => res.end('late');
      return;
    }
    res.end('ok');
  });
  server.on('connection', () => {
    connections += 1;
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

async function get(pools: OriginPools, path: string): Promise<string> {
  const { body } = await pools.poolFor({ host: '127.0.0.1', port }).request({ path, method: 'GET' });
  return body.text();
}

describe('OriginPools', () => {
  it('keeps one pool per app address and reuses its connection', async () => {
    const pools = new OriginPools();
    try {
      const before = connections;
      for (let i = 0; i < 10; i += 1) expect(await get(pools, '/')).toBe('ok');
      expect(pools.poolFor({ host: '127.0.0.1', port })).toBe(pools.poolFor({ host: '127.0.0.1', port }));
      expect(pools.size).toBe(1);
      // Keep-alive: not a connection per request (undici may open a second one while it checks that
      // a just-freed socket is still good before reusing it).
      expect(connections - before).toBeLessThanOrEqual(2);
      pools.poolFor({ host: '127.0.0.1', port: port + 1 });
      expect(pools.size).toBe(2);
    } finally {
      await pools.close();
    }
  });

  it('closes a pool left idle, but never one with a request in flight', async () => {
    const pools = new OriginPools(60_000);
    try {
      expect(await get(pools, '/')).toBe('ok');
      pools.closeIdle(Date.now());
      expect(pools.size).toBe(1); // used just now
      const hanging = get(pools, '/hang');
      while (!release) await new Promise((resolve) => setTimeout(resolve, 5));
      pools.closeIdle(Date.now() + 120_000);
      expect(pools.size).toBe(1); // a long answer (an SSE stream) keeps its pool
      release();
      expect(await hanging).toBe('late');
      pools.closeIdle(Date.now() + 120_000);
      expect(pools.size).toBe(0);
      expect(await get(pools, '/')).toBe('ok'); // a new pool on demand
    } finally {
      await pools.close();
    }
  });
});
