import { describe, expect, it } from 'vitest';
import { duplexPair, FakeGuest } from '../driver/fake-guest.ts';
import { GuestAgent, GuestAgentLink, MAX_AGENT_LINE } from './guest-agent.ts';

describe('GuestAgent over a guest port', () => {
  it('syncs, runs a program with stdin, and decodes its output', async () => {
    const guest = new FakeGuest();
    guest.onExec = (c) => ({ exitCode: 7, stdout: `got ${c.stdin}`, stderr: c.args.join(',') });
    const agent = new GuestAgent(async () => guest.connectAgent());
    await agent.connect(Date.now() + 1000);
    const r = await agent.exec('/bin/cat', ['-', 'x'], { stdin: 'hello' });
    expect(r).toEqual({ exitCode: 7, stdout: Buffer.from('got hello'), stderr: Buffer.from('-,x') });
    expect(guest.execs).toEqual([{ path: '/bin/cat', args: ['-', 'x'], stdin: 'hello' }]);
    await agent.ping();
    agent.disconnect();
  });

  it('skips whatever came before its sync marker (a stale reply in the pipe)', async () => {
    const [host, guestEnd] = duplexPair();
    guestEnd.on('data', (chunk: Buffer) => {
      const m = /"id":(\d+)/.exec(chunk.toString('latin1'));
      if (m) guestEnd.write(Buffer.concat([Buffer.from('{"return": 999}\n{"ret'), Buffer.from([0xff]), Buffer.from(`{"return": ${m[1]}}\n`)]));
    });
    const agent = new GuestAgent(async () => host);
    await agent.connect(Date.now() + 1000);
    agent.disconnect();
  });

  it('an error reply becomes an error with the guest’s description', async () => {
    const guest = new FakeGuest();
    const agent = new GuestAgent(async () => guest.connectAgent());
    await agent.connect(Date.now() + 1000);
    await expect(agent.command('guest-file-open', { path: '/x' })).rejects.toThrow('unknown command guest-file-open');
    agent.disconnect();
  });

  it('a guest that floods a line without an end is cut off', async () => {
    const [host, guestEnd] = duplexPair();
    guestEnd.on('data', (chunk: Buffer) => {
      const m = /"id":(\d+)/.exec(chunk.toString('latin1'));
      if (m) guestEnd.write(Buffer.concat([Buffer.from([0xff]), Buffer.from(`{"return": ${m[1]}}\n`)]));
      else if (chunk.includes('guest-ping')) for (let i = 0; i < 3; i++) guestEnd.write(Buffer.alloc(512 * 1024, 0x41));
    });
    const told: string[] = [];
    const agent = new GuestAgent(async () => host, 1024 * 1024, (why) => told.push(why));
    await agent.connect(Date.now() + 1000);
    await expect(agent.ping(5000)).rejects.toThrow(/more than 1048576 bytes without a line end/);
    expect(host.destroyed).toBe(true);
    expect(told).toEqual(['the guest agent sent more than 1048576 bytes without a line end']);
  });

  it('64 MiB without a newline, in 64 KiB writes, is refused in well under a second (default cap)', async () => {
    const [host, guestEnd] = duplexPair();
    guestEnd.on('data', (chunk: Buffer) => {
      const m = /"id":(\d+)/.exec(chunk.toString('latin1'));
      if (m) guestEnd.write(Buffer.concat([Buffer.from([0xff]), Buffer.from(`{"return": ${m[1]}}\n`)]));
    });
    const told: string[] = [];
    const agent = new GuestAgent(async () => host, MAX_AGENT_LINE, (why) => told.push(why));
    await agent.connect(Date.now() + 1000);
    const chunk = Buffer.alloc(64 * 1024, 0x41);
    const t0 = performance.now();
    for (let i = 0; i < 1024 && !guestEnd.destroyed; i++) guestEnd.write(chunk);
    await new Promise((r) => setImmediate(r));
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(host.destroyed).toBe(true);
    expect(told).toHaveLength(1);
  });

  it('garbage lines and unasked-for replies are ignored; the agent still answers', async () => {
    const [host, guestEnd] = duplexPair();
    guestEnd.on('data', (chunk: Buffer) => {
      const text = chunk.toString('latin1');
      const m = /"id":(\d+)/.exec(text);
      if (m) guestEnd.write(Buffer.concat([Buffer.from([0xff]), Buffer.from(`{"return": ${m[1]}}\n`)]));
      else if (text.includes('guest-ping')) guestEnd.write('not json\n{"unasked": true, "return": 1\n\x1b]0;pwned\x07\n{"return": {}}\n');
    });
    const agent = new GuestAgent(async () => host);
    await agent.connect(Date.now() + 1000);
    await expect(agent.ping(1000)).resolves.toBeUndefined();
    agent.disconnect();
  });

  it('a guest that never sends the sync marker is cut off after the cap, not read forever', async () => {
    const [host, guestEnd] = duplexPair();
    guestEnd.on('data', () => {
      for (let i = 0; i < 40 && !guestEnd.destroyed; i++) guestEnd.write(Buffer.alloc(64 * 1024, 0x41));
    });
    const agent = new GuestAgent(async () => host, 1024 * 1024);
    await expect(agent.connect(Date.now() + 3000)).rejects.toThrow(/more than 1048576 bytes before answering a sync/);
    expect(host.destroyed).toBe(true);
  });

  it('many short lines nobody asked for are cut off too (an answer is one line): the daemon never parses without end', async () => {
    const [host, guestEnd] = duplexPair();
    guestEnd.on('data', (chunk: Buffer) => {
      const m = /"id":(\d+)/.exec(chunk.toString('latin1'));
      if (m) guestEnd.write(Buffer.concat([Buffer.from([0xff]), Buffer.from(`{"return": ${m[1]}}\n`)]));
      else if (chunk.includes('guest-ping')) {
        guestEnd.write('{"return": {}}\n');
        const lines = Buffer.from('{"return": {}}\n'.repeat(4096));
        for (let i = 0; i < 40 && !guestEnd.destroyed; i++) guestEnd.write(lines);
      }
    });
    const told: string[] = [];
    const agent = new GuestAgent(async () => host, 1024 * 1024, (why) => told.push(why));
    await agent.connect(Date.now() + 1000);
    await agent.ping(1000);
    await new Promise((r) => setTimeout(r, 20));
    expect(told).toEqual(['the guest agent sent more than 1048576 bytes in answer to one command']);
    expect(host.destroyed).toBe(true);
  });

  it('error text from the guest is made inert', async () => {
    const [host, guestEnd] = duplexPair();
    guestEnd.on('data', (chunk: Buffer) => {
      const m = /"id":(\d+)/.exec(chunk.toString('latin1'));
      if (m) guestEnd.write(Buffer.concat([Buffer.from([0xff]), Buffer.from(`{"return": ${m[1]}}\n`)]));
      else guestEnd.write(JSON.stringify({ error: { desc: 'bad\x1b[2J\u202eevil' } }) + '\n');
    });
    const agent = new GuestAgent(async () => host);
    await agent.connect(Date.now() + 1000);
    const err = (await agent.ping(1000).catch((e) => e)) as Error;
    expect(err.message).toBe('the guest agent said: bad\\x1b[2J\\u202eevil');
    agent.disconnect();
  });

  it('gives up by its deadline when the guest never answers', async () => {
    const guest = new FakeGuest();
    guest.silent = true;
    const t0 = Date.now();
    await expect(new GuestAgent(async () => guest.connectAgent()).connect(Date.now() + 250, 100)).rejects.toThrow(/guest agent did not answer/);
    expect(Date.now() - t0).toBeLessThan(1500);
  });
});

describe('GuestAgentLink', () => {
  it('keeps one connection, and reconnects when the kept one stops answering', async () => {
    const guest = new FakeGuest();
    let opened = 0;
    const link = new GuestAgentLink(async () => {
      opened++;
      return guest.connectAgent();
    });
    const [a, a2] = await Promise.all([link.ready(1000), link.ready(1000)]);
    expect(a2).toBe(a);
    expect(await link.ready(1000)).toBe(a);
    expect(opened).toBe(1);
    guest.disconnect();
    const b = await link.ready(1000);
    expect(b).not.toBe(a);
    expect(opened).toBe(2);
    link.close();
    await expect(link.ready(1000)).rejects.toThrow('the machine is gone');
  });

  it('a guest that floods its port: closed and logged once, reopened only after a back-off that doubles', async () => {
    let flood = true;
    const logs: string[] = [];
    let opened = 0;
    const link = new GuestAgentLink(
      async () => {
        opened++;
        const [host, guestEnd] = duplexPair();
        guestEnd.on('data', (chunk: Buffer) => {
          const m = /"id":(\d+)/.exec(chunk.toString('latin1'));
          if (m) guestEnd.write(Buffer.concat([Buffer.from([0xff]), Buffer.from(`{"return": ${m[1]}}\n`)]));
          else if (chunk.includes('guest-ping')) {
            if (flood) for (let i = 0; i < 20 && !guestEnd.destroyed; i++) guestEnd.write(Buffer.alloc(64 * 1024, 0x41));
            else guestEnd.write('{"return": {}}\n');
          }
        });
        return host;
      },
      { log: (m) => logs.push(m), backoff: { firstMs: 200, maxMs: 1000, forgiveAfterMs: 60_000 }, maxLineBytes: 256 * 1024 },
    );
    const agent = await link.ready(1000);
    await expect(agent.ping(1000)).rejects.toThrow(/without a line end/);
    expect(logs).toEqual([expect.stringMatching(/^guest agent channel closed: the guest agent sent more than 262144 bytes without a line end; it is reopened when next needed, in 0.2 s at the earliest$/)]);
    // asked again at once: it waits out the back-off (200 ms), then connects
    let t0 = Date.now();
    const again = await link.ready(1000);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(150);
    expect(opened).toBe(2);
    expect(logs[1]).toBe('guest agent channel reopened: the agent answers again');
    await expect(again.ping(1000)).rejects.toThrow(/without a line end/);
    expect(logs[2]).toMatch(/in 0.4 s at the earliest$/);
    // a caller with less time than the back-off is refused at once, saying why
    await expect(link.ready(100)).rejects.toThrow(/the guest agent channel was closed \(the guest agent sent more than 262144 bytes without a line end\); it opens again in 1 s/);
    expect(opened).toBe(2);
    flood = false;
    t0 = Date.now();
    const healed = await link.ready(2000);
    await expect(healed.ping(1000)).resolves.toBeUndefined();
    expect(opened).toBe(3);
    expect(logs).toHaveLength(4);
    expect(logs[3]).toBe('guest agent channel reopened: the agent answers again');
    link.close();
  });
});
