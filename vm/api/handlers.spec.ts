/**
 * The settings-shaped methods the app calls (config, network, usage, ssh-config) on a real engine
 * with the fake driver, through the real server and client: routes, validation and answers.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { makeFixture, type Fixture } from '../engine/spec-fixture.ts';
import { clientKeyFile, sshConfigFor } from '../ssh/ssh-config-block.ts';
import { ApiClient } from './client.ts';
import { methods } from './contract.ts';
import { createHandlers } from './handlers.ts';
import { ApiServer } from './server.ts';

let f: Fixture;
let server: ApiServer;
let api: ApiClient;

beforeEach(async () => {
  f = await makeFixture();
  await f.engine.create({ name: 'dev' });
  server = new ApiServer({ engine: f.engine, version: 'test' });
  const sock = path.join(f.home, 'api-spec.sock');
  await server.listenUnix(sock);
  api = new ApiClient(sock);
});
afterEach(async () => {
  await server.close();
  await f.cleanup();
});

const failure = (p: Promise<unknown>) => p.then(() => null, (e: Error & { code?: string }) => ({ code: e.code, message: e.message }));

describe('config', () => {
  it('idle timeout: daemon-wide, a sprite of its own, "never" (0), and back to the default (null)', async () => {
    expect(await api.call('config.set', { idleTimeoutSec: 600 })).toMatchObject({ idleTimeoutSec: 600 });
    await api.call('config.set', { idleTimeoutSec: 90, sprite: 'dev' });
    expect((await api.call('sprites.get', { name: 'dev' })).idleTimeoutSec).toBe(90);
    await api.call('config.set', { idleTimeoutSec: 0, sprite: 'dev' });
    expect((await api.call('sprites.get', { name: 'dev' })).idleTimeoutSec).toBe(0);
    await api.call('config.set', { idleTimeoutSec: null, sprite: 'dev' });
    expect((await api.call('sprites.get', { name: 'dev' })).idleTimeoutSec).toBeNull();
    expect((await api.call('config.get')).idleTimeoutSec).toBe(600);
    expect(await failure(api.call('config.set', { idleTimeoutSec: null }))).toMatchObject({ code: 'invalid_argument', message: expect.stringMatching(/needs a sprite/) });
    expect(await failure(api.call('config.set', { idleTimeoutSec: 10, sprite: 'nope' }))).toMatchObject({ code: 'not_found' });
  });

  it('memory limit: the default (80% of host RAM) is given either way, set or not', async () => {
    const handlers = createHandlers(f.engine, { version: 'test', loginUrl: () => '', hostMemoryMiB: () => f.io.hostMiB });
    expect(await handlers['config.get']({})).toEqual({ idleTimeoutSec: expect.any(Number), memoryLimitMiB: 6553, memoryLimitDefault: true, memoryLimitDefaultMiB: 6553, warmSpare: expect.any(Boolean), checkpointMounts: 4, spares: [] });
    expect(await handlers['config.set']({ memoryLimitMiB: 4096 })).toMatchObject({ memoryLimitMiB: 4096, memoryLimitDefault: false, memoryLimitDefaultMiB: 6553 });
    expect(await handlers['config.set']({ memoryLimitMiB: 0 })).toMatchObject({ memoryLimitMiB: 6553, memoryLimitDefault: true });
    expect(await failure(handlers['config.set']({ memoryLimitMiB: 100 }))).toMatchObject({ message: expect.stringMatching(/below 256 MiB/) });
    expect(await failure(handlers['config.set']({ memoryLimitMiB: 4096, sprite: 'dev' }))).toMatchObject({ message: expect.stringMatching(/daemon-wide/) });
  });
});

describe('sprites.network', () => {
  it('sets the policy and answers the sprite; a bad entry is refused with the parser’s reason', async () => {
    expect((await api.call('sprites.network', { name: 'dev', policy: 'none' })).network).toBe('none');
    expect((await api.call('sprites.network', { name: 'dev', policy: 'allow=Mirror.Example.org,*.github.com,192.168.1.0/24' })).network).toBe('allow=mirror.example.org,*.github.com,192.168.1.0/24');
    expect(await failure(api.call('sprites.network', { name: 'dev', policy: 'allow=printer' }))).toMatchObject({ code: 'invalid_argument', message: expect.stringMatching(/single-label name/) });
    expect(await failure(api.call('sprites.network', { name: 'dev', policy: 'allow=127.0.0.1' }))).toMatchObject({ message: expect.stringMatching(/loopback/) });
    expect((await api.call('sprites.get', { name: 'dev' })).network).toBe('allow=mirror.example.org,*.github.com,192.168.1.0/24');
  });
});

describe('sprites.netShow', () => {
  it('GET on the network route: the policy and the refusals of the sprite’s proxy, newest first, in the contract’s strict shape', async () => {
    expect(await api.call('sprites.netShow', { name: 'dev' })).toEqual({ name: 'dev', network: 'internet', refused: [] });
    await api.call('sprites.network', { name: 'dev', policy: 'allow=example.com' });
    const connector = f.io.egress.at(-1)!.opts.connector!;
    await connector.connect({ host: 'github.com', port: 22 });
    await connector.connect({ host: 'github.com', port: 22 });
    await connector.connect({ host: '[::1]', port: 8080 });
    const shown = await api.call('sprites.netShow', { name: 'dev' });
    expect(methods['sprites.netShow'].output.parse(shown)).toEqual(shown);
    expect(shown.network).toBe('allow=example.com');
    expect(shown.refused.map((r) => [r.name, r.address, r.port, r.count])).toEqual([
      [null, '::1', 8080, 1],
      ['github.com', null, 22, 2],
    ]);
    expect(shown.refused[1].reason).toMatch(/github\.com/);
    expect(await failure(api.call('sprites.netShow', { name: 'nope' }))).toMatchObject({ code: 'not_found' });
  });
});

describe('sprites.usage', () => {
  it('one row per sprite: awake and CPU seconds, disk bytes, checkpoints and their bytes', async () => {
    f.io.clock.now += 42_000;
    const rows = await api.call('sprites.usage');
    expect(rows).toEqual([{ name: 'dev', state: 'running', awakeSeconds: 42, cpuSeconds: expect.any(Number), diskBytes: expect.any(Number), lastActiveAt: null, checkpoints: 0, checkpointBytes: 0 }]);
  });
});

describe('sprites.sshConfig', () => {
  it('is the block the CLI prints, and writes the pinned host key it names', async () => {
    expect(await failure(api.call('sprites.sshConfig', { name: 'dev' }))).toMatchObject({ code: 'failed_precondition', message: expect.stringMatching(/client key/) });
    fs.mkdirSync(f.layout.keysDir, { recursive: true });
    fs.writeFileSync(clientKeyFile(f.layout), 'PRIVATE client');
    const { name, config } = await api.call('sprites.sshConfig', { name: 'dev' });
    expect(name).toBe('dev');
    expect(config).toBe(sshConfigFor(f.layout, 'dev', f.engine.hostKey('dev')));
    expect(config).toMatch(/^# spritely sprite "dev" \(spritely ssh-config dev\)\nHost dev\n/);
    expect(fs.readFileSync(path.join(f.home, 'ssh', 'dev.known_hosts'), 'utf8')).toBe(`spritely-dev ${f.engine.hostKey('dev').split(' ').slice(0, 2).join(' ')}\n`);
    expect(await failure(api.call('sprites.sshConfig', { name: 'nope' }))).toMatchObject({ code: 'not_found' });
  });
});
