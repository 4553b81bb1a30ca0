/**
 * What a sprite's egress proxy refuses reaches one list per sprite (the engine's networkView, for
 * `spritely net show` and the app): the proxy decides through the sprite's own connector, the
 * list outlives the machine (stop, start, sleep, wake) and goes with the sprite.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { EgressConnector } from '../net/egress-connector.ts';
import { parseNetworkPolicy } from '../net/egress-policy.ts';
import type { SpritelyError } from '../errors.ts';
import { spritePaths } from '../paths.ts';
import { makeFixture, type Fixture } from './spec-fixture.ts';

let f: Fixture;
beforeEach(async () => {
  f = await makeFixture();
});
afterEach(async () => {
  await f.cleanup();
});

/** The connector the sprite's current egress proxy decides through. */
function proxyConnector(name: string): EgressConnector {
  const e = f.io.egress.filter((x) => x.opts.sprite === name).at(-1);
  expect(e?.opts.connector).toBeDefined();
  return e!.opts.connector!;
}

describe('a sprite’s refused destinations', () => {
  it('a refusal of its proxy is listed, newest first, with the policy, a time and the reason', async () => {
    await f.engine.create({ name: 'dev' });
    expect(f.engine.networkView('dev')).toEqual({ name: 'dev', network: 'internet', refused: [] });
    const first = await proxyConnector('dev').connect({ host: '127.0.0.1', port: 22 });
    expect(first).toMatchObject({ ok: false, kind: 'refused' });
    await f.engine.setNetwork('dev', parseNetworkPolicy('allow=example.com'));
    f.io.clock.now += 5000;
    // refused by name alone: no lookup is made (the fake I/O has no resolver)
    const second = await proxyConnector('dev').connect({ host: 'github.com', port: 443 });
    expect(second).toMatchObject({ ok: false, kind: 'refused' });
    const view = f.engine.networkView('dev');
    expect(view.network).toBe('allow=example.com');
    expect(view.refused).toEqual([
      { protocol: 'tcp', name: 'github.com', address: null, port: 443, reason: expect.stringMatching(/github\.com.*allow/), at: new Date(f.io.clock.now).toISOString(), count: 1 },
      { protocol: 'tcp', name: null, address: '127.0.0.1', port: 22, reason: expect.stringMatching(/this computer|loopback/i), at: new Date(f.io.clock.now - 5000).toISOString(), count: 1 },
    ]);
    // what the guest was told and what is listed say the same thing
    expect(second.ok === false && second.reason).toBe(view.refused[0].reason);
    expect(f.logs.join('\n')).toMatch(/sprite dev: egress refused: github\.com:443/);
  });

  it('outlives the machine: stop and start, sleep and wake keep the list; every proxy decides through the same connector', async () => {
    await f.engine.create({ name: 'dev' });
    const connector = proxyConnector('dev');
    await connector.connect({ host: '127.0.0.1', port: 80 });
    // the network stack's link decides through the same network as the proxy
    const link = f.io.netLinks.at(-1)!;
    expect(link.opts.socketPath).toBe(spritePaths(f.layout, 'dev').netSocket);
    await link.opts.network.tcp({ address: '127.0.0.2', port: 81 });
    expect(f.engine.networkView('dev').refused.map((r) => r.address)).toEqual(['127.0.0.2', '127.0.0.1']);
    await f.engine.stop('dev');
    expect(f.io.egress.at(-1)!.closed).toBe(true);
    expect(link.closed).toBe(true);
    expect(f.engine.networkView('dev').refused).toHaveLength(2);
    await f.engine.start('dev');
    expect(proxyConnector('dev')).toBe(connector);
    await proxyConnector('dev').connect({ host: '10.1.2.3', port: 80 });
    await f.engine.sleep('dev');
    await f.engine.wake('dev');
    expect(proxyConnector('dev')).toBe(connector);
    expect(f.engine.networkView('dev').refused.map((r) => r.address)).toEqual(['10.1.2.3', '127.0.0.2', '127.0.0.1']);
    // the woken machine has a link of its own, on the same socket and network
    expect(f.io.netLinks.at(-1)).not.toBe(link);
    expect(f.io.netLinks.at(-1)!.opts.network).toBe(link.opts.network);
  });

  it('is per sprite, and goes with it: a new sprite of the same name starts empty', async () => {
    await f.engine.create({ name: 'dev' });
    await f.engine.create({ name: 'two' });
    expect(proxyConnector('dev')).not.toBe(proxyConnector('two'));
    await proxyConnector('dev').connect({ host: '127.0.0.1', port: 80 });
    expect(f.engine.networkView('two').refused).toEqual([]);
    await f.engine.destroy('dev');
    await f.engine.create({ name: 'dev' });
    expect(f.engine.networkView('dev').refused).toEqual([]);
  });

  it('starts empty after a daemon restart; an unknown sprite is not_found', async () => {
    await f.engine.create({ name: 'dev' });
    await proxyConnector('dev').connect({ host: '127.0.0.1', port: 80 });
    await f.restart();
    expect(f.engine.get('dev').state).toBe('running');
    expect(f.engine.networkView('dev').refused).toEqual([]);
    let code = 'ok';
    try {
      f.engine.networkView('nope');
    } catch (e) {
      code = (e as SpritelyError).code;
    }
    expect(code).toBe('not_found');
  });
});
