/**
 * The guest agent as the engine uses it, on the fake driver whose guest speaks the real wire format
 * (vm/guest/fake-agent.ts) to the real client: ready the instant a machine runs; exec sessions;
 * terminals that go on across sleep and wake and are lost (with why) across a restore; a guest
 * that restarts, silences or corrupts its agent gets a clear error and a repair attempt, and never
 * takes the engine or another sprite with it.
 */
import type { Duplex } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AgentChannel } from '../guest/agent-channel.ts';
import { encodeFrame, FrameType } from '../guest/agent-frames.ts';
import { TerminalManager, type TerminalClient } from '../terminals/terminal-manager.ts';
import { agentOf, makeFixture, type Fixture } from './spec-fixture.ts';

let f: Fixture;
beforeEach(async () => {
  f = await makeFixture();
  await f.engine.create({ name: 'dev' });
});
afterEach(async () => {
  await f.cleanup();
});

async function run(ch: AgentChannel, stdin?: string): Promise<{ out: string; err: string; code: number | null; signal: string | null; timedOut: boolean; lost?: string }> {
  let out = '';
  let err = '';
  ch.on('data', (d: Buffer) => (out += d));
  ch.stderr.on('data', (d: Buffer) => (err += d));
  if (stdin !== undefined) ch.end(stdin);
  const e = await ch.done;
  return { out, err, ...e };
}

function recorder(): TerminalClient & { log: string[]; text: () => string } {
  const log: string[] = [];
  let text = '';
  return {
    log,
    text: () => text,
    attached: (n) => log.push(`attached ${n}`),
    send: (d) => (text += d.toString()),
    exited: (code) => log.push(`exit ${code}`),
    lost: (why) => log.push(`lost: ${why}`),
  };
}

async function until(cond: () => boolean, ms = 2000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 2));
  }
}

describe('the guest agent of a sprite', () => {
  it('is ready when the create returns: one HELLO, identity given, exec at once', async () => {
    const agent = agentOf(f.driver.process('dev'));
    expect(agent.hellos).toBe(1);
    const ch = await (await f.engine.agent('dev')).exec({ argv: ['echo', 'hi'] });
    expect(await run(ch)).toMatchObject({ out: 'hi\n', code: 0, signal: null });
    expect(agent.hellos).toBe(1);
  });

  it('exec semantics pass through: exit codes, stderr apart, stdin to its end, signals, timeouts, and a closed session is killed', async () => {
    const a = await f.engine.agent('dev');
    agentOf(f.driver.process('dev')).programs.set('both', (io) => {
      io.out('to out\n');
      io.err('to err\n');
      io.exit(7);
    });
    expect(await run(await a.exec({ argv: ['both'] }))).toMatchObject({ out: 'to out\n', err: 'to err\n', code: 7 });
    expect((await run(await a.exec({ argv: ['no-such-program'] }))).code).toBe(127);
    expect(await run(await a.exec({ argv: ['cat'] }), 'piped in\n')).toMatchObject({ out: 'piped in\n', code: 0 });
    const sleeper = await a.exec({ argv: ['sleep', '100'] });
    sleeper.signal('TERM');
    expect(await run(sleeper)).toMatchObject({ code: null, signal: 'TERM' });
    expect(await run(await a.exec({ argv: ['sleep', '100'], timeoutMs: 30 }))).toMatchObject({ signal: 'KILL', timedOut: true });
    const closed = await a.exec({ argv: ['sleep', '100'] });
    closed.close();
    expect(await run(closed)).toMatchObject({ signal: 'KILL' });
  });

  it('wakes a sleeping sprite for exec (agentAwake) and uses the woken machine', async () => {
    await f.engine.sleep('dev');
    const a = await f.engine.agentAwake('dev');
    expect(f.engine.get('dev').state).toBe('running');
    expect((await run(await a.exec({ argv: ['true'] }))).code).toBe(0);
  });
});

describe('terminals', () => {
  it('a shell goes on across sleep and wake: same session, what was typed meanwhile arrives, the agent resumed its epoch', async () => {
    const terminals = new TerminalManager();
    const s = await terminals.open('dev', await f.engine.agentAwake('dev'), { cols: 80, rows: 24 });
    const c = recorder();
    s.attach(c);
    await until(() => c.text().includes('root@dev:~# '));
    s.write(Buffer.from('ab'));
    await until(() => c.text().endsWith('ab'));
    await f.engine.sleep('dev');
    expect(s.isOpen).toBe(true);
    s.write(Buffer.from('c')); // held while the sprite sleeps
    await f.engine.wake('dev');
    await until(() => c.text().endsWith('abc'));
    s.write(Buffer.from('\r'));
    await until(() => c.text().endsWith('abc\r\nroot@dev:~# '));
    const agent = agentOf(f.driver.process('dev'));
    expect(agent.resumes).toBe(1);
    expect(c.log).toEqual(['attached 0']);
    s.close();
  });

  it('a shell open across a restore is lost, saying why; a new one opens on the restored machine', async () => {
    await f.engine.createCheckpoint('dev');
    const terminals = new TerminalManager();
    const s = await terminals.open('dev', await f.engine.agentAwake('dev'), { cols: 80, rows: 24 });
    const c = recorder();
    s.attach(c);
    await f.engine.restoreCheckpoint('dev', 'v1');
    await until(() => c.log.length > 1);
    expect(c.log[1]).toMatch(/^lost: the sprite was restored to v1/);
    expect(s.isOpen).toBe(false);
    const again = await terminals.open('dev', await f.engine.agentAwake('dev'), { cols: 80, rows: 24 });
    expect(again.isOpen).toBe(true);
    again.close();
  });

  it('a shell open across a wake that had to boot from the disk (the state no longer fits) is lost', async () => {
    const terminals = new TerminalManager();
    const s = await terminals.open('dev', await f.engine.agentAwake('dev'), { cols: 80, rows: 24 });
    const c = recorder();
    s.attach(c);
    await f.engine.sleep('dev');
    f.driver.hypervisorVersion = '2.0';
    await f.engine.wake('dev');
    await until(() => c.log.length > 1);
    expect(c.log[1]).toMatch(/^lost: the sprite was booted from its disk/);
  });

  it('a shell open when the sprite stops is lost with that reason', async () => {
    const terminals = new TerminalManager();
    const s = await terminals.open('dev', await f.engine.agentAwake('dev'), { cols: 80, rows: 24 });
    const c = recorder();
    s.attach(c);
    await f.engine.stop('dev');
    await until(() => c.log.length > 1);
    expect(c.log[1]).toBe('lost: the sprite was stopped');
  });
});

describe('a guest that breaks its agent', () => {
  it('restarts it (ANNOUNCE): its sessions end as lost, saying so; the next exec connects again', async () => {
    const a = await f.engine.agent('dev');
    const sleeper = await a.exec({ argv: ['sleep', '100'] });
    const ended = run(sleeper);
    const port = (agentOf(f.driver.process('dev')) as unknown as { port: Duplex }).port;
    port.write(encodeFrame(FrameType.Announce, 0, Buffer.from(JSON.stringify({ agent: 'spritely-agent', protocol: 2, pid: 9, maxSessions: 1024, maxPayload: 65536 }))));
    expect((await ended).lost).toMatch(/guest agent restarted \(pid 9\)/);
    expect(f.logs.join('\n')).toMatch(/sprite dev|guest agent of dev: closing the channel: the guest agent restarted/);
    expect((await run(await (await f.engine.agent('dev')).exec({ argv: ['true'] }))).code).toBe(0);
  });

  it.each([
    ['garbage', /malformed 0x7e frame|not one the agent sends/],
    ['oversized', /frame length of 66541/],
  ] as const)('answers with %s: that channel closes (logged once), the exec gets a clear error, the next one works', async (how, logged) => {
    await f.engine.create({ name: 'other' });
    f.driver.process('dev').guest.silent = false;
    const agent = agentOf(f.driver.process('dev'));
    (await f.engine.agent('dev')).reset('test: reconnect');
    agent.misbehave = how;
    const err = await f.engine.agent('dev').then(
      async (a) => (await a.exec({ argv: ['true'] }), null),
      (e: Error) => e,
    );
    // the first connection was closed; the client connected again (a new epoch) or said why it could not
    expect(f.logs.join('\n')).toMatch(logged);
    if (err) expect(err.message).toMatch(/guest agent in sprite "dev" does not answer/);
    expect((await run(await (await f.engine.agent('dev')).exec({ argv: ['echo', 'back'] }))).out).toBe('back\n');
    // the other sprite never noticed
    expect((await run(await (await f.engine.agent('other')).exec({ argv: ['echo', 'fine'] }))).out).toBe('fine\n');
  });

  it('silences it: callers get a clear error after their timeout, qemu-guest-agent is asked to restart it and what it says is logged; other sprites go on', async () => {
    await f.engine.create({ name: 'other' });
    const proc = f.driver.process('dev');
    (await f.engine.agent('dev')).reset('test: the agent was stopped');
    agentOf(proc).silent = true;
    proc.guest.onExec = (call) => {
      if (call.path === '/bin/sh' && call.args[1]?.includes('systemctl restart spritely-agent')) {
        agentOf(proc).silent = false;
        return { stdout: 'spritely-agent: inactive\nrestarted spritely-agent\nnow: active\n' };
      }
      return undefined;
    };
    const t0 = Date.now();
    const first = await f.engine.agent('dev').then(() => 'ok', (e: Error) => e.message);
    // the repair ran after agentStuckMs and the agent answered again before the caller gave up
    expect(first).toBe('ok');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(400);
    expect(f.logs.join('\n')).toMatch(/sprite dev: its guest agent did not answer for 0\.4 s \(.*\); asked the guest to restart it: spritely-agent: inactive \| restarted spritely-agent \| now: active/);
    expect((await run(await (await f.engine.agent('other')).exec({ argv: ['true'] }))).code).toBe(0);
  });

  it('replaces it with an impostor that answers HELLO, then breaks the stream: one failed exec, then the engine keeps probing by itself, asks for a repair, and sees the agent back', async () => {
    const proc = f.driver.process('dev');
    const agent = agentOf(proc);
    (await f.engine.agent('dev')).reset('test: an impostor takes the port');
    agent.misbehave = 'oversized';
    agent.misbehaveAlways = true;
    proc.guest.onExec = (call) => {
      if (call.path === '/bin/sh' && call.args[1]?.includes('systemctl restart spritely-agent')) {
        agent.misbehave = null;
        return { stdout: 'spritely-agent: active\nrestarted spritely-agent\nnow: active\n' };
      }
      return undefined;
    };
    const err = (await f.engine.exec('dev', { argv: ['true'] }).catch((e) => e)) as Error & { code?: string };
    expect(err.code).toBe('unavailable');
    expect(err.message).toMatch(/^The guest agent in sprite "dev" (could not start the command|does not answer)/);
    // nobody calls again: the client's own probes notice it goes on, and the repair follows
    await until(() => /sprite dev: its guest agent did not answer for 0\.4 s \(.*frame length.*\); asked the guest to restart it/.test(f.logs.join('\n')), 5000);
    await until(() => agent.misbehave === null, 5000);
    expect((await run(await (await f.engine.agent('dev')).exec({ argv: ['echo', 'back'] }))).out).toBe('back\n');
  });

  it('stops it on a live connection (nothing answers, nothing closes): the open times out, a PING finds it gone, the channel is dropped and repaired', async () => {
    const proc = f.driver.process('dev');
    await f.engine.agent('dev');
    agentOf(proc).silent = true; // the port stays connected, nobody reads it
    proc.guest.onExec = (call) => {
      if (call.path === '/bin/sh' && call.args[1]?.includes('systemctl restart spritely-agent')) {
        agentOf(proc).silent = false;
        return { stdout: 'spritely-agent: inactive\nrestarted spritely-agent\n' };
      }
      return undefined;
    };
    const err = (await f.engine.exec('dev', { argv: ['true'] }).catch((e) => e)) as Error & { code?: string };
    expect(err.message).toMatch(/could not start the command: the guest agent did not start the exec session within 1500 ms/);
    await until(() => /guest agent of dev: closing the channel: the guest agent stopped answering/.test(f.logs.join('\n')), 5000);
    await until(() => /sprite dev: its guest agent did not answer .*asked the guest to restart it: spritely-agent: inactive/.test(f.logs.join('\n')), 5000);
    expect((await run(await (await f.engine.agent('dev')).exec({ argv: ['echo', 'back'] }))).out).toBe('back\n');
  });

  it('silences it for good (and qemu-guest-agent cannot help): a clear error, never a hang', async () => {
    const proc = f.driver.process('dev');
    (await f.engine.agent('dev')).reset('test');
    proc.guest.silent = true;
    const t0 = Date.now();
    const err = (await f.engine.agent('dev').catch((e) => e)) as Error;
    expect(err.message).toMatch(/^The guest agent in sprite "dev" does not answer \(could not reach the guest agent of dev: no answer to HELLO within \d+ ms\)/);
    expect(Date.now() - t0).toBeLessThan(3000);
    await until(() => /qemu-guest-agent did not answer either/.test(f.logs.join('\n')), 8000);
  });
});
