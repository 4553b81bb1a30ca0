/**
 * The `spritely-relay` command end to end: tokens managed with the CLI, a relay started with
 * `serve`, a tunnel client connecting with the printed token, and a CLI revocation cutting it.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Agent } from 'undici';
import { get, makeCerts, publicAgent, publicUrl, removeDir, startClient, startOrigin, waitForStatus, type Certs, type Origin } from './harness.ts';

const run = promisify(execFile);
const bin = path.resolve('bin/spritely-relay.js');
let certs: Certs;
let origin: Origin;
let agent: Agent;
let server: ChildProcess | undefined;

beforeAll(async () => {
  certs = makeCerts();
  origin = await startOrigin('cli');
  agent = publicAgent(certs.cert);
});

afterAll(async () => {
  server?.kill('SIGKILL');
  await agent?.close();
  await origin?.close();
  removeDir(certs.dir);
});

it('manages tokens, serves, and revokes through the CLI', async () => {
  const tokens = path.join(certs.dir, 'cli-tokens.json');
  const added = await run(process.execPath, [bin, 'token', 'add', 'laptop', '--tokens', tokens]);
  const token = added.stdout.trim();
  expect(token).toMatch(/^srt_[a-z0-9]{6}_[A-Za-z0-9_-]{43}$/);
  expect(statSync(tokens).mode & 0o777).toBe(0o600);
  await expect(run(process.execPath, [bin, 'token', 'add', 'laptop', '--tokens', tokens])).rejects.toMatchObject({ stderr: expect.stringMatching(/revoke it first/) });
  const listed = await run(process.execPath, [bin, 'token', 'list', '--tokens', tokens]);
  expect(listed.stdout).toMatch(new RegExp(`^laptop\\t${token.split('_')[1]}\\tactive\\t`));

  writeFileSync(path.join(certs.dir, 'cert.pem'), certs.cert);
  writeFileSync(path.join(certs.dir, 'key.pem'), certs.key);
  const child = spawn(process.execPath, [bin, 'serve', '--domain', 'relay.test', '--listen', '127.0.0.1:0', '--tls-cert', path.join(certs.dir, 'cert.pem'), '--tls-key', path.join(certs.dir, 'key.pem'), '--tokens', tokens], { stdio: ['ignore', 'pipe', 'pipe'] });
  server = child;
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const match = /listening on 127\.0\.0\.1:(\d+)/.exec(out);
      if (match) resolve(Number(match[1]));
    });
    child.once('exit', (code) => reject(new Error(`serve exited with ${code}`)));
  });

  const health = await get(agent, `https://relay.test:${port}/.spritely/health`);
  expect(health.status).toBe(200);
  const client = startClient({ port }, certs, token, async () => ({ host: '127.0.0.1', port: origin.port }));
  try {
    await waitForStatus(client, 'connected', 10_000);
    await client.publish('web', { auth: 'public' });
    const page = await get(agent, publicUrl(client, 'web'));
    expect(page.body).toBe('hello from cli');

    await run(process.execPath, [bin, 'token', 'revoke', 'laptop', '--tokens', tokens]);
    await waitForStatus(client, 'unauthorized', 5_000);
    expect((await run(process.execPath, [bin, 'token', 'list', '--tokens', tokens])).stdout).toMatch(/\trevoked /);
  } finally {
    await client.close();
  }
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  expect(await exited).toBe(0);
  server = undefined;
}, 30_000);
