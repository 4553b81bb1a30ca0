import { describe, expect, it } from 'vitest';
import { duplexPair, FakeGuest } from '../driver/fake-guest.ts';
import { GuestAgent, GuestAgentLink } from './guest-agent.ts';

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
    const agent = new GuestAgent(async () => host, 1024 * 1024);
    await agent.connect(Date.now() + 1000);
    await expect(agent.ping(5000)).rejects.toThrow(/more than 1048576 bytes without a line end/);
    expect(host.destroyed).toBe(true);
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
});
