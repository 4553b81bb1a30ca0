import { describe, expect, it } from 'vitest';
import { MAX_QMP_LINE, QmpError, QmpProtocol } from './qmp-protocol.ts';

describe('QmpProtocol', () => {
  it('numbers commands and resolves by id, across split chunks', async () => {
    const p = new QmpProtocol();
    const a = p.command('query-status');
    const b = p.command('stop', {});
    expect(JSON.parse(a.line)).toEqual({ execute: 'query-status', id: 'c1' });
    expect(JSON.parse(b.line)).toEqual({ execute: 'stop', id: 'c2' });
    const reply = '{"return": {"status": "running", "running": true}, "id": "c1"}\n{"return": {}, "id": "c2"}\n';
    expect(p.receive(reply.slice(0, 17))).toEqual([]);
    expect(p.receive(reply.slice(17))).toEqual([]);
    await expect(a.reply).resolves.toEqual({ status: 'running', running: true });
    await expect(b.reply).resolves.toEqual({});
    expect(p.pendingCount).toBe(0);
  });

  it('passes events and the greeting through, interleaved with replies', async () => {
    const p = new QmpProtocol();
    const c = p.command('cont');
    const out = p.receive(
      '{"QMP": {"version": {"qemu": {"major": 7}}, "capabilities": []}}\n' +
        '{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "RESUME"}\n' +
        '{"return": {}, "id": "c1"}\n',
    );
    expect(out).toEqual([
      { kind: 'greeting', version: { qemu: { major: 7 } } },
      { kind: 'event', event: { event: 'RESUME', timestamp: { seconds: 1, microseconds: 2 } } },
    ]);
    await expect(c.reply).resolves.toEqual({});
  });

  it('rejects with the QMP error class and description', async () => {
    const p = new QmpProtocol();
    const c = p.command('loadvm');
    p.receive('{"error": {"class": "GenericError", "desc": "Snapshot v9 does not exist"}, "id": "c1"}\n');
    const err = (await c.reply.catch((e) => e)) as QmpError;
    expect(err).toBeInstanceOf(QmpError);
    expect(err.desc).toBe('Snapshot v9 does not exist');
    expect(err.message).toContain('loadvm');
  });

  it('reports garbage and unmatched replies instead of throwing', () => {
    const p = new QmpProtocol();
    const out = p.receive('not json\n{"return": {}, "id": "zzz"}\n\n');
    expect(out.map((o) => o.kind)).toEqual(['garbage', 'garbage']);
  });

  it('fails every pending command when the connection dies', async () => {
    const p = new QmpProtocol();
    const a = p.command('query-status');
    const b = p.command('query-migrate');
    p.failAll(new Error('socket closed'));
    await expect(a.reply).rejects.toThrow('socket closed');
    await expect(b.reply).rejects.toThrow('socket closed');
  });

  it('a line over the cap is an overflow: reported once decoded so far, nothing after it', async () => {
    const p = new QmpProtocol(1024);
    const c = p.command('query-status');
    const out = p.receive('{"event": "RESUME"}\n' + 'x'.repeat(2000));
    expect(out).toEqual([{ kind: 'event', event: { event: 'RESUME' } }, { kind: 'overflow', maxLineBytes: 1024 }]);
    expect(p.receive('{"return": {}, "id": "c1"}\n')).toEqual([{ kind: 'overflow', maxLineBytes: 1024 }]);
    expect(p.pendingCount).toBe(1);
    p.failAll(new Error('closed'));
    await expect(c.reply).rejects.toThrow('closed');
  });

  it('64 MiB without a newline, in 64 KiB chunks, costs well under a second (default cap)', () => {
    const p = new QmpProtocol();
    const chunk = Buffer.alloc(64 * 1024, 0x41);
    const t0 = performance.now();
    let overflowAt = -1;
    for (let i = 0; i < 1024; i++) if (p.receive(chunk).some((o) => o.kind === 'overflow') && overflowAt < 0) overflowAt = i;
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(overflowAt).toBe(MAX_QMP_LINE / chunk.length);
  });

  it('takes bytes split inside a UTF-8 character', async () => {
    const p = new QmpProtocol();
    const c = p.command('human-monitor-command');
    const bytes = Buffer.from('{"return": "héllo €", "id": "c1"}\n');
    const at = bytes.indexOf(Buffer.from('€')) + 1;
    p.receive(bytes.subarray(0, at));
    p.receive(bytes.subarray(at));
    await expect(c.reply).resolves.toBe('héllo €');
  });

  it("QEMU's error text is made inert in the message", async () => {
    const p = new QmpProtocol();
    const c = p.command('migrate');
    p.receive(JSON.stringify({ error: { class: 'GenericError', desc: 'no\x1b]0;title\x07 way' }, id: 'c1' }) + '\n');
    const err = (await c.reply.catch((e) => e)) as QmpError;
    expect(err.message).toBe('QMP migrate: no\\x1b]0;title\\x07 way (GenericError)');
  });
});
